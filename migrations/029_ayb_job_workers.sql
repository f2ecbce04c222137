-- Live workers: every daemon upserts its row every few seconds and deletes it on a clean exit. A row
-- not seen for a while belongs to a daemon that died; such rows are removed after an hour.
CREATE TABLE _ayb_job_workers (
    worker_id varchar(100) PRIMARY KEY,
    host text NOT NULL,
    pid int NOT NULL,
    version text NOT NULL,
    started_at timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    queues text[] NOT NULL DEFAULT '{}',
    types text[] NOT NULL DEFAULT '{}',
    concurrency int NOT NULL,
    in_flight int NOT NULL DEFAULT 0
);

CREATE INDEX idx_ayb_job_workers_last_seen ON _ayb_job_workers (last_seen_at);

-- The last Postgres health reading (one row). Each interval one daemon takes the row (FOR UPDATE
-- SKIP LOCKED on a stale row), runs the catalog reads and writes the results here; every daemon
-- reads this row to serve /api/admin/health and its gauges, so all daemons agree and only one of
-- them queries the statistics views.
CREATE TABLE _ayb_health_snapshot (
    id int PRIMARY KEY CHECK (id = 1),
    taken_at timestamptz,
    taken_by text,
    reading jsonb NOT NULL DEFAULT '{}'
);
INSERT INTO _ayb_health_snapshot (id) VALUES (1);
