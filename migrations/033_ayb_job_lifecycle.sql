-- Job lifecycle depth: snoozes, stored results, cancelling running jobs, unique-while-active keys.
--
-- snoozes: how many times a handler asked to run later (a snooze does not count as an attempt).
-- result: the handler's return value as JSON (bounded in size by the daemon; a marker beyond).
-- cancel_requested_at: an operator asked to cancel this running job; the daemon holding it stops
--   the handler and ends the job `canceled`.
-- unique_key: at most one job with the key is queued or running at a time. Unlike the idempotency
--   key (unique forever), the key is free again once its job has finished.
ALTER TABLE _ayb_jobs
    ADD COLUMN snoozes int NOT NULL DEFAULT 0,
    ADD COLUMN result jsonb,
    ADD COLUMN cancel_requested_at timestamptz,
    ADD COLUMN unique_key varchar(255);

CREATE UNIQUE INDEX idx_ayb_jobs_unique_active ON _ayb_jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('queued', 'running');
