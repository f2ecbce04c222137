"""What the queue's own statements cost at a given depth and table size, without the daemon.

    .venv/bin/python bench/statements.py --queued 300000 [--finished 1000000] [--stats fresh|stale]
    .venv/bin/python bench/statements.py --finished 1000000 --loop
    .venv/bin/python bench/statements.py --loop [--claim no-queues]   # what queues cost the claim

1. creates a scratch database on AYB_TEST_DATABASE_URL's server and migrates it;
2. inserts --finished completed jobs and --queued queued ones (a thousand per run_at, as a batch
   enqueue writes them); `--stats fresh` then runs VACUUM ANALYZE, `--stats stale` runs it before
   the queued jobs arrive (the statistics say "nothing queued", as after a burst of enqueues that
   autovacuum has not caught up with), `--stats none` never;
3. without --loop: EXPLAIN (ANALYZE, BUFFERS) of every statement on the hot path (claim, the
   outcomes, heartbeat, release) and the idle path (recovery, the poller's next-due read, the
   systemd STATUS and /metrics gauges), --runs times each, every write rolled back so each run sees
   the same table: median (min-max) execution time and the buffers of the last run;
4. with --loop: one connection claims --batch jobs and completes them until the queue is empty:
   jobs/s, and per job the buffers, dirtied pages, full-page WAL images and WAL bytes of the claim
   and complete statements, from pg_stat_statements when the server has it loaded (after a
   CHECKPOINT, so every page a statement is first to touch shows as a full-page image);
5. drops the database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from ayb_jobs.db.migrate import migrate
from ayb_jobs.db.pool import SESSION_SETTINGS
from ayb_jobs.db.queries import ACTIVE_COUNT_CAP
from ayb_jobs.db.sql import SQL

ADMIN_URL = os.environ.get("AYB_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
FINISHED = """
    INSERT INTO _ayb_jobs (type, state, run_at, attempts, last_run_at, completed_at, created_at, updated_at)
    SELECT 't', 'completed', t, 1, t, t, t, t
    FROM (SELECT now() - interval '2 days' + g * interval '100 ms' AS t FROM generate_series(1, $1) g) s"""
# The claim as it was before queues and priorities (one FIFO, same returned columns), to measure
# what they cost: `--loop --claim no-queues` against `--loop`.
NO_QUEUES_CLAIM = """-- Claim without queues (bench/statements.py's baseline)
WITH picked AS MATERIALIZED (
    SELECT id, run_at FROM _ayb_jobs
    WHERE state = 'queued' AND run_at <= now() AND ($4::text[] IS NULL OR true)
    ORDER BY run_at, id
    LIMIT (SELECT $1::int)
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE _ayb_jobs j
    SET state = 'running', lease_until = now() + make_interval(secs => $2::float8), worker_id = $3,
        attempts = j.attempts + 1, claim_seq = j.claim_seq + 1, last_run_at = now(), updated_at = now()
    FROM unnest(ARRAY(SELECT id FROM picked)) AS picked(id)
    WHERE j.id = picked.id
    RETURNING j.id, j.type, j.payload, j.attempts, j.max_attempts, j.claim_seq,
              j.cancel_requested_at IS NOT NULL AS cancel_requested, j.queue, j.priority, j.run_at
)
SELECT * FROM claimed ORDER BY run_at, id"""
QUEUED = """
    INSERT INTO _ayb_jobs (type, run_at)
    SELECT 't', now() - interval '1 hour' + make_interval(secs => g / 1000) FROM generate_series(1, $1) g"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--queued", type=int, default=20_000, help="queued jobs")
    p.add_argument("--finished", type=int, default=0, help="completed jobs already in the table")
    p.add_argument("--stats", choices=("fresh", "stale", "none"), default="fresh",
                   help="when the planner's statistics were taken (see the module docstring)")
    p.add_argument("--batch", type=int, default=64, help="rows per claim (the worker's free slots)")
    p.add_argument("--runs", type=int, default=7, help="EXPLAIN runs per statement")
    p.add_argument("--loop", action="store_true", help="drain the queue with a bare claim/complete loop")
    p.add_argument("--plans", action="store_true", help="print each statement's last plan")
    p.add_argument("--claim", choices=("queues", "no-queues"), default="queues",
                   help="--loop with the shipped claim, or the claim as it was before queues")
    return p.parse_args(argv)


def url_for(dbname: str) -> str:
    return urlunsplit(urlsplit(ADMIN_URL)._replace(path="/" + dbname))


async def fill(conn: asyncpg.Connection, args: argparse.Namespace) -> None:
    await migrate(conn)
    await conn.execute("DELETE FROM _ayb_job_schedules")
    if args.finished:
        await conn.execute(FINISHED, args.finished)
    if args.stats == "stale":
        await conn.execute("VACUUM ANALYZE _ayb_jobs")
    await conn.execute(QUEUED, args.queued)
    if args.stats == "fresh":
        await conn.execute("VACUUM ANALYZE _ayb_jobs")


async def statements(conn: asyncpg.Connection, batch: int) -> dict[str, tuple[str, list[Any]]]:
    """Each statement with the arguments the runtime passes; the outcome statements get a claimed
    batch of their own (claimed and committed here)."""
    claimed = await conn.fetch(SQL["claim_jobs"], batch, 30.0, "w", None)
    ids, seqs, n = [r["id"] for r in claimed], [r["claim_seq"] for r in claimed], len(claimed)
    return {
        f"claim_jobs ({batch})": ("claim_jobs", [batch, 30.0, "w", None]),
        f"complete_jobs ({n})": ("complete_jobs", [ids, seqs, "w", [None] * n]),
        f"fail_jobs ({n})": ("fail_jobs", [ids, seqs, ["boom"] * n, [5.0] * n, [True] * n, "w"]),
        f"heartbeat_jobs ({n})": ("heartbeat_jobs", [ids, seqs, 30.0, "w"]),
        f"release_jobs ({n})": ("release_jobs", [ids, seqs, "w", ["shutdown"] * n, [0.0] * n]),
        "recover_expired (none expired)": ("recover_expired", [100, 0.5, None]),
        "seconds_until_next_job": ("seconds_until_next_job", [None]),
        "active_counts (systemd STATUS)": ("active_counts", [ACTIVE_COUNT_CAP]),
        "job_stats (/metrics)": ("job_stats", []),
    }


async def explain(conn: asyncpg.Connection, sql: str, params: list[Any],
                  runs: int) -> tuple[list[float], Any]:
    times, plan = [], None
    for _ in range(runs):
        tx = conn.transaction()
        await tx.start()
        try:
            plan = json.loads(await conn.fetchval("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, *params))
        finally:
            await tx.rollback()
        times.append(plan[0]["Execution Time"])
    return times, plan


async def report_statements(conn: asyncpg.Connection, args: argparse.Namespace) -> None:
    print(f"{'statement':34} {'ms median (min-max)':>24} {'buffers':>8}")
    for label, (name, params) in (await statements(conn, args.batch)).items():
        times, plan = await explain(conn, SQL[name].rstrip().rstrip(";"), params, args.runs)
        top = plan[0]["Plan"]
        buffers = top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0)
        spread = f"{statistics.median(times):.3f} ({min(times):.3f}-{max(times):.3f})"
        print(f"{label:34} {spread:>24} {buffers:>8}")
        if args.plans:
            tx = conn.transaction()
            await tx.start()
            rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + SQL[name].rstrip().rstrip(";"), *params)
            await tx.rollback()
            print("\n".join("    " + r[0] for r in rows))


async def report_loop(conn: asyncpg.Connection, args: argparse.Namespace) -> None:
    tracked = await conn.fetchval("SELECT 'pg_stat_statements' = ANY(string_to_array("
                                  "replace(current_setting('shared_preload_libraries'), ' ', ''), ','))")
    if tracked:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await conn.execute("CHECKPOINT")
        await conn.execute("SELECT pg_stat_statements_reset()")
    claim = SQL["claim_jobs"] if args.claim == "queues" else NO_QUEUES_CLAIM
    done, started = 0, time.perf_counter()
    while rows := await conn.fetch(claim, args.batch, 30.0, "w", None):
        await conn.fetch(SQL["complete_jobs"], [r["id"] for r in rows], [r["claim_seq"] for r in rows], "w",
                         [None] * len(rows))
        done += len(rows)
    print(f"claim/complete loop ({args.claim} claim), batch {args.batch}: "
          f"{done / (time.perf_counter() - started):,.0f} jobs/s")
    if not tracked:
        print("(no pg_stat_statements in shared_preload_libraries: no per-job buffers and WAL)")
        return
    for r in await conn.fetch("""
            SELECT CASE WHEN query LIKE '-- Claim%' THEN 'claim_jobs' ELSE 'complete_jobs' END AS name, rows,
                   shared_blks_hit + shared_blks_read AS blocks, shared_blks_dirtied AS dirtied, wal_fpi,
                   wal_bytes
            FROM pg_stat_statements
            WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND (query LIKE '-- Claim%' OR query LIKE '-- Mark claimed%') ORDER BY 1"""):
        n = r["rows"] or 1
        print(f"  {r['name']:14} per job: buffers {r['blocks'] / n:.1f}, dirtied {r['dirtied'] / n:.2f}, "
              f"full-page images {r['wal_fpi'] / n:.2f}, WAL {int(r['wal_bytes']) / n:,.0f} bytes")


async def main(args: argparse.Namespace) -> None:
    name = f"ayb_stmt_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        conn = await asyncpg.connect(url_for(name), server_settings=SESSION_SETTINGS)  # as the daemon
        try:
            await fill(conn, args)
            print(f"queued {args.queued:,}, finished {args.finished:,}, statistics {args.stats}")
            await (report_loop if args.loop else report_statements)(conn, args)
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
