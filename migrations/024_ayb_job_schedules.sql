-- Cron schedules. next_run_at NULL means "not due" (disabled, or not computed yet).
CREATE TABLE _ayb_job_schedules (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name         varchar(100) NOT NULL UNIQUE,
    job_type     varchar(100) NOT NULL,
    payload      jsonb NOT NULL DEFAULT '{}',
    cron_expr    varchar(100) NOT NULL,
    timezone     varchar(50) NOT NULL DEFAULT 'UTC',
    enabled      boolean NOT NULL DEFAULT true,
    max_attempts integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    next_run_at  timestamptz,
    last_run_at  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX idx_ayb_job_schedules_due ON _ayb_job_schedules (next_run_at)
    WHERE enabled AND next_run_at IS NOT NULL;

-- Added idempotently (looked up by name in schema public) so that a database where AYB already
-- created the constraint migrates cleanly.
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_constraint c
        JOIN pg_namespace n ON n.oid = c.connamespace
        WHERE c.conname = 'fk_ayb_jobs_schedule_id' AND n.nspname = 'public'
    ) THEN
        ALTER TABLE _ayb_jobs ADD CONSTRAINT fk_ayb_jobs_schedule_id
            FOREIGN KEY (schedule_id) REFERENCES _ayb_job_schedules (id) ON DELETE SET NULL;
    END IF;
END
$$;
