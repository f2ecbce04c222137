-- The fence of a claim: every claim increments claim_seq, and nothing else ever changes it (an
-- admin retry resets attempts, not this), so (id, worker, claim_seq) names one claim for good. Every
-- write after a claim (complete, fail, heartbeat, release) is conditional on it. A column with a
-- constant default is added without rewriting the table.
ALTER TABLE _ayb_jobs ADD COLUMN claim_seq bigint NOT NULL DEFAULT 0;
