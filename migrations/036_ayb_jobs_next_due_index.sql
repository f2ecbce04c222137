-- The run_at index over queued jobs, out of the claim's reach.
--
-- The claim reads each queue's head off idx_ayb_jobs_queue_claim in (priority, run_at, id) order.
-- When the statistics were taken while little was queued (autovacuum ran before a burst) and the
-- table holds many finished rows, the planner preferred the other partial index over queued rows,
-- (run_at, id): it costs reading all of them as reading one, so it read every queued row, filtered
-- by queue and sorted (25 ms per claim with 20,000 queued and 100,000 finished, 17 ms per claim in
-- the daemon with 1,000,000 finished; bench/statements.py --stats stale --plans). That index only
-- serves "the earliest queued job" (seconds_until_next_job, the oldest queued age in job_stats).
-- Its predicate now also says `attempts >= 0`, true of every row (attempts start at 0 and never go
-- below): those two statements say it too, so they use the index, and the claim, which does not,
-- cannot.
CREATE INDEX idx_ayb_jobs_next_due ON _ayb_jobs (run_at, id) WHERE state = 'queued' AND attempts >= 0;
DROP INDEX idx_ayb_jobs_claimable;
