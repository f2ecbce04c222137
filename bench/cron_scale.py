"""How late 5,000 schedules due in the same minute fire, with one or more real daemons.

    .venv/bin/python bench/cron_scale.py [--schedules 5000] [--daemons 1] [--minutes 2]

1. creates a scratch database on AYB_TEST_DATABASE_URL's server, migrates it and removes the
   built-in schedules;
2. inserts --schedules `* * * * *` schedules of the no-op job type, all due at the next minute
   (the one after, when the next is less than 15 s away, so the daemons are up in time);
3. starts --daemons real daemons (`python -m ayb_jobs run`, info logs) and watches --minutes slots:
   - lateness of each decision: decided_at - slot_at (decided_at is the deciding statement's
     now(), i.e. its start) — p50, p99 and max;
   - when the last decision of the slot became visible to another session (polled every 20 ms,
     so this is the real "all fired by"), as seconds after the minute;
   - exactly one decision per (schedule, slot) and one job per enqueued decision;
   - how the decisions split between the daemons (their `scheduler_pass` log lines);
4. prints a table and drops the database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from ayb_jobs.db.migrate import migrate_dsn

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
import throughput  # noqa: E402  (its daemon process, with the scheduler on here)
from noop_handlers import JOB_TYPE  # noqa: E402  (the daemon imports the same module)

ADMIN_URL = os.environ.get("AYB_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def url_for(dbname: str) -> str:
    return urlunsplit(urlsplit(ADMIN_URL)._replace(path="/" + dbname))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--schedules", type=int, default=5_000)
    p.add_argument("--daemons", type=int, default=1, choices=(1, 2, 3, 4))
    p.add_argument("--minutes", type=int, default=2, help="minute slots to measure")
    p.add_argument("--concurrency", type=int, default=64, help="jobs.worker_concurrency of each daemon")
    return p.parse_args(argv)


class Daemon(throughput.Daemon):
    """One `python -m ayb_jobs run` child with info logs (a `scheduler_pass` line per pass) and the
    scheduler on, polling at the default interval."""

    def __init__(self, dsn: str, concurrency: int, log_path: Path) -> None:
        super().__init__(dsn, argparse.Namespace(log_level="info", concurrency=concurrency), log_path,
                         {"AYB_JOBS_SCHEDULER_ENABLED": None, "AYB_JOBS_POLL_INTERVAL_MS": None})

    def decided(self) -> int:
        """Decisions this daemon took, from its `scheduler_pass` lines."""
        total = 0
        for line in self.log_path.read_text(errors="replace").splitlines():
            if '"event": "scheduler_pass"' in line:
                total += json.loads(line)["decided"]
        return total


async def add_schedules(conn: asyncpg.Connection, n: int) -> datetime:
    """n every-minute schedules, all due at the returned minute."""
    first = await conn.fetchval(
        "SELECT date_trunc('minute', now()) + CASE WHEN now() > date_trunc('minute', now()) + "
        "interval '45 seconds' THEN interval '2 minutes' ELSE interval '1 minute' END")
    await conn.execute(
        "INSERT INTO _ayb_job_schedules (name, job_type, cron_expr, next_run_at) "
        "SELECT 'bench-' || i, $1, '* * * * *', $2 FROM generate_series(1, $3) i", JOB_TYPE, first, n)
    return first


async def watch_slot(conn: asyncpg.Connection, slot: datetime, n: int, daemons: list[Daemon]) -> float:
    """Seconds after `slot` (by the database clock) at which all n decisions were visible."""
    deadline = time.monotonic() + 150
    while True:
        done, now = await conn.fetchrow(
            "SELECT count(*), clock_timestamp() FROM _ayb_job_schedule_fires WHERE slot_at = $1", slot)
        if done >= n:
            return (now - slot).total_seconds()
        for d in daemons:
            d.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {done} of {n} decisions for {slot} after the deadline")
        await asyncio.sleep(0.02)


async def slot_figures(conn: asyncpg.Connection, slot: datetime) -> dict[str, float]:
    r = await conn.fetchrow(
        """WITH f AS (SELECT *, extract(epoch FROM decided_at - slot_at) AS late
                      FROM _ayb_job_schedule_fires WHERE slot_at = $1)
           SELECT count(*) AS decisions, count(DISTINCT schedule_id) AS schedules,
                  count(*) FILTER (WHERE outcome = 'enqueued') AS enqueued,
                  percentile_cont(0.5) WITHIN GROUP (ORDER BY late) AS p50,
                  percentile_cont(0.99) WITHIN GROUP (ORDER BY late) AS p99, max(late) AS max
           FROM f""", slot)
    jobs = await conn.fetchval(
        "SELECT count(*) FROM _ayb_jobs j JOIN _ayb_job_schedule_fires f ON f.job_id = j.id "
        "WHERE f.slot_at = $1", slot)
    return {**dict(r), "jobs": jobs}


async def run(args: argparse.Namespace) -> int:
    name = f"ayb_cron_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = url_for(name)
    daemons: list[Daemon] = []
    logs = Path(tempfile.mkdtemp(prefix="ayb-cron-bench-"))
    try:
        await migrate_dsn(dsn)
        conn = await asyncpg.connect(dsn)
        await conn.execute("DELETE FROM _ayb_job_schedules")
        first = await add_schedules(conn, args.schedules)
        daemons = [Daemon(dsn, args.concurrency, logs / f"daemon{i}.log") for i in range(args.daemons)]
        print(f"{args.schedules} schedules due at {first:%H:%M:%S}, {args.daemons} daemon(s); logs in {logs}")
        ok = True
        for m in range(args.minutes):
            slot = first + timedelta(minutes=m)
            visible = await watch_slot(conn, slot, args.schedules, daemons)
            f = await slot_figures(conn, slot)
            once = f["decisions"] == f["schedules"] == args.schedules and f["jobs"] == f["enqueued"]
            ok &= once and visible <= 1.0
            print(f"slot {slot:%H:%M}: all {f['decisions']} decided and visible {visible:.3f} s after the "
                  f"minute; decided_at - slot p50 {f['p50']:.3f} s, p99 {f['p99']:.3f} s, "
                  f"max {f['max']:.3f} s; jobs {f['jobs']}; one decision per slot: {once}")
        split = [d.decided() for d in daemons]
        print(f"decisions per daemon (their scheduler_pass lines): {split}")
        await conn.close()
        return 0 if ok else 1
    finally:
        for d in daemons:
            await d.stop()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
