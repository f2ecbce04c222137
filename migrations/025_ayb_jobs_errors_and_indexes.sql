-- Error history: the last 10 failures {attempt, at, error, worker_id}, newest last.
ALTER TABLE _ayb_jobs ADD COLUMN errors jsonb NOT NULL DEFAULT '[]';

-- Listing newest first (admin API, dashboard).
CREATE INDEX idx_ayb_jobs_created_at ON _ayb_jobs (created_at DESC, id DESC);
-- Pruning finished jobs by age, per terminal state.
CREATE INDEX idx_ayb_jobs_completed_at ON _ayb_jobs (completed_at) WHERE state = 'completed';
CREATE INDEX idx_ayb_jobs_canceled_at ON _ayb_jobs (canceled_at) WHERE state = 'canceled';
CREATE INDEX idx_ayb_jobs_failed_updated ON _ayb_jobs (updated_at) WHERE state = 'failed';
-- ON DELETE SET NULL of a schedule scans jobs by schedule_id.
CREATE INDEX idx_ayb_jobs_schedule_id ON _ayb_jobs (schedule_id) WHERE schedule_id IS NOT NULL;

-- The error history's one rule, shared by every statement that records a failure: append the
-- entry and keep the last 10, oldest first.
CREATE FUNCTION _ayb_jobs_append_error(history jsonb, entry jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(jsonb_agg(e ORDER BY ord), '[]'::jsonb) FROM (
        SELECT e, ord
        FROM jsonb_array_elements(coalesce(history, '[]'::jsonb) || jsonb_build_array(entry))
             WITH ORDINALITY AS h(e, ord)
        ORDER BY ord DESC
        LIMIT 10
    ) last10
$$;
