-- Queues, priorities and per-type policies (docs/queues.md).
--
-- Every job belongs to a queue (same name rule as job types) and has a priority from -100 to 100;
-- lower runs first. Adding the columns with constant defaults rewrites nothing: existing jobs are in
-- the queue 'default' with priority 0, which is what a plain SQL insert gets too.
ALTER TABLE _ayb_jobs
    ADD COLUMN queue varchar(100) NOT NULL DEFAULT 'default'
        CONSTRAINT _ayb_jobs_queue_name CHECK (queue ~ '^[A-Za-z0-9_.:-]{1,100}$'),
    ADD COLUMN priority smallint NOT NULL DEFAULT 0
        CONSTRAINT _ayb_jobs_priority_range CHECK (priority BETWEEN -100 AND 100);

-- The claim reads each queue in its own order (priority, run_at, id), and skips from one queue to
-- the next through the leading column, so a claim reads only the rows it takes however deep the
-- backlog (see claim_jobs in ayb_jobs/db/queries.sql).
CREATE INDEX idx_ayb_jobs_queue_claim ON _ayb_jobs (queue, priority, run_at, id) WHERE state = 'queued';

-- A schedule's jobs go to its queue with its priority; NULL means "what the job type says".
ALTER TABLE _ayb_job_schedules
    ADD COLUMN queue varchar(100)
        CONSTRAINT _ayb_job_schedules_queue_name CHECK (queue ~ '^[A-Za-z0-9_.:-]{1,100}$'),
    ADD COLUMN priority smallint
        CONSTRAINT _ayb_job_schedules_priority_range CHECK (priority BETWEEN -100 AND 100);

-- Queue settings. A queue without a row is unpaused and unlimited. `concurrency` is global: at most
-- that many of the queue's jobs run at once across every daemon.
CREATE TABLE _ayb_job_queues (
    name        varchar(100) PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.:-]{1,100}$'),
    paused      boolean NOT NULL DEFAULT false,
    paused_at   timestamptz,  -- since when it is paused (NULL while not)
    concurrency integer CHECK (concurrency >= 1),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The job types the daemons have handlers for, with their policies (NULL = no policy: the column
-- defaults apply). Each daemon writes its registry here at start; enqueue through the API, the CLI,
-- the Python client and schedules fills what the caller left out from this table.
CREATE TABLE _ayb_job_types (
    type         varchar(100) PRIMARY KEY,
    queue        varchar(100) CHECK (queue ~ '^[A-Za-z0-9_.:-]{1,100}$'),
    priority     smallint CHECK (priority BETWEEN -100 AND 100),
    max_attempts integer CHECK (max_attempts BETWEEN 1 AND 100),
    timeout_s    double precision CHECK (timeout_s > 0),
    has_backoff  boolean NOT NULL DEFAULT false,
    description  text NOT NULL DEFAULT '',
    builtin      boolean NOT NULL DEFAULT false,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Free slots of limited queues, for the claim. Called with the limited queues a claim may take
-- from; returns (queue, free) for each.
--
-- Why a function, and why it closes the race between two claiming daemons: it first takes a
-- transaction-scoped advisory lock per queue (in name order, so two claimers never deadlock), then
-- counts the queue's running jobs. Being VOLATILE, its count runs on a snapshot taken after the
-- lock was granted, not on the calling statement's older one. A second daemon claiming from the same
-- queue waits at the lock until the first one's transaction has committed its newly running rows,
-- and its count then sees them; so the running jobs of a queue can never exceed its limit. The lock
-- is released at commit; unlimited queues never take it.
CREATE FUNCTION _ayb_jobs_queue_slots(queues text[]) RETURNS TABLE (queue text, free integer)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    q text;
BEGIN
    FOR q IN SELECT DISTINCT u FROM unnest(queues) AS u ORDER BY u LOOP
        -- Key space 0x41594251 ('AYBQ') keeps these locks apart from the migration lock.
        PERFORM pg_advisory_xact_lock(1096368721, hashtext(q));
    END LOOP;
    RETURN QUERY
        SELECT s.name::text, greatest(s.concurrency - coalesce(r.n, 0), 0)::integer
        FROM _ayb_job_queues s
        LEFT JOIN LATERAL (SELECT count(*) AS n FROM _ayb_jobs j
                           WHERE j.state = 'running' AND j.queue = s.name) r ON true
        WHERE s.name = ANY(queues) AND s.concurrency IS NOT NULL;
END
$$;
