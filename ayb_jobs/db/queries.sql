-- Every runtime SQL statement of ayb-jobs, as named blocks loaded by db/queries.py.
-- Tables are defined only in migrations/. Times come from the database clock (now()).
-- jsonb parameters are passed as text and cast here, so any asyncpg connection works
-- (an application's pool may not have a json codec).

-- name: db_now
-- The database clock; cron math is done from this instant, never from the daemon's clock.
SELECT now() AS now;

-- name: server_started_at
-- When the Postgres server started: a change between two reads means it restarted in between.
SELECT pg_postmaster_start_time();

-- name: ping
-- A round trip that touches nothing: is this connection (still) answering?
SELECT 1;

-- name: enqueue_jobs
-- Insert a batch of queued jobs from parallel arrays. A NULL element means the column's default
-- (id _ayb_uuid_v7(), run_at now(), payload {}, max_attempts $7), and so does a NULL array: unnest
-- pads a shorter (or NULL) array with NULLs, so the caller sends only the columns some job sets.
-- The client sends the ids (time-ordered, made as _ayb_uuid_v7 makes them; see ayb_jobs/ids.py):
-- generating them here cost about 3 us a row, a fifth of a 1,000-job batch's time in Postgres.
-- A job whose idempotency key exists, or whose unique key is held by a queued or running job, is
-- skipped (ON CONFLICT DO NOTHING, over either unique index, never aborts the caller's
-- transaction) and sorted out by the caller, who knows which by the ids returned (in no
-- particular order). The rows go in in the batch's order, so of two jobs with one key the first
-- is inserted. Also returns the statement's now() (the jobs' created_at, updated_at and
-- default run_at). $8 asks for the wake-up NOTIFY, sent only if a row was inserted.
-- Queue, priority and max_attempts left out (NULL) come from the type's policy in _ayb_job_types,
-- then from the defaults ('default', 0, $7); `policies` returns those policies so the caller can
-- build the jobs as stored without reading them back.
-- $1 types, $2 payloads (json text), $3 run_ats, $4 max_attempts, $5 idempotency keys,
-- $6 schedule ids, $7 default max_attempts, $8 notify, $9 unique keys, $10 queues, $11 priorities,
-- $12 ids
WITH ins AS (
    INSERT INTO _ayb_jobs (id, type, payload, run_at, max_attempts, idempotency_key, schedule_id,
                           unique_key, queue, priority)
    SELECT coalesce(i, _ayb_uuid_v7()), t, coalesce(p::jsonb, '{}'), coalesce(r, now()),
           coalesce(m, jt.max_attempts, $7::int), k, s, u,
           coalesce(q, jt.queue, 'default'), coalesce(pr::smallint, jt.priority, 0)
    FROM unnest($12::uuid[], $1::text[], $2::text[], $3::timestamptz[], $4::int[], $5::text[],
                $6::uuid[], $9::text[], $10::text[], $11::int[])
         WITH ORDINALITY AS b(i, t, p, r, m, k, s, u, q, pr, ord)
    LEFT JOIN _ayb_job_types jt ON jt.type = b.t
    ORDER BY ord
    ON CONFLICT DO NOTHING
    RETURNING id
), wake AS (
    SELECT pg_notify('ayb_jobs', '') FROM (SELECT 1) one
    WHERE $8::bool AND EXISTS (SELECT 1 FROM ins)
)
SELECT array(SELECT id FROM ins) AS ids, now() AS now, (SELECT count(*) FROM wake) AS woke,
       (SELECT coalesce(jsonb_agg(jsonb_build_array(type, queue, priority, max_attempts)), '[]')::text
        FROM _ayb_job_types WHERE type = ANY($1::text[])) AS policies;

-- name: job_ids_by_keys
-- Existing jobs holding the given idempotency keys (to name them in a DuplicateJob error).
-- $1 keys
SELECT idempotency_key, id FROM _ayb_jobs WHERE idempotency_key = ANY($1::text[]);

-- name: active_jobs_by_unique_keys
-- The queued or running jobs holding the given unique keys (what a deduplicated enqueue returns).
-- $1 unique keys
SELECT * FROM _ayb_jobs WHERE unique_key = ANY($1::text[]) AND state IN ('queued', 'running');

-- name: notify
SELECT pg_notify('ayb_jobs', '');

-- name: notify_channel
-- The listener's self-test: a notification on its private channel. $1 channel
SELECT pg_notify($1, '');

-- name: claim_jobs
-- Claim up to $1 due jobs from the queues this daemon works ($4; NULL = every queue), skipping
-- paused queues and never going over a queue's global concurrency limit, in (priority, run_at, id)
-- order across those queues, returned in that order. The UPDATE starts the attempt and the lease.
--
-- However deep the backlog, the plan reads only the rows it takes (a plan test on 300,000 queued
-- rows in several queues checks it): the queues present are found by a skip scan (one index probe
-- per queue), and each queue's first due jobs are read off idx_ayb_jobs_queue_claim in claim order
-- under a LIMIT, with the row lock (SKIP LOCKED: concurrent claimers take disjoint sets) between
-- that LIMIT and the index scan, so there is no sort under the lock, where it would have to sort
-- every queued row. The merge of the queues' heads sorts at most (queues x $1) rows, above the locks.
-- Rows locked there but not picked are only skipped by other claimers until this commits. As in
-- the single-queue claim before it, the UPDATE finds the picked rows by primary key through an
-- array, whose length the planner takes as small, so it cannot turn into a hash of the table. The
-- batch limit is a subquery so that the planner costs a custom plan like the generic one: it then
-- keeps the generic plan instead of planning this statement again at every claim (0.4 ms each).
--
-- The global limit: for limited queues only, _ayb_jobs_queue_slots takes a transaction-scoped
-- advisory lock per queue and then counts the queue's running jobs on a snapshot taken after the
-- lock (a VOLATILE function's own), so a second daemon waits until the first has committed the rows
-- it set running and then counts them: two claimers can never both fill the same free slots (see
-- migration 032). Unlimited queues take no lock and never wait.
-- $1 limit, $2 lease seconds, $3 worker id, $4 queues (NULL = all)
WITH RECURSIVE present AS (
    (SELECT queue FROM _ayb_jobs WHERE state = 'queued' ORDER BY queue LIMIT 1)
    UNION ALL
    SELECT (SELECT j.queue FROM _ayb_jobs j WHERE j.state = 'queued' AND j.queue > p.queue
            ORDER BY j.queue LIMIT 1)
    FROM present p WHERE p.queue IS NOT NULL
), open AS MATERIALIZED (
    -- The queues this daemon works (names that no job uses yet simply are not present), unpaused.
    -- One filter, not a branch per case: a branch folded away in a custom plan makes it look
    -- cheaper than the generic one, and the statement would be planned again at every claim.
    SELECT p.queue, s.concurrency FROM present p
    LEFT JOIN _ayb_job_queues s ON s.name = p.queue
    WHERE p.queue IS NOT NULL AND ($4::text[] IS NULL OR p.queue = ANY($4::text[]))
      AND NOT coalesce(s.paused, false)
), slots AS MATERIALIZED (
    SELECT queue, free FROM _ayb_jobs_queue_slots(ARRAY(SELECT queue FROM open WHERE concurrency IS NOT NULL))
    WHERE EXISTS (SELECT 1 FROM open WHERE concurrency IS NOT NULL)
), picked AS MATERIALIZED (
    SELECT c.id FROM open o
    LEFT JOIN slots sl ON sl.queue = o.queue
    CROSS JOIN LATERAL (
        SELECT j.id, j.priority, j.run_at FROM _ayb_jobs j
        WHERE j.state = 'queued' AND j.queue = o.queue AND j.run_at <= now()
        ORDER BY j.priority, j.run_at, j.id
        LIMIT least($1::int, coalesce(sl.free, $1::int))
        FOR UPDATE SKIP LOCKED
    ) c
    WHERE o.concurrency IS NULL OR sl.free > 0
    ORDER BY c.priority, c.run_at, c.id
    LIMIT (SELECT $1::int)
), claimed AS (
    UPDATE _ayb_jobs j
    SET state = 'running', lease_until = now() + make_interval(secs => $2::float8), worker_id = $3,
        attempts = j.attempts + 1, claim_seq = j.claim_seq + 1, last_run_at = now(), updated_at = now()
    FROM unnest(ARRAY(SELECT id FROM picked)) AS picked(id)
    WHERE j.id = picked.id
    -- Only what running the job needs (models.ClaimedJob): every column costs decoding, per job.
    RETURNING j.id, j.type, j.payload, j.attempts, j.max_attempts, j.claim_seq,
              j.cancel_requested_at IS NOT NULL AS cancel_requested, j.queue, j.priority, j.run_at
)
-- In claim order, so a daemon starts the most urgent jobs first.
SELECT * FROM claimed ORDER BY priority, run_at, id;

-- name: seconds_until_next_job
-- How long until the earliest queued job that is not due yet falls due (NULL: none), so an idle
-- poller wakes for a retry's backoff or a delayed job instead of a whole poll interval later. Jobs
-- already due are left out: the poller just found it could not take them (another daemon holds
-- them, or their queue is paused or at its limit), and waking for them would spin.
-- The first row of idx_ayb_jobs_next_due, not min(run_at): when the statistics lag a burst of enqueues,
-- the planner counts on a few queued rows and aggregates all of them (85 ms at 300,000 queued);
-- the limit is a subquery for the same reason as in claim_jobs.
-- $1 now (NULL: the database clock; tests pass a time instead of waiting for it)
SELECT extract(epoch FROM (SELECT run_at FROM _ayb_jobs
                           WHERE state = 'queued' AND attempts >= 0  -- idx_ayb_jobs_next_due (036)
                             AND run_at > coalesce($1::timestamptz, now())
                           ORDER BY run_at, id LIMIT (SELECT 1)) - coalesce($1::timestamptz, now()))::float8
       AS seconds;

-- name: complete_jobs
-- Mark claimed jobs completed. Fenced by (id, worker, claim_seq): a job whose lease was lost and
-- re-claimed (elsewhere, or here after an admin retry) is not touched. Stores each handler's result
-- (JSON text, NULL for none; bounded by the daemon). Returns the claims completed.
-- Every fenced statement finds its rows by primary key, one probe per claim: the state test is
-- written `(j.state || '') = 'running'` so that it cannot use idx_ayb_jobs_lease. With a plain
-- `j.state = 'running'` the generic plan hash-joined the claims against that index, which holds an
-- entry for every version of every job claimed since the last vacuum: in a draining daemon this
-- statement took 3.8 ms per 64 jobs instead of 1.9 (pg_stat_statements, bench/compare.py (c)).
-- $1 ids, $2 claim seqs, $3 worker id, $4 results
UPDATE _ayb_jobs j
SET state = 'completed', completed_at = now(), lease_until = NULL, worker_id = NULL, updated_at = now(),
    result = d.result::jsonb
FROM unnest($1::uuid[], $2::bigint[], $4::text[]) AS d(id, seq, result)
WHERE j.id = d.id AND j.claim_seq = d.seq AND j.worker_id = $3 AND (j.state || '') = 'running'
RETURNING j.id, j.claim_seq;

-- name: fail_jobs
-- Record failed attempts: back to queued after the given backoff while attempts remain (and the
-- error is retryable), else failed. The error is appended to the history (last 10 kept).
-- Fenced like complete_jobs. Returns id and the resulting state.
-- $1 ids, $2 claim seqs, $3 errors, $4 backoff seconds, $5 retryable flags, $6 worker id
WITH d AS (
    SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::float8[], $5::bool[])
        AS d(id, seq, err, delay, retryable)
)
UPDATE _ayb_jobs j
SET state = CASE WHEN d.retryable AND j.attempts < j.max_attempts THEN 'queued' ELSE 'failed' END,
    run_at = CASE WHEN d.retryable AND j.attempts < j.max_attempts
                  THEN now() + make_interval(secs => d.delay) ELSE j.run_at END,
    last_error = d.err, lease_until = NULL, worker_id = NULL, updated_at = now(),
    errors = _ayb_jobs_append_error(j.errors, jsonb_build_object(
        'attempt', j.attempts, 'at', now(), 'error', d.err, 'worker_id', j.worker_id))
FROM d
WHERE j.id = d.id AND j.claim_seq = d.seq AND j.worker_id = $6 AND (j.state || '') = 'running'
RETURNING j.id, j.claim_seq, j.state;

-- name: snooze_jobs
-- Handlers that asked to run later (Snooze): queued again at now() + their delay, the attempt not
-- counted (attempts back down, snoozes up), lease cleared. A job an operator canceled meanwhile
-- ends canceled instead. Fenced like complete_jobs. Returns id and the resulting state.
-- $1 ids, $2 claim seqs, $3 worker id, $4 delays in seconds
UPDATE _ayb_jobs j
SET state = CASE WHEN j.cancel_requested_at IS NULL THEN 'queued' ELSE 'canceled' END,
    run_at = CASE WHEN j.cancel_requested_at IS NULL THEN now() + make_interval(secs => d.delay)
                  ELSE j.run_at END,
    canceled_at = CASE WHEN j.cancel_requested_at IS NULL THEN NULL ELSE now() END,
    attempts = j.attempts - 1, snoozes = j.snoozes + 1, lease_until = NULL, worker_id = NULL,
    updated_at = now()
FROM unnest($1::uuid[], $2::bigint[], $4::float8[]) AS d(id, seq, delay)
WHERE j.id = d.id AND j.claim_seq = d.seq AND j.worker_id = $3 AND (j.state || '') = 'running'
RETURNING j.id, j.claim_seq, j.state;

-- name: cancel_running_jobs
-- Jobs whose handler this daemon stopped because an operator canceled them: canceled, the
-- attempt counted, the reason as last error and in the history. Fenced like complete_jobs.
-- $1 ids, $2 claim seqs, $3 worker id, $4 reason
UPDATE _ayb_jobs j
SET state = 'canceled', canceled_at = now(), last_error = $4, lease_until = NULL, worker_id = NULL,
    updated_at = now(),
    errors = _ayb_jobs_append_error(j.errors, jsonb_build_object(
        'attempt', j.attempts, 'at', now(), 'error', $4::text, 'worker_id', j.worker_id))
FROM unnest($1::uuid[], $2::bigint[]) AS d(id, seq)
WHERE j.id = d.id AND j.claim_seq = d.seq AND j.worker_id = $3 AND (j.state || '') = 'running'
RETURNING j.id, j.claim_seq;

-- name: heartbeat_jobs
-- Extend the leases of this worker's in-flight jobs in one statement; returns the claims extended,
-- and whether an operator asked to cancel each (the fallback for a missed control notification).
-- $1 ids, $2 claim seqs, $3 lease seconds, $4 worker id
UPDATE _ayb_jobs j
SET lease_until = now() + make_interval(secs => $3::float8)
FROM unnest($1::uuid[], $2::bigint[]) AS d(id, seq)
WHERE j.id = d.id AND j.claim_seq = d.seq AND j.worker_id = $4 AND (j.state || '') = 'running'
RETURNING j.id, j.claim_seq, j.cancel_requested_at IS NOT NULL AS cancel_requested;

-- name: release_jobs
-- Give jobs back without counting the interrupted attempt: at shutdown (queued again at once), or
-- when our database connection went away under the handler (after a delay, so a handler that
-- keeps losing its connection cannot spin).
-- $1 ids, $2 claim seqs, $3 worker id, $4 reasons, $5 delays in seconds
UPDATE _ayb_jobs j
SET state = 'queued', run_at = now() + make_interval(secs => d.delay), attempts = j.attempts - 1,
    lease_until = NULL, worker_id = NULL, last_error = d.reason, updated_at = now()
FROM unnest($1::uuid[], $2::bigint[], $4::text[], $5::float8[]) AS d(id, seq, reason, delay)
WHERE j.id = d.id AND j.claim_seq = d.seq AND j.worker_id = $3 AND (j.state || '') = 'running'
RETURNING j.id, j.claim_seq;

-- name: release_unheld
-- After a claim that failed on our side (its answer lost, or timed out): it may have committed, and
-- then its jobs run under this worker id although this daemon holds none of them. Release every
-- running job of this worker that is not among the claims it holds: queued again at once, the
-- attempt not counted. (Worker ids are unique per daemon process.)
-- $1 worker id, $2 held ids, $3 held claim seqs, $4 reason
UPDATE _ayb_jobs j
SET state = 'queued', run_at = now(), attempts = j.attempts - 1, lease_until = NULL, worker_id = NULL,
    last_error = $4, updated_at = now()
WHERE j.state = 'running' AND j.worker_id = $1
  AND (j.id, j.claim_seq) NOT IN (SELECT * FROM unnest($2::uuid[], $3::bigint[]))
RETURNING j.id;

-- name: claim_rows
-- What became of claimed jobs whose fenced write, retried after a database error, matched no row:
-- the caller tells a first try that committed (state as written, claim_seq unchanged) from a lost
-- claim (claim_seq moved on, or the lease recovered). $1 ids
SELECT id, state, claim_seq, last_error FROM _ayb_jobs WHERE id = ANY($1::uuid[]);

-- name: recover_expired
-- Running jobs whose lease expired (their worker died or hung) go back to queued after a backoff,
-- or to failed when their attempts are used up, so a job that kills its worker cannot loop.
-- Backoff mirrors backoff.py (exponent capped at 16, so a row with thousands of attempts cannot
-- overflow power() and fail the whole batch); $2 is the jitter in [0, 1), chosen by the caller.
-- Every instant is $3 (NULL: the database's now(), what the daemon uses; tests pass a time past a
-- lease instead of waiting for it to run out).
-- $1 batch limit, $2 jitter seconds, $3 now
WITH expired AS MATERIALIZED (
    SELECT id, worker_id FROM _ayb_jobs
    WHERE state = 'running' AND lease_until < coalesce($3::timestamptz, now())
    ORDER BY lease_until
    LIMIT $1
    FOR UPDATE SKIP LOCKED
), msg AS (
    SELECT id, 'lease expired (worker ' || coalesce(worker_id, 'unknown') || ')' AS err, worker_id,
           coalesce($3::timestamptz, now()) AS at
    FROM expired
)
UPDATE _ayb_jobs j
SET state = CASE WHEN j.attempts < j.max_attempts THEN 'queued' ELSE 'failed' END,
    run_at = CASE WHEN j.attempts < j.max_attempts
                  THEN msg.at + make_interval(secs => least(5 * power(2, least(greatest(j.attempts, 1) - 1, 16)), 300)
                                              + $2::float8)
                  ELSE j.run_at END,
    last_error = msg.err, lease_until = NULL, worker_id = NULL, updated_at = msg.at,
    errors = _ayb_jobs_append_error(j.errors, jsonb_build_object(
        'attempt', j.attempts, 'at', msg.at, 'error', msg.err, 'worker_id', msg.worker_id))
FROM msg
WHERE j.id = msg.id
RETURNING j.id, j.type, j.state, j.attempts, j.max_attempts, msg.worker_id AS lost_worker_id;

-- name: get_job
-- $1 id
SELECT * FROM _ayb_jobs WHERE id = $1;

-- name: job_state
-- $1 id
SELECT state FROM _ayb_jobs WHERE id = $1;

-- name: cancel_job
-- A queued job is canceled at once; for a running one see request_cancel.
-- $1 id
UPDATE _ayb_jobs SET state = 'canceled', canceled_at = now(), updated_at = now()
WHERE id = $1 AND state = 'queued'
RETURNING *;

-- name: request_cancel
-- Ask the daemon that runs these jobs to stop their handlers: mark them and tell every daemon on
-- the control channel (delivered at commit); the one holding a job cancels it and ends it
-- `canceled`. Its heartbeat also reads the mark, in case the notification was missed. The first
-- request's time is kept. $1 ids
WITH marked AS (
    UPDATE _ayb_jobs SET cancel_requested_at = coalesce(cancel_requested_at, now()), updated_at = now()
    WHERE id = ANY($1::uuid[]) AND state = 'running'
    RETURNING *
), told AS (
    SELECT pg_notify('ayb_jobs_control', 'cancel ' || id::text) FROM marked
)
SELECT marked.* FROM marked CROSS JOIN (SELECT count(*) FROM told) t;

-- name: retry_job
-- Admin retry of a failed or canceled job: queued now with fresh attempts; the error history stays.
-- $1 id
UPDATE _ayb_jobs
SET state = 'queued', run_at = now(), attempts = 0, lease_until = NULL, worker_id = NULL,
    canceled_at = NULL, completed_at = NULL, cancel_requested_at = NULL, updated_at = now()
WHERE id = $1 AND state IN ('failed', 'canceled')
RETURNING *;

-- name: delete_job
-- Only a finished job can be deleted; a queued or running one is canceled first.
-- $1 id
DELETE FROM _ayb_jobs WHERE id = $1 AND state IN ('completed', 'failed', 'canceled')
RETURNING id, type, state;

-- name: bulk_match
-- What an admin bulk action's filter matches (NULL = any), at most $6 rows, with their states:
-- the caller refuses a filter broader than its bound before it changes anything, and applies the
-- action's state rule to these ids (re-checked under the row locks by the bulk statements below).
-- $1 state, $2 type, $3 ids, $4 last_error pattern (ILIKE), $5 created before, $6 limit, $7 queue
SELECT id, state FROM _ayb_jobs
WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR type = $2)
  AND ($3::uuid[] IS NULL OR id = ANY($3::uuid[])) AND ($4::text IS NULL OR last_error ILIKE $4)
  AND ($5::timestamptz IS NULL OR created_at < $5) AND ($7::text IS NULL OR queue = $7)
LIMIT $6;

-- name: bulk_retry
-- retry_job for many: failed or canceled jobs queued again now with fresh attempts. A job whose
-- unique key is held by a queued or running job (or by another job of this batch, newest kept)
-- stays as it is, so one held key cannot fail the whole batch. Returns the ids queued.
-- $1 ids
WITH locked AS MATERIALIZED (
    SELECT id, unique_key, created_at FROM _ayb_jobs
    WHERE id = ANY($1::uuid[]) AND state IN ('failed', 'canceled')
    FOR UPDATE
), ranked AS (
    SELECT id, unique_key,
           row_number() OVER (PARTITION BY unique_key ORDER BY created_at DESC, id) AS n
    FROM locked
), chosen AS (
    SELECT id FROM ranked r
    WHERE r.unique_key IS NULL
       OR (r.n = 1 AND NOT EXISTS (SELECT 1 FROM _ayb_jobs a WHERE a.unique_key = r.unique_key
                                   AND a.state IN ('queued', 'running')))
)
UPDATE _ayb_jobs j
SET state = 'queued', run_at = now(), attempts = 0, lease_until = NULL, worker_id = NULL,
    canceled_at = NULL, completed_at = NULL, cancel_requested_at = NULL, updated_at = now()
FROM chosen
WHERE j.id = chosen.id
RETURNING j.id;

-- name: bulk_cancel_queued
-- cancel_job for many queued jobs (running ones go through request_cancel). $1 ids
UPDATE _ayb_jobs SET state = 'canceled', canceled_at = now(), updated_at = now()
WHERE id = ANY($1::uuid[]) AND state = 'queued'
RETURNING id;

-- name: bulk_delete
-- delete_job for many: finished jobs only. $1 ids
DELETE FROM _ayb_jobs WHERE id = ANY($1::uuid[]) AND state IN ('completed', 'failed', 'canceled')
RETURNING id;

-- name: list_jobs
-- Newest first, optional filters (NULL = any). A summary ($8 false) leaves out the payload and the
-- error history and cuts last_error, so a list refreshed every few seconds stays small however big
-- the payloads are; CASE never reads (or de-TOASTs) the columns it does not return.
-- $1 state, $2 type, $3 limit, $4 offset, $5 timing ('due' or 'scheduled': run_at reached or not),
-- $6 schedule id, $7 search pattern (ILIKE over id, type, last error and payload text),
-- $8 full rows, $9 queue
SELECT id, type, state, run_at, attempts, max_attempts, created_at, updated_at, lease_until, worker_id,
       last_run_at, idempotency_key, schedule_id, completed_at, canceled_at,
       unique_key, snoozes, cancel_requested_at, queue, priority,
       CASE WHEN $8::bool THEN last_error ELSE left(last_error, 300) END AS last_error,
       CASE WHEN $8::bool THEN payload END AS payload,
       CASE WHEN $8::bool THEN errors END AS errors,
       CASE WHEN $8::bool THEN result END AS result
FROM _ayb_jobs
WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR type = $2)
  AND ($5::text IS NULL OR ($5 = 'due' AND run_at <= now()) OR ($5 = 'scheduled' AND run_at > now()))
  AND ($6::uuid IS NULL OR schedule_id = $6)
  AND ($7::text IS NULL OR id::text ILIKE $7 OR type ILIKE $7 OR last_error ILIKE $7
       OR payload::text ILIKE $7)
  AND ($9::text IS NULL OR queue = $9)
ORDER BY created_at DESC, id DESC
LIMIT $3 OFFSET $4;

-- name: count_jobs
-- The same filters as list_jobs. $1 state, $2 type, $3 timing, $4 schedule id, $5 search pattern,
-- $6 queue
SELECT count(*) AS total FROM _ayb_jobs
WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR type = $2)
  AND ($3::text IS NULL OR ($3 = 'due' AND run_at <= now()) OR ($3 = 'scheduled' AND run_at > now()))
  AND ($4::uuid IS NULL OR schedule_id = $4)
  AND ($5::text IS NULL OR id::text ILIKE $5 OR type ILIKE $5 OR last_error ILIKE $5
       OR payload::text ILIKE $5)
  AND ($6::text IS NULL OR queue = $6);

-- name: job_timeline
-- The dashboard's chart and per-type breakdown in one statement: jobs finished in the last $1
-- minutes, per minute and type (completed by completed_at, failed by updated_at), plus queued and
-- running jobs per type. Each arm names one state so that it reads through that state's partial
-- index (idx_ayb_jobs_completed_at, idx_ayb_jobs_failed_updated, the claim and lease indexes): the
-- cost follows the window's volume and the live queue, not the table's size. The window bound is
-- written with now() (not a CTE column) so the planner can estimate it. The one-row `clock` side
-- makes an empty window still return the current minute.
-- $1 minutes
WITH counted AS (
    SELECT type, date_trunc('minute', completed_at) AS minute, 'completed' AS outcome FROM _ayb_jobs
    WHERE state = 'completed'
      AND completed_at >= date_trunc('minute', now()) - make_interval(mins => $1::int - 1)
    UNION ALL
    SELECT type, date_trunc('minute', updated_at), 'failed' FROM _ayb_jobs
    WHERE state = 'failed' AND updated_at >= date_trunc('minute', now()) - make_interval(mins => $1::int - 1)
    UNION ALL
    SELECT type, NULL, 'queued' FROM _ayb_jobs WHERE state = 'queued'
    UNION ALL
    SELECT type, NULL, 'running' FROM _ayb_jobs WHERE state = 'running'
), grouped AS (
    SELECT type, minute, outcome, count(*) AS n FROM counted GROUP BY type, minute, outcome
)
SELECT clock.current_minute, grouped.*
FROM (SELECT date_trunc('minute', now()) AS current_minute) clock LEFT JOIN grouped ON true;

-- name: job_stats
-- Queue counts that stay cheap however many jobs the table holds: each state is counted exactly
-- through its partial index, but only up to 1000 rows (exact_cap); the caller estimates the states
-- that reach the cap
-- from the table's live-row count (kept current by the statistics system) and, when several do,
-- splits the rest in proportion to their indexes' row estimates. queued = due + scheduled.
-- The oldest age is of due jobs only, so a job scheduled for the future never makes it negative.
-- No parameters, so the prepared plan is made once (planning costs more than running it).
SELECT 1000 AS exact_cap,
       (SELECT count(*) FROM (SELECT 1 FROM _ayb_jobs WHERE state = 'queued' AND run_at <= now()
                              LIMIT 1000) x) AS due,
       (SELECT count(*) FROM (SELECT 1 FROM _ayb_jobs WHERE state = 'queued' AND run_at > now()
                              LIMIT 1000) x) AS scheduled,
       (SELECT count(*) FROM (SELECT 1 FROM _ayb_jobs WHERE state = 'running' LIMIT 1000) x) AS running,
       (SELECT count(*) FROM (SELECT 1 FROM _ayb_jobs WHERE state = 'completed' LIMIT 1000) x) AS completed,
       (SELECT count(*) FROM (SELECT 1 FROM _ayb_jobs WHERE state = 'failed' LIMIT 1000) x) AS failed,
       (SELECT count(*) FROM (SELECT 1 FROM _ayb_jobs WHERE state = 'canceled' LIMIT 1000) x) AS canceled,
       -- The first due row of the claim index, not min(run_at): see seconds_until_next_job.
       greatest(coalesce(extract(epoch FROM now() - (
           SELECT run_at FROM _ayb_jobs WHERE state = 'queued' AND attempts >= 0 AND run_at <= now()
           ORDER BY run_at, id
           LIMIT (SELECT 1))), 0), 0)::float8 AS oldest_queued_age_sec,
       pg_stat_get_live_tuples('_ayb_jobs'::regclass)::float8 AS live_rows,
       (SELECT coalesce(jsonb_object_agg(i.predicate_state, c.reltuples), '{}'::jsonb)::text
        FROM pg_index x
        JOIN pg_class c ON c.oid = x.indexrelid
        CROSS JOIN LATERAL (SELECT substring(pg_get_expr(x.indpred, x.indrelid)
                                             FROM '^\(\(state\)::text = ''([a-z]+)''::text\)$')
                            AS predicate_state) i
        WHERE x.indrelid = '_ayb_jobs'::regclass AND i.predicate_state IS NOT NULL) AS index_rows;

-- name: active_counts
-- Queued and running jobs, each counted through its partial index and only up to $1: the systemd
-- STATUS line runs this every few seconds under the watchdog ping's timeout, and an exact count of
-- a deep queue takes time in proportion to its depth (81 ms at 300,000 queued), so a large enough
-- backlog would make the daemon miss its watchdog. $1 cap
SELECT (SELECT count(*) FROM (SELECT 1 FROM _ayb_jobs WHERE state = 'queued' LIMIT $1) x) AS queued,
       (SELECT count(*) FROM (SELECT 1 FROM _ayb_jobs WHERE state = 'running' LIMIT $1) x) AS running;

-- name: prune_jobs
-- Delete one bounded batch of finished jobs older than their retention. $1 completed/canceled
-- retention hours, $2 failed retention hours, $3 batch size
WITH doomed AS (
    SELECT id FROM _ayb_jobs
    WHERE (state = 'completed' AND completed_at < now() - make_interval(hours => $1))
       OR (state = 'canceled' AND canceled_at < now() - make_interval(hours => $1))
       OR (state = 'failed' AND updated_at < now() - make_interval(hours => $2))
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)
DELETE FROM _ayb_jobs j USING doomed WHERE j.id = doomed.id;

-- name: create_schedule
-- $1 name, $2 job type, $3 payload, $4 cron, $5 timezone, $6 enabled, $7 max attempts, $8 next run,
-- $9 overlap, $10 misfire, $11 misfire max, $12 queue, $13 priority (NULL: the job type's, when a
-- job is enqueued)
INSERT INTO _ayb_job_schedules (name, job_type, payload, cron_expr, timezone, enabled, max_attempts,
                                next_run_at, overlap, misfire, misfire_max, queue, priority)
VALUES ($1, $2, $3::text::jsonb, $4, $5, $6, $7, CASE WHEN $6 THEN $8::timestamptz END, $9, $10, $11,
        $12, $13)
RETURNING *;

-- name: get_schedule
-- $1 id
SELECT * FROM _ayb_job_schedules WHERE id = $1;

-- name: schedule_timing_inputs
-- What next_run_at is computed from, with the database clock. $1 id
SELECT cron_expr, timezone, enabled, now() AS now FROM _ayb_job_schedules WHERE id = $1;

-- name: list_schedules
SELECT * FROM _ayb_job_schedules ORDER BY name;

-- name: update_schedule
-- One statement that writes only the supplied fields (NULL = not supplied). next_run_at is
-- cleared when the schedule ends up disabled; set to $8 when cron/timezone change ($9) or when a
-- disabled schedule is enabled; otherwise left alone, so an update racing the scheduler's advance
-- can never restore an old slot. The guard on cron/timezone ($10, $11: the values $8 was computed
-- from) makes a concurrent change of those inputs a retry instead of a wrong next_run_at.
-- $1 id, $2 cron, $3 timezone, $4 payload, $5 enabled, $6 max attempts, $7 job type,
-- $8 next run, $9 timing changed, $10 cron read, $11 timezone read, $12 overlap, $13 misfire,
-- $14 misfire max, $15 queue, $16 priority, $17 clear queue, $18 clear priority (back to the job
-- type's)
UPDATE _ayb_job_schedules
SET cron_expr = coalesce($2, cron_expr),
    overlap = coalesce($12, overlap),
    misfire = coalesce($13, misfire),
    misfire_max = coalesce($14::int, misfire_max),
    queue = CASE WHEN $17::bool THEN NULL ELSE coalesce($15, queue) END,
    priority = CASE WHEN $18::bool THEN NULL ELSE coalesce($16::smallint, priority) END,
    timezone = coalesce($3, timezone),
    payload = coalesce($4::text::jsonb, payload),
    enabled = coalesce($5, enabled),
    max_attempts = coalesce($6, max_attempts),
    job_type = coalesce($7, job_type),
    next_run_at = CASE
        WHEN NOT coalesce($5, enabled) THEN NULL
        WHEN $9::bool OR NOT enabled OR next_run_at IS NULL THEN $8::timestamptz
        ELSE next_run_at
    END,
    updated_at = now()
WHERE id = $1 AND ($10::text IS NULL OR (cron_expr = $10 AND timezone = $11))
RETURNING *;

-- name: delete_schedule
-- $1 id
DELETE FROM _ayb_job_schedules WHERE id = $1 RETURNING id;

-- name: due_schedules
-- Enabled schedules whose slot has come, with the scheduler's clock ($1; NULL = the database's
-- now(), which is what the daemon uses; tests pass an instant) to compute the slots from.
-- $1 clock
SELECT id, name, job_type, cron_expr, timezone, next_run_at, overlap, misfire, misfire_max,
       coalesce($1::timestamptz, now()) AS now
FROM _ayb_job_schedules
WHERE enabled AND next_run_at IS NOT NULL AND next_run_at <= coalesce($1::timestamptz, now())
ORDER BY next_run_at;

-- name: fire_schedules
-- Decide the due slots of a batch of schedules in one statement (one transaction), advancing each
-- schedule to its next slot, recording one row per slot in _ayb_job_schedule_fires and enqueueing
-- the jobs. A schedule is taken only if it is still enabled, still at the slot the decisions were
-- computed from and has the cron/timezone they were computed with; SKIP LOCKED leaves a schedule
-- another daemon is deciding right now to that daemon (so two daemons share a large batch instead
-- of queueing behind each other's row locks). The fires' primary key makes a second decision of a
-- slot impossible; a slot that already has one is left as it is and enqueues nothing. 'enqueue'
-- decisions become 'skipped_overlap' when the schedule has overlap = 'skip' and a job of it is
-- still queued or running. Returns the decisions taken, with the job ids.
-- $1 schedule ids, $2 slots read (next_run_at), $3 next runs, $4 crons read, $5 timezones read,
-- $6 decision schedule ids, $7 decision slots, $8 decisions ('enqueue' | 'skipped_overlap' |
-- 'skipped_misfire'), $9 clock
WITH batch AS (
    SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[], $4::text[], $5::text[])
        AS b(id, slot, next, cron, tz)
), locked AS MATERIALIZED (
    SELECT s.id, batch.next FROM _ayb_job_schedules s JOIN batch ON batch.id = s.id
    WHERE s.enabled AND s.next_run_at = batch.slot AND s.cron_expr = batch.cron AND s.timezone = batch.tz
    FOR UPDATE OF s SKIP LOCKED
), adv AS (
    UPDATE _ayb_job_schedules s
    SET last_run_at = coalesce($9::timestamptz, now()), next_run_at = locked.next, updated_at = now()
    FROM locked WHERE s.id = locked.id
    RETURNING s.id, s.job_type, s.payload, s.max_attempts, s.overlap, s.queue, s.priority
), busy AS (
    SELECT adv.id FROM adv
    WHERE adv.overlap = 'skip' AND EXISTS (
        SELECT 1 FROM _ayb_jobs j
        WHERE j.schedule_id = adv.id AND j.state IN ('queued', 'running'))
), decided AS MATERIALIZED (
    SELECT d.sid, d.slot, adv.job_type, adv.payload, adv.max_attempts, adv.queue, adv.priority,
           CASE WHEN d.want = 'enqueue' AND busy.id IS NOT NULL THEN 'skipped_overlap'
                WHEN d.want = 'enqueue' THEN 'enqueued' ELSE d.want END AS outcome,
           -- The jobs' ids are made here (the fires row names them), as the column default would.
           CASE WHEN d.want = 'enqueue' AND busy.id IS NULL THEN _ayb_uuid_v7() END AS job_id
    FROM unnest($6::uuid[], $7::timestamptz[], $8::text[]) AS d(sid, slot, want)
    JOIN adv ON adv.id = d.sid
    LEFT JOIN busy ON busy.id = d.sid
), fired AS (
    INSERT INTO _ayb_job_schedule_fires (schedule_id, slot_at, decided_at, job_id, outcome)
    SELECT sid, slot, coalesce($9::timestamptz, now()), job_id, outcome FROM decided
    ON CONFLICT (schedule_id, slot_at) DO NOTHING
    RETURNING schedule_id, slot_at, job_id, outcome
), ins AS (
    -- Only the jobs whose decision row went in. The ids are compared as one array (built once)
    -- rather than joined: the planner cannot know the CTEs' sizes and would pick a nested loop.
    -- The schedule's queue and priority, else the job type's policy, else the column defaults.
    INSERT INTO _ayb_jobs (id, type, payload, max_attempts, schedule_id, queue, priority)
    SELECT d.job_id, d.job_type, d.payload, d.max_attempts, d.sid, coalesce(d.queue, jt.queue, 'default'),
           coalesce(d.priority, jt.priority, 0)
    FROM decided d LEFT JOIN _ayb_job_types jt ON jt.type = d.job_type
    WHERE d.job_id = ANY(ARRAY(SELECT job_id FROM fired WHERE job_id IS NOT NULL))
    ORDER BY d.slot
    RETURNING id
), wake AS (
    SELECT pg_notify('ayb_jobs', '') FROM (SELECT 1) one WHERE EXISTS (SELECT 1 FROM ins)
)
SELECT fired.schedule_id, fired.slot_at, fired.outcome, fired.job_id
FROM fired CROSS JOIN (SELECT count(*) AS n FROM wake) w
ORDER BY fired.schedule_id, fired.slot_at;

-- name: schedule_history
-- The newest fire decisions of one schedule, with the current state of each job (NULL once the
-- job was pruned). $1 schedule id, $2 limit
SELECT f.slot_at, f.decided_at, f.outcome, f.job_id, j.state AS job_state
FROM _ayb_job_schedule_fires f
LEFT JOIN _ayb_jobs j ON j.id = f.job_id
WHERE f.schedule_id = $1
ORDER BY f.slot_at DESC
LIMIT $2;

-- name: prune_schedule_fires
-- Keep the newest $1 decisions of each schedule: for every schedule, find the slot $1 places down
-- its history (one short index walk each) and delete that slot and older ones.
-- $1 rows kept per schedule
WITH cut AS (
    SELECT s.id, c.slot_at
    FROM _ayb_job_schedules s
    CROSS JOIN LATERAL (
        SELECT slot_at FROM _ayb_job_schedule_fires f WHERE f.schedule_id = s.id
        ORDER BY slot_at DESC OFFSET $1 LIMIT 1) c
)
DELETE FROM _ayb_job_schedule_fires f USING cut
WHERE f.schedule_id = cut.id AND f.slot_at <= cut.slot_at;

-- name: schedules_missing_next_run
-- Enabled schedules with no next_run_at (new defaults from a migration, or rows written by hand).
SELECT id, cron_expr, timezone, now() AS now FROM _ayb_job_schedules
WHERE enabled AND next_run_at IS NULL;

-- name: set_missing_next_run
-- $1 ids, $2 next runs
UPDATE _ayb_job_schedules s SET next_run_at = d.next, updated_at = now()
FROM unnest($1::uuid[], $2::timestamptz[]) AS d(id, next)
WHERE s.id = d.id AND s.enabled AND s.next_run_at IS NULL;

-- name: seconds_until_next_schedule
-- How long the scheduler may sleep: until the earliest enabled slot (NULL when none).
-- $1 clock (NULL = now())
SELECT extract(epoch FROM min(next_run_at) - coalesce($1::timestamptz, now()))::float8 AS seconds
FROM _ayb_job_schedules WHERE enabled AND next_run_at IS NOT NULL;

-- name: trigger_schedule
-- One run now with the schedule's type, payload, max attempts, queue and priority (as a fired
-- slot gets them); the schedule's times untouched.
-- $1 schedule id
WITH ins AS (
    INSERT INTO _ayb_jobs (type, payload, max_attempts, schedule_id, queue, priority)
    SELECT s.job_type, s.payload, s.max_attempts, s.id, coalesce(s.queue, jt.queue, 'default'),
           coalesce(s.priority, jt.priority, 0)
    FROM _ayb_job_schedules s LEFT JOIN _ayb_job_types jt ON jt.type = s.job_type
    WHERE s.id = $1
    RETURNING *
), wake AS (
    SELECT pg_notify('ayb_jobs', '') FROM (SELECT 1) one WHERE EXISTS (SELECT 1 FROM ins)
)
SELECT ins.* FROM ins CROSS JOIN (SELECT count(*) AS n FROM wake) w;

-- =================================================================================================
-- Queues and job types
-- =================================================================================================

-- name: publish_job_types
-- This daemon's registry with its policies (NULL = none), written at start. Types other daemons
-- registered are left alone. $1 types, $2 queues, $3 priorities, $4 max attempts, $5 timeouts,
-- $6 has backoff, $7 descriptions, $8 builtin
INSERT INTO _ayb_job_types AS t (type, queue, priority, max_attempts, timeout_s, has_backoff, description,
                                 builtin, updated_at)
SELECT * , now()
FROM unnest($1::text[], $2::text[], $3::smallint[], $4::int[], $5::float8[], $6::bool[], $7::text[],
            $8::bool[])
ON CONFLICT (type) DO UPDATE
SET queue = excluded.queue, priority = excluded.priority, max_attempts = excluded.max_attempts,
    timeout_s = excluded.timeout_s, has_backoff = excluded.has_backoff,
    description = excluded.description, builtin = excluded.builtin, updated_at = now()
WHERE (t.queue, t.priority, t.max_attempts, t.timeout_s, t.has_backoff, t.description, t.builtin)
      IS DISTINCT FROM (excluded.queue, excluded.priority, excluded.max_attempts, excluded.timeout_s,
                        excluded.has_backoff, excluded.description, excluded.builtin);

-- name: list_queues
-- Every queue with a settings row or a queued or running job, with its depth. The queued counts
-- come from one index-only pass over the queue's entries in idx_ayb_jobs_queue_claim; running
-- jobs are few (at most the workers' slots). $1 name (NULL = all)
WITH RECURSIVE present AS (
    (SELECT queue FROM _ayb_jobs WHERE state = 'queued' ORDER BY queue LIMIT 1)
    UNION ALL
    SELECT (SELECT j.queue FROM _ayb_jobs j WHERE j.state = 'queued' AND j.queue > p.queue
            ORDER BY j.queue LIMIT 1)
    FROM present p WHERE p.queue IS NOT NULL
), running AS (
    SELECT queue, count(*) AS n FROM _ayb_jobs WHERE state = 'running' GROUP BY queue
), names AS (
    SELECT queue AS name FROM present WHERE queue IS NOT NULL
    UNION SELECT queue FROM running
    UNION SELECT name FROM _ayb_job_queues
)
SELECT n.name, coalesce(s.paused, false) AS paused, s.concurrency, s.updated_at,
       d.queued, d.scheduled, coalesce(r.n, 0) AS running,
       greatest(coalesce(extract(epoch FROM now() - d.oldest_due), 0), 0)::float8 AS oldest_due_age_sec
FROM names n
LEFT JOIN _ayb_job_queues s ON s.name = n.name
LEFT JOIN running r ON r.queue = n.name
CROSS JOIN LATERAL (
    SELECT count(*) AS queued, count(*) FILTER (WHERE j.run_at > now()) AS scheduled,
           min(j.run_at) FILTER (WHERE j.run_at <= now()) AS oldest_due
    FROM _ayb_jobs j WHERE j.state = 'queued' AND j.queue = n.name
) d
WHERE $1::text IS NULL OR n.name = $1
ORDER BY n.name;

-- name: set_queue
-- Create or change a queue's settings; NULL leaves a field as it is, $4 clears the limit.
-- $1 name, $2 paused, $3 concurrency, $4 clear concurrency
INSERT INTO _ayb_job_queues AS q (name, paused, paused_at, concurrency)
VALUES ($1, coalesce($2, false), CASE WHEN $2 THEN now() END, CASE WHEN $4::bool THEN NULL ELSE $3::int END)
ON CONFLICT (name) DO UPDATE
SET paused = coalesce($2, q.paused),
    paused_at = CASE WHEN NOT coalesce($2, q.paused) THEN NULL ELSE coalesce(q.paused_at, now()) END,
    concurrency = CASE WHEN $4::bool THEN NULL ELSE coalesce($3::int, q.concurrency) END,
    updated_at = now()
RETURNING name;

-- name: job_breakdown
-- Live jobs (queued, of which scheduled, and running) per queue and per type, through the claim and
-- lease indexes: cheap however many finished jobs the table holds.
SELECT 'queue' AS by, queue AS name, state, count(*) FILTER (WHERE run_at > now()) AS later, count(*) AS n
FROM _ayb_jobs WHERE state IN ('queued', 'running') GROUP BY queue, state
UNION ALL
SELECT 'type', type, state, count(*) FILTER (WHERE run_at > now()), count(*)
FROM _ayb_jobs WHERE state IN ('queued', 'running') GROUP BY type, state;

-- name: table_exists
-- $1 table name (in the search path)
SELECT to_regclass($1) IS NOT NULL AS present;

-- name: delete_expired_sessions
-- $1 batch size
DELETE FROM _ayb_sessions WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM _ayb_sessions WHERE expires_at < now() LIMIT $1));

-- name: delete_old_webhook_deliveries
-- $1 retention hours, $2 batch size
DELETE FROM _ayb_webhook_deliveries WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM _ayb_webhook_deliveries
    WHERE delivered_at < now() - make_interval(hours => $1) LIMIT $2));

-- name: delete_expired_oauth_tokens
-- Expired more than a day ago, or revoked longer ago than the retention. $1 revoked retention
-- hours, $2 batch size
DELETE FROM _ayb_oauth_tokens WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM _ayb_oauth_tokens
    WHERE expires_at < now() - interval '1 day'
       OR (revoked_at IS NOT NULL AND revoked_at < now() - make_interval(hours => $1))
    LIMIT $2));

-- name: delete_expired_oauth_codes
-- Expired, or used more than a day ago. $1 batch size
DELETE FROM _ayb_oauth_authorization_codes WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM _ayb_oauth_authorization_codes
    WHERE expires_at < now() OR (used_at IS NOT NULL AND used_at < now() - interval '1 day')
    LIMIT $1));

-- name: delete_expired_magic_links
-- $1 batch size
DELETE FROM _ayb_magic_links WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM _ayb_magic_links WHERE expires_at < now() LIMIT $1));

-- name: delete_expired_password_resets
-- $1 batch size
DELETE FROM _ayb_password_resets WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM _ayb_password_resets WHERE expires_at < now() LIMIT $1));

-- =================================================================================================
-- Operator intelligence: admin audit log, live workers, Postgres health readings
-- =================================================================================================

-- name: audit_insert
-- One audit row, run on the connection (and so in the transaction) of the change it records.
-- $1 actor fingerprint, $2 remote address, $3 action, $4 target, $5 detail (json text)
INSERT INTO _ayb_admin_audit (actor, remote_addr, action, target, detail)
VALUES ($1, $2, $3, $4, $5::text::jsonb)
RETURNING id;

-- name: audit_list
-- A page of audit rows, newest first. $1 action (NULL = all), $2 limit, $3 offset
SELECT id, at, actor, remote_addr, action, target, detail
FROM _ayb_admin_audit
WHERE ($1::text IS NULL OR action = $1)
ORDER BY at DESC, id DESC
LIMIT $2 OFFSET $3;

-- name: audit_count
-- $1 action (NULL = all)
SELECT count(*) FROM _ayb_admin_audit WHERE ($1::text IS NULL OR action = $1);

-- name: delete_old_audit_entries
-- Audit rows older than the retention. $1 retention hours, $2 batch size
DELETE FROM _ayb_admin_audit WHERE id = ANY(ARRAY(
    SELECT id FROM _ayb_admin_audit WHERE at < now() - make_interval(hours => $1) LIMIT $2));

-- name: worker_upsert
-- This daemon's presence row: created at the first beat (started_at = then), refreshed after.
-- $1 worker id, $2 host, $3 pid, $4 version, $5 queues, $6 types, $7 concurrency, $8 in flight
INSERT INTO _ayb_job_workers AS w
    (worker_id, host, pid, version, started_at, last_seen_at, queues, types, concurrency, in_flight)
VALUES ($1, $2, $3, $4, now(), now(), $5, $6, $7, $8)
ON CONFLICT (worker_id) DO UPDATE
SET last_seen_at = now(), queues = excluded.queues, types = excluded.types,
    concurrency = excluded.concurrency, in_flight = excluded.in_flight;

-- name: worker_delete
-- $1 worker id
DELETE FROM _ayb_job_workers WHERE worker_id = $1;

-- name: workers_delete_gone
-- Rows of daemons that died without deleting their own (kill -9, lost machine). $1 seconds unseen
DELETE FROM _ayb_job_workers WHERE last_seen_at < now() - make_interval(secs => $1);

-- name: workers_list
-- Every known worker, whether it is alive (seen within $1 seconds) and the jobs running on it, as
-- the job rows say (so a job whose worker died shows up under that worker until it is recovered).
-- $1 alive window in seconds
SELECT w.*, w.last_seen_at >= now() - make_interval(secs => $1) AS alive,
       coalesce(r.jobs, '[]'::jsonb) AS jobs
FROM _ayb_job_workers w
LEFT JOIN LATERAL (
    SELECT jsonb_agg(jsonb_build_object('id', j.id, 'type', j.type, 'startedAt', j.last_run_at,
                                        'leaseUntil', j.lease_until) ORDER BY j.last_run_at) AS jobs
    FROM _ayb_jobs j
    WHERE j.state = 'running' AND j.worker_id = w.worker_id
) r ON true
ORDER BY w.started_at, w.worker_id;

-- name: explain_lock_probe
-- First statement of explain's snapshot: is the job's row free? FOR SHARE conflicts with every
-- writer's lock (FOR UPDATE of a claim or SELECT ... FOR UPDATE, FOR NO KEY UPDATE of an UPDATE),
-- and SKIP LOCKED turns "locked" into "no row" instead of waiting. $1 job id
SELECT id FROM _ayb_jobs WHERE id = $1 FOR SHARE SKIP LOCKED;

-- name: explain_lock_holder
-- The session holding the row: a row lock leaves the locker's xid in the row's xmax. A multixact
-- (several lockers) matches no backend and gives no row. $1 job id
SELECT a.pid, a.application_name, a.state, a.xact_start, left(a.query, 200) AS query
FROM _ayb_jobs j JOIN pg_stat_activity a ON a.backend_xid = j.xmax
WHERE j.id = $1 AND a.pid <> pg_backend_pid();

-- name: explain_facts
-- The job, the database clock, the due jobs ahead of it in its queue's claim order (priority,
-- run_at, id; counted up to $2), its queue's settings and running jobs, and every known worker with
-- whether it is alive (seen within $3 seconds). $1 job id, $2 cap, $3 alive window
SELECT j.id, j.type, j.state, j.run_at, j.attempts, j.max_attempts, j.last_error, j.worker_id,
       j.lease_until, j.completed_at, j.canceled_at, j.cancel_requested_at, j.updated_at, now() AS now,
       j.queue, qs.paused_at AS queue_paused_at, qs.concurrency AS queue_limit,
       (SELECT count(*) FROM _ayb_jobs r WHERE r.state = 'running' AND r.queue = j.queue) AS queue_running,
       (SELECT count(*) FROM (
            SELECT 1 FROM _ayb_jobs q
            WHERE q.state = 'queued' AND q.queue = j.queue AND q.run_at <= now()
              AND (q.priority, q.run_at, q.id) < (j.priority, j.run_at, j.id)
            LIMIT $2) ahead) AS due_ahead,
       (SELECT coalesce(jsonb_agg(jsonb_build_object(
            'worker_id', w.worker_id, 'alive', w.last_seen_at >= now() - make_interval(secs => $3),
            'last_seen_at', w.last_seen_at, 'queues', w.queues, 'types', w.types,
            'concurrency', w.concurrency, 'in_flight', w.in_flight)), '[]'::jsonb)::text
        FROM _ayb_job_workers w) AS workers
FROM _ayb_jobs j LEFT JOIN _ayb_job_queues qs ON qs.name = j.queue
WHERE j.id = $1;

-- name: health_claim
-- Take this interval's reading: the snapshot row if it is older than $1 seconds and no other daemon
-- is taking it right now (SKIP LOCKED). No row means another daemon reads; use the snapshot.
-- $1 minimum age in seconds
SELECT reading, taken_at, now() AS now FROM _ayb_health_snapshot
WHERE id = 1 AND (taken_at IS NULL OR taken_at <= now() - make_interval(secs => $1))
FOR UPDATE SKIP LOCKED;

-- name: health_store
-- $1 taken by (worker id), $2 reading (json text)
UPDATE _ayb_health_snapshot SET taken_at = now(), taken_by = $1, reading = $2::text::jsonb WHERE id = 1;

-- name: health_snapshot
-- The last reading, whoever took it.
SELECT reading, taken_at, taken_by, now() AS now FROM _ayb_health_snapshot WHERE id = 1;

-- name: health_oldest_backend
-- The session of this database whose transaction (own xid, or snapshot xmin) is oldest: the one
-- that holds the xmin horizon back, so vacuum cannot remove rows that died after it began.
SELECT pid, application_name, state, coalesce(xact_start, backend_start) AS since, query_start,
       left(query, 200) AS query, greatest(age(backend_xid), age(backend_xmin)) AS xid_age,
       extract(epoch FROM now() - coalesce(xact_start, backend_start))::float8 AS age_s
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
  AND (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL)
ORDER BY greatest(age(backend_xid), age(backend_xmin)) DESC, since
LIMIT 1;

-- name: health_oldest_prepared
-- A prepared (two-phase) transaction holds the horizon until COMMIT/ROLLBACK PREPARED.
SELECT gid, owner, prepared AS since, age(transaction) AS xid_age,
       extract(epoch FROM now() - prepared)::float8 AS age_s
FROM pg_prepared_xacts
WHERE database = current_database()
ORDER BY prepared
LIMIT 1;

-- name: health_slots
-- Replication slots that hold an xmin (physical with hot_standby_feedback, or logical for this
-- database). Postgres keeps no time for a slot's xmin; the caller tracks since when it saw it.
SELECT slot_name, slot_type, active, active_pid, coalesce(xmin, catalog_xmin)::text AS xmin,
       greatest(age(xmin), age(catalog_xmin)) AS xid_age
FROM pg_replication_slots
WHERE (xmin IS NOT NULL OR catalog_xmin IS NOT NULL)
  AND (database IS NULL OR database = current_database())
ORDER BY slot_name;

-- name: health_tables
-- Dead tuples, last autovacuum and size (with indexes and TOAST) of the _ayb_* tables.
SELECT relname AS table_name, n_dead_tup AS dead_tuples,
       extract(epoch FROM now() - last_autovacuum)::float8 AS autovacuum_age_s,
       pg_total_relation_size(relid) AS bytes
FROM pg_stat_user_tables
WHERE schemaname = current_schema() AND relname LIKE '\_ayb\_%'
ORDER BY relname;

-- name: health_notify_queue
-- Fraction of the NOTIFY queue in use (0-1); when full, every NOTIFY (and so every enqueue) fails.
SELECT pg_notification_queue_usage()::float8 AS usage;
