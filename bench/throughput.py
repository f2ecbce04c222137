"""Throughput and latency of the real daemon against a real Postgres.

    .venv/bin/python bench/throughput.py [--jobs 20000] [--concurrency 64] [--daemons 1]

1. creates a scratch database on AYB_TEST_DATABASE_URL's server and migrates it;
2. enqueues --jobs no-op jobs with Client.enqueue_many, --batch rows per statement (enqueue jobs/s);
3. starts --daemons real daemons (`python -m ayb_jobs run`) and lets them drain the backlog: drain
   jobs/s from the first claim to the last completion, by the database clock; latency percentiles;
   rows per claim / complete statement (each statement stamps its rows with the same now(), so
   jobs / distinct last_run_at = rows per claim, jobs / distinct completed_at = rows per complete);
4. with the daemons idle and polling every 10 s, enqueues --single jobs one at a time through
   Client.enqueue, --gap-ms apart (beyond the client's 100 ms NOTIFY window): pickup latency
   last_run_at - created_at, i.e. the NOTIFY/LISTEN path;
5. prints a table and drops the database.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from ayb_jobs import Client, NewJob
from ayb_jobs.db.migrate import migrate_dsn

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
from noop_handlers import JOB_TYPE  # noqa: E402  (the daemon imports the same module)

ADMIN_URL = os.environ.get("AYB_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
IDLE_POLL_MS = 10_000
Row = tuple[str, str]


def url_for(dbname: str) -> str:
    return urlunsplit(urlsplit(ADMIN_URL)._replace(path="/" + dbname))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--jobs", type=int, default=20_000, help="jobs in the backlog to drain")
    p.add_argument("--batch", type=int, default=1_000, help="jobs per enqueue_many call (one statement)")
    p.add_argument("--concurrency", type=int, default=64, help="jobs.worker_concurrency of each daemon")
    p.add_argument("--daemons", type=int, default=1, choices=(1, 2, 3, 4))
    p.add_argument("--single", type=int, default=100, help="single enqueues for the NOTIFY latency run")
    p.add_argument("--gap-ms", type=int, default=120, help="time between single enqueues")
    p.add_argument("--log-level", default="info", help="the daemons' log.level (info logs every job)")
    p.add_argument("--timeout", type=float, default=90.0, help="give up draining after this many seconds")
    return p.parse_args(argv)


# --- daemons ---------------------------------------------------------------------------------------

class Daemon:
    """One `python -m ayb_jobs run` child; its JSON log goes to a file we can search."""

    def __init__(self, dsn: str, args: argparse.Namespace, log_path: Path,
                 env_changes: dict[str, str | None] | None = None) -> None:
        """`env_changes` sets (or, with None, removes) settings of the defaults below."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AYB_")}
        env.update({
            "AYB_DATABASE_URL": dsn, "AYB_JOBS_ENABLED": "true", "AYB_ADMIN_ENABLED": "false",
            "AYB_LOG_FORMAT": "json", "AYB_LOG_LEVEL": args.log_level,
            "AYB_JOBS_HANDLERS": '["noop_handlers:register"]',
            "AYB_JOBS_WORKER_CONCURRENCY": str(args.concurrency),
            "AYB_JOBS_POLL_INTERVAL_MS": str(IDLE_POLL_MS),
            "AYB_JOBS_SCHEDULER_ENABLED": "false",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH_DIR), os.environ.get("PYTHONPATH")])),
        })
        for key, value in (env_changes or {}).items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        self.log_path = log_path
        with open(log_path, "wb") as log_file:
            self.proc = subprocess.Popen([sys.executable, "-m", "ayb_jobs", "run"], env=env,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log_file)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")

    async def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                await asyncio.to_thread(self.proc.wait, 30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait, 10)

    def count(self, event: str) -> int:
        return self.log_text().count(f'"event": "{event}"')


# --- phases ----------------------------------------------------------------------------------------

async def enqueue_backlog(client: Client, jobs: int, batch: int) -> tuple[float, int]:
    """Returns (seconds, statements)."""
    await client.enqueue_many([])  # opens the client's pool outside the timing
    started = time.perf_counter()
    statements = 0
    for first in range(0, jobs, batch):
        await client.enqueue_many([NewJob(JOB_TYPE) for _ in range(min(batch, jobs - first))])
        statements += 1
    return time.perf_counter() - started, statements


async def wait_completed(conn: asyncpg.Connection, expected: int, timeout: float,
                         daemons: list[Daemon]) -> None:
    """The measurement uses the database clock, so the daemons' start-up time does not count."""
    deadline = time.monotonic() + timeout
    while True:
        for d in daemons:
            d.check_alive()
        done = await conn.fetchval("SELECT count(*) FROM _ayb_jobs WHERE state = 'completed'")
        if done >= expected:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {done} of {expected} jobs completed within {timeout}s")
        await asyncio.sleep(0.1)


PCT = "percentile_cont(array[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM {}))"

DRAIN_STATS = f"""
SELECT count(*) AS n,
       extract(epoch FROM max(completed_at) - min(last_run_at)) AS span_s,
       count(DISTINCT last_run_at) AS claims,
       count(DISTINCT completed_at) AS completes,
       {PCT.format("last_run_at - run_at")} AS pickup,
       {PCT.format("completed_at - last_run_at")} AS run,
       {PCT.format("completed_at - run_at")} AS total,
       count(*) FILTER (WHERE attempts <> 1) AS not_first_attempt
FROM _ayb_jobs WHERE state = 'completed' AND payload = '{{}}'::jsonb
"""

SINGLE_STATS = f"""
SELECT count(*) AS n, {PCT.format("last_run_at - created_at")} AS pickup,
       {PCT.format("completed_at - created_at")} AS total
FROM _ayb_jobs WHERE payload ? 'single'
"""


async def single_enqueues(client: Client, conn: asyncpg.Connection, n: int, gap_s: float) -> None:
    """One job at a time, each waited for (so the daemons are idle when the next one comes)."""
    for i in range(n):
        started = time.monotonic()
        job = await client.enqueue(JOB_TYPE, {"single": i})
        deadline = started + 15
        while not await conn.fetchval("SELECT completed_at IS NOT NULL FROM _ayb_jobs WHERE id = $1", job.id):
            if time.monotonic() > deadline:
                raise RuntimeError(f"single job {job.id} not completed within 15 s: NOTIFY path broken?")
            await asyncio.sleep(0.002)
        await asyncio.sleep(max(0.0, started + gap_s - time.monotonic()))


# --- report ----------------------------------------------------------------------------------------

def ms(values: list[float]) -> str:
    return " / ".join(f"{v * 1000:.1f}" for v in values)


def render(rows: list[Row]) -> str:
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label.ljust(width)}  {value}" for label, value in rows)


async def run(args: argparse.Namespace) -> list[Row]:
    name = f"ayb_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    daemons: list[Daemon] = []
    logs = Path(tempfile.mkdtemp(prefix="ayb-bench-"))
    try:
        dsn = url_for(name)
        await migrate_dsn(dsn)
        conn = await asyncpg.connect(dsn)
        await conn.execute("DELETE FROM _ayb_job_schedules")
        rows: list[Row] = [("setup", f"{args.jobs} jobs, {args.daemons} daemon(s) x concurrency "
                                     f"{args.concurrency}, log level {args.log_level}, "
                                     f"{os.cpu_count()} CPUs")]
        async with Client(dsn=dsn) as client:
            seconds, statements = await enqueue_backlog(client, args.jobs, args.batch)
            rows += [("enqueue_many", f"{args.jobs / seconds:,.0f} jobs/s ({seconds:.2f} s, "
                                      f"{args.jobs / statements:.0f} rows/statement)")]

            daemons = [Daemon(dsn, args, logs / f"daemon{i}.log") for i in range(args.daemons)]
            await wait_completed(conn, args.jobs, args.timeout, daemons)
            s = await conn.fetchrow(DRAIN_STATS)
            rows += [
                ("drain", f"{s['n'] / s['span_s']:,.0f} jobs/s ({s['span_s']:.2f} s, first claim -> last "
                          "completion, database clock)"),
                ("rows per claim statement", f"{s['n'] / s['claims']:.1f} ({s['claims']} claims)"),
                ("rows per complete statement", f"{s['n'] / s['completes']:.1f} ({s['completes']} writes)"),
                ("backlog wait p50/p95/p99 ms", f"{ms(s['pickup'])}  (last_run_at - run_at)"),
                ("claim->completed p50/p95/p99 ms", f"{ms(s['run'])}  (completed_at - last_run_at)"),
                ("total p50/p95/p99 ms", f"{ms(s['total'])}  (completed_at - run_at)"),
                ("jobs not done on attempt 1", str(s["not_first_attempt"])),
            ]
            if args.single:
                await single_enqueues(client, conn, args.single, args.gap_ms / 1000)
                s = await conn.fetchrow(SINGLE_STATS)
                rows += [
                    ("single enqueue pickup p50/p95/p99 ms",
                     f"{ms(s['pickup'])}  (last_run_at - created_at, {s['n']} jobs, poll {IDLE_POLL_MS} ms)"),
                    ("single enqueue total p50/p95/p99 ms", f"{ms(s['total'])}  (completed_at - created_at)"),
                ]
        await conn.close()
        rows.append(("daemon log: db_error / job_lease_lost",
                     f"{sum(d.count('db_error') for d in daemons)} / "
                     f"{sum(d.count('job_lease_lost') for d in daemons)}"))
        return rows
    finally:
        await asyncio.gather(*(d.stop() for d in daemons))
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        shutil.rmtree(logs, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = asyncio.run(run(args))
    sys.stdout.write(render(rows) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
