-- Schedule policies and the history of fire decisions.
-- overlap: 'allow' (default) or 'skip' (no new job while the schedule's previous job is queued or
-- running). misfire: what happens to slots missed while no daemon ran: 'coalesce' (default, one
-- run), 'skip' (no run) or 'all' (one job per missed slot, at most misfire_max).
ALTER TABLE _ayb_job_schedules
    ADD COLUMN overlap varchar(10) NOT NULL DEFAULT 'allow' CHECK (overlap IN ('allow', 'skip')),
    ADD COLUMN misfire varchar(10) NOT NULL DEFAULT 'coalesce'
        CHECK (misfire IN ('coalesce', 'skip', 'all')),
    ADD COLUMN misfire_max integer NOT NULL DEFAULT 10 CHECK (misfire_max BETWEEN 1 AND 100);

-- One row per decided slot. The primary key is what makes a slot decided exactly once whatever
-- number of daemons race for it. job_id has no foreign key: jobs are pruned, their history stays
-- (the newest 100 rows per schedule are kept).
CREATE TABLE _ayb_job_schedule_fires (
    schedule_id uuid NOT NULL REFERENCES _ayb_job_schedules (id) ON DELETE CASCADE,
    slot_at     timestamptz NOT NULL,
    decided_at  timestamptz NOT NULL DEFAULT now(),
    job_id      uuid,
    outcome     varchar(20) NOT NULL
                CHECK (outcome IN ('enqueued', 'skipped_overlap', 'skipped_misfire')),
    PRIMARY KEY (schedule_id, slot_at)
);

-- overlap = skip asks "does this schedule have a queued or running job?" at every slot.
CREATE INDEX idx_ayb_jobs_schedule_active ON _ayb_jobs (schedule_id)
    WHERE state IN ('queued', 'running') AND schedule_id IS NOT NULL;
