-- The claim reads queued jobs in (run_at, id) order and stops after a batch. The index of 023,
-- (state, run_at), gives run_at order but not the id tie-break, so every claim plan had a sort in
-- it: at best an incremental sort of the first run_at group (a batch enqueue gives a thousand jobs
-- one run_at), and when the statistics lag a burst of enqueues, a bitmap scan and a full sort of
-- every queued row (the row lock between LIMIT and the sort rules out a top-N sort): 128 ms per
-- claim at 300,000 queued. An index in exactly the claim's order lets the claim read its batch and
-- stop, whatever the depth. It serves everything the old one served (min(run_at) for the idle
-- poller, the due and scheduled counts, counting queued rows, the per-type queued counts), so the
-- old one goes; the new one takes its name, which the tests and the gauges' comments use.
--
-- No fillfactor: a lower one only pays off through HOT updates, and none of the queue's updates can
-- be HOT, since each changes `state`, which the predicate of every partial index reads (and the
-- heartbeat changes lease_until, which the lease index holds).
CREATE INDEX idx_ayb_jobs_claim_order ON _ayb_jobs (run_at, id) WHERE state = 'queued';
DROP INDEX idx_ayb_jobs_claimable;
ALTER INDEX idx_ayb_jobs_claim_order RENAME TO idx_ayb_jobs_claimable;
