-- The job queue table. One row per job; the state machine is documented in docs/job-lifecycle.md.
CREATE TABLE _ayb_jobs (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    type            varchar(100) NOT NULL,
    payload         jsonb NOT NULL DEFAULT '{}',
    state           varchar(20) NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'running', 'completed', 'failed', 'canceled')),
    run_at          timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    worker_id       varchar(100),
    attempts        integer NOT NULL DEFAULT 0,
    max_attempts    integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    last_error      text,
    last_run_at     timestamptz,
    idempotency_key varchar(255),
    schedule_id     uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    canceled_at     timestamptz
);

-- Claim path: only queued rows, in run_at order.
CREATE INDEX idx_ayb_jobs_claimable ON _ayb_jobs (state, run_at) WHERE state = 'queued';
-- Recovery path: running rows whose lease expired.
CREATE INDEX idx_ayb_jobs_lease ON _ayb_jobs (state, lease_until) WHERE state = 'running';
CREATE UNIQUE INDEX idx_ayb_jobs_idempotency_key ON _ayb_jobs (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
