"""Side-by-side benchmark: ayb-jobs and (with --compare pgqueuer) pgqueuer, same workloads, same run.

    .venv/bin/python bench/compare.py                         # ayb-jobs only, full sizes, 3 runs each
    .venv/bin/python bench/compare.py --compare pgqueuer      # both, alternating A B A B
    .venv/bin/python bench/compare.py --quick                 # smaller sizes, 1 run: a smoke run

Workloads (bench/README.md says what each one means):
  a  enqueue one job per call from 10 producers        (jobs/s, client clock)
  b  enqueue 1,000 jobs per call                       (jobs/s, client clock)
  c  process 20,000 pre-queued no-op jobs              (jobs/s, first claim -> last completion, db clock)
     and again with 300,000 queued, the first 20,000 measured
  d  enqueue -> start latency at 100 jobs/s            (p50/p95/p99 ms, db clock)
  e  c with 1,000,000 finished jobs in the table       (jobs/s)
  f  how late `* * * * *` schedules start after their slot (p50/p99/max ms, db clock; waits for
     a minute boundary, so about a minute per run)

Every run gets its own empty scratch database on AYB_TEST_DATABASE_URL's server (default the
local Postgres), dropped afterwards; workers are real processes (`python -m ayb_jobs run` with a
config file, `python -m pgqueuer run`); every job is checked to have completed exactly once; every
wait has a deadline, so a broken system fails its run instead of hanging the benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
from noop_handlers import JOB_TYPE  # noqa: E402  (the daemon imports the same module)

ADMIN_URL = os.environ.get("AYB_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
WORKLOADS = ("a", "b", "c", "d", "e", "f")
PRODUCERS = 10
BATCH = 1_000
LATENCY_RATE = 100.0
CRON_SCHEDULES = 10


class BenchError(Exception):
    """A run that failed: it timed out, a worker died, or a job was lost or done twice."""


@dataclass(frozen=True)
class Sizes:
    single: int = 5_000          # a: jobs enqueued one per call
    batch: int = 20_000          # b: jobs enqueued BATCH per call
    process: int = 20_000        # c, e: jobs processed
    backlog: int = 300_000       # c: jobs queued for the backlog run (the first `process` measured)
    latency: int = 1_000         # d: jobs enqueued at LATENCY_RATE
    finished: int = 1_000_000    # e: finished jobs in the table


QUICK = Sizes(single=1_000, batch=5_000, process=5_000, backlog=50_000, latency=200, finished=100_000)


@dataclass(frozen=True)
class Settings:
    sizes: Sizes
    ayb_concurrency: int
    ayb_log_level: str
    pgq_batch: int
    timeout: float


def url_for(dbname: str) -> str:
    return urlunsplit(urlsplit(ADMIN_URL)._replace(path="/" + dbname))


# --- workers (real processes) --------------------------------------------------------------------

class Worker:
    """One worker process; its output goes to a file so a failure can show its last lines."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        with open(log_path, "wb") as log_file:
            self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log_file,
                                         stderr=subprocess.STDOUT)

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            lines = self.log_path.read_text(errors="replace").strip().splitlines() or [""]
            raise BenchError(f"worker exited with {self.proc.returncode}: {lines[-1][:200]} "
                             f"(log: {self.log_path})")

    def cpu_seconds(self) -> float:
        """User + system CPU the worker process has used so far (Linux /proc)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                await asyncio.to_thread(self.proc.wait, 20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait, 10)


def child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AYB_", "BENCH_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH_DIR), os.environ.get("PYTHONPATH")]))
    env.update(extra)
    return env


async def wait_until(what: str, check: Callable[[], Awaitable[bool]], deadline: float,
                     worker: Worker | None = None, interval: float = 0.1) -> None:
    while not await check():
        if worker is not None:
            worker.check_alive()
        if time.monotonic() > deadline:
            raise BenchError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)


# --- the two systems -------------------------------------------------------------------------------

class System:
    """What the workloads need from a queue. Counting and timing read each system's own rows."""

    name: str
    settings_note: str
    since: Any = None  # database time a run's own jobs start after (finished filler rows are older)
    template: str | None = None  # the database every run of this system is copied from

    def __init__(self, settings: Settings, logs: Path) -> None:
        self.settings = settings
        self.logs = logs

    async def install(self, dsn: str) -> None: ...
    async def enqueue_singles(self, dsn: str, n: int, producers: int) -> None: ...
    async def enqueue_batches(self, dsn: str, n: int, batch: int) -> None: ...
    async def add_finished(self, conn: asyncpg.Connection, n: int) -> None: ...
    def start_worker(self, dsn: str, *, cron: int = 0) -> Worker: ...  # type: ignore[empty-body]
    async def done_count(self, conn: asyncpg.Connection) -> int: ...  # type: ignore[empty-body]
    async def processing(self, conn: asyncpg.Connection, first: int) -> dict[str, Any]: ...  # type: ignore[empty-body]
    async def paced_enqueue(self, dsn: str, n: int, rate: float) -> None: ...
    async def latencies(self, conn: asyncpg.Connection, since: Any) -> list[float]: ...  # type: ignore[empty-body]
    async def cron_lateness(self, conn: asyncpg.Connection) -> list[float]: ...  # type: ignore[empty-body]


async def paced(n: int, rate: float, enqueue_one: Callable[[int], Awaitable[Any]]) -> None:
    """n calls at `rate` per second on an absolute timetable (a slow call does not shift the rest)."""
    start = time.perf_counter()
    for i in range(n):
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        await enqueue_one(i)


async def producers_loop(n: int, producers: int, enqueue_one: Callable[[], Awaitable[Any]]) -> None:
    remaining = [n]

    async def producer() -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            await enqueue_one()

    await asyncio.gather(*(producer() for _ in range(producers)))


class AybJobs(System):
    name = "ayb-jobs"

    @property
    def settings_note(self) -> str:  # type: ignore[override]
        s = self.settings
        return (f"one daemon, jobs.worker_concurrency = {s.ayb_concurrency}, log.level = {s.ayb_log_level}; "
                f"Client(pool=10 connections) for (a)")

    async def install(self, dsn: str) -> None:
        from ayb_jobs.db.migrate import migrate_dsn
        await migrate_dsn(dsn)
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("DELETE FROM _ayb_job_schedules")  # the built-in defaults: not measured
        finally:
            await conn.close()

    async def enqueue_singles(self, dsn: str, n: int, producers: int) -> None:
        from ayb_jobs import Client
        pool = await asyncpg.create_pool(dsn, min_size=producers, max_size=producers)
        try:
            client = Client(pool=pool)
            await producers_loop(n, producers, lambda: client.enqueue(JOB_TYPE))
            await client.close()
        finally:
            await pool.close()

    async def enqueue_batches(self, dsn: str, n: int, batch: int) -> None:
        from ayb_jobs import Client, NewJob
        async with Client(dsn=dsn) as client:
            for first in range(0, n, batch):
                await client.enqueue_many([NewJob(JOB_TYPE) for _ in range(min(batch, n - first))])

    async def add_finished(self, conn: asyncpg.Connection, n: int) -> None:
        await conn.execute("""
            INSERT INTO _ayb_jobs (type, state, run_at, attempts, last_run_at, completed_at,
                                   created_at, updated_at)
            SELECT $2, 'completed', t, 1, t, t, t, t
            FROM (SELECT now() - interval '2 days' + g * interval '100 ms' AS t
                  FROM generate_series(1, $1) g) s""", n, JOB_TYPE)
        await conn.execute("VACUUM ANALYZE _ayb_jobs")

    def start_worker(self, dsn: str, *, cron: int = 0) -> Worker:
        config = self.logs / f"ayb-{uuid.uuid4().hex[:6]}.toml"
        config.write_text(
            f'[database]\nurl = "{dsn}"\n\n'
            f'[jobs]\nenabled = true\nworker_concurrency = {self.settings.ayb_concurrency}\n'
            f'handlers = ["noop_handlers:register"]\nscheduler_enabled = {"true" if cron else "false"}\n\n'
            f'[admin]\nenabled = false\n\n'
            f'[log]\nformat = "json"\nlevel = "{self.settings.ayb_log_level}"\n')
        return Worker([sys.executable, "-m", "ayb_jobs", "run", "--config", str(config)], child_env({}),
                      config.with_suffix(".log"))

    async def done_count(self, conn: asyncpg.Connection) -> int:
        return await conn.fetchval(
            "SELECT count(*) FROM _ayb_jobs WHERE state = 'completed' AND completed_at >= $1", self.since)

    async def processing(self, conn: asyncpg.Connection, first: int) -> dict[str, Any]:
        # A job done twice would show attempts > 1 (every claim counts an attempt).
        return dict(await conn.fetchrow("""
            WITH done AS (SELECT completed_at, attempts FROM _ayb_jobs
                          WHERE state = 'completed' AND last_run_at >= $2
                          ORDER BY completed_at LIMIT $1)
            SELECT count(*) AS done, count(*) FILTER (WHERE attempts <> 1) AS repeated,
                   extract(epoch FROM max(completed_at) - (SELECT min(last_run_at) FROM _ayb_jobs
                                                           WHERE last_run_at >= $2)) AS span_s
            FROM done""", first, self.since))

    async def paced_enqueue(self, dsn: str, n: int, rate: float) -> None:
        from ayb_jobs import Client
        async with Client(dsn=dsn) as client:
            await paced(n, rate, lambda i: client.enqueue(JOB_TYPE, {"i": i}))

    async def latencies(self, conn: asyncpg.Connection, since: Any) -> list[float]:
        rows = await conn.fetch("""
            SELECT extract(epoch FROM last_run_at - created_at) AS s FROM _ayb_jobs
            WHERE created_at >= $1 AND state = 'completed' AND attempts = 1""", since)
        return [r["s"] for r in rows]

    async def cron_setup(self, conn: asyncpg.Connection, k: int) -> None:
        await conn.execute("""
            INSERT INTO _ayb_job_schedules (name, job_type, cron_expr)
            SELECT 'bench_cron_' || g, $2, '* * * * *' FROM generate_series(1, $1) g""", k, JOB_TYPE)

    async def cron_lateness(self, conn: asyncpg.Connection) -> list[float]:
        # The slot of a `* * * * *` schedule is the minute its job was created in; the job starts
        # when it is claimed (last_run_at).
        rows = await conn.fetch("""
            SELECT extract(epoch FROM last_run_at - date_trunc('minute', created_at)) AS s
            FROM _ayb_jobs WHERE schedule_id IS NOT NULL AND last_run_at IS NOT NULL""")
        return [r["s"] for r in rows]


class PgQueuer(System):
    name = "pgqueuer"

    @property
    def settings_note(self) -> str:  # type: ignore[override]
        from importlib.metadata import version
        return (f"pgqueuer {version('pgqueuer')}: its runner as `pgq run` (one process, "
                f"AsyncpgDriver), batch_size {self.settings.pgq_batch}, log level WARNING; "
                "AsyncpgPoolDriver(pool=10) for (a)")

    async def install(self, dsn: str) -> None:
        from pgqueuer.db import AsyncpgDriver
        from pgqueuer.queries import Queries
        conn = await asyncpg.connect(dsn)
        try:
            await Queries(AsyncpgDriver(conn)).install()
            await conn.execute("CREATE TABLE bench_cron_fired (name text NOT NULL, at timestamptz NOT NULL)")
        finally:
            await conn.close()

    async def enqueue_singles(self, dsn: str, n: int, producers: int) -> None:
        from pgqueuer.db import AsyncpgPoolDriver
        from pgqueuer.queries import Queries
        pool = await asyncpg.create_pool(dsn, min_size=producers, max_size=producers)
        try:
            queries = Queries(AsyncpgPoolDriver(pool))
            await producers_loop(n, producers, lambda: queries.enqueue(JOB_TYPE, None, 0))
        finally:
            await pool.close()

    async def enqueue_batches(self, dsn: str, n: int, batch: int) -> None:
        from pgqueuer.db import AsyncpgDriver
        from pgqueuer.queries import Queries
        conn = await asyncpg.connect(dsn)
        try:
            queries = Queries(AsyncpgDriver(conn))
            for first in range(0, n, batch):
                size = min(batch, n - first)
                await queries.enqueue([JOB_TYPE] * size, [None] * size, [0] * size)
        finally:
            await conn.close()

    async def add_finished(self, conn: asyncpg.Connection, n: int) -> None:
        # pgqueuer deletes a finished job from its queue table and keeps its history in the log
        # table: three rows per job (queued, picked, successful), already aggregated.
        await conn.execute("""
            INSERT INTO pgqueuer_log (job_id, status, entrypoint, priority, created, aggregated)
            SELECT -g, st::pgqueuer_status, $2, 0, now() - interval '2 days' + g * interval '100 ms', true
            FROM generate_series(1, $1) g, unnest(array['queued', 'picked', 'successful']) st""",
                           n, JOB_TYPE)
        await conn.execute("VACUUM ANALYZE pgqueuer_log")

    def start_worker(self, dsn: str, *, cron: int = 0) -> Worker:
        env = child_env({"BENCH_PGQ_DSN": dsn, "BENCH_CRON_SCHEDULES": str(cron)})
        argv = [sys.executable, str(BENCH_DIR / "pgq_worker.py"),
                "--batch-size", str(self.settings.pgq_batch)]
        return Worker(argv, env, self.logs / f"pgq-{uuid.uuid4().hex[:6]}.log")

    async def done_count(self, conn: asyncpg.Connection) -> int:
        return await conn.fetchval("SELECT count(*) FROM pgqueuer_log WHERE status = 'successful' "
                                   "AND job_id > 0 AND created >= $1", self.since)

    async def processing(self, conn: asyncpg.Connection, first: int) -> dict[str, Any]:
        return dict(await conn.fetchrow("""
            WITH done AS (SELECT job_id, created FROM pgqueuer_log
                          WHERE status = 'successful' AND job_id > 0 AND created >= $2
                          ORDER BY created LIMIT $1),
                 picks AS (SELECT job_id, count(*) AS n FROM pgqueuer_log
                           WHERE status = 'picked' AND job_id IN (SELECT job_id FROM done)
                           GROUP BY job_id)
            SELECT (SELECT count(DISTINCT job_id) FROM done) AS done,
                   (SELECT count(*) FROM done) - (SELECT count(DISTINCT job_id) FROM done)
                   + (SELECT count(*) FROM picks WHERE n <> 1) AS repeated,
                   extract(epoch FROM (SELECT max(created) FROM done) -
                           (SELECT min(created) FROM pgqueuer_log WHERE status = 'picked'
                            AND job_id > 0 AND created >= $2)) AS span_s""", first, self.since))

    async def paced_enqueue(self, dsn: str, n: int, rate: float) -> None:
        from pgqueuer.db import AsyncpgDriver
        from pgqueuer.queries import Queries
        conn = await asyncpg.connect(dsn)
        try:
            queries = Queries(AsyncpgDriver(conn))
            await paced(n, rate, lambda i: queries.enqueue(JOB_TYPE, str(i).encode(), 0))
        finally:
            await conn.close()

    async def latencies(self, conn: asyncpg.Connection, since: Any) -> list[float]:
        rows = await conn.fetch("""
            SELECT extract(epoch FROM p.created - q.created) AS s
            FROM pgqueuer_log q JOIN pgqueuer_log p ON p.job_id = q.job_id AND p.status = 'picked'
            WHERE q.status = 'queued' AND q.created >= $1""", since)
        return [r["s"] for r in rows]

    async def cron_setup(self, conn: asyncpg.Connection, k: int) -> None:
        return None  # the worker's factory registers the schedules

    async def cron_lateness(self, conn: asyncpg.Connection) -> list[float]:
        rows = await conn.fetch(
            "SELECT extract(epoch FROM at - date_trunc('minute', at)) AS s FROM bench_cron_fired")
        return [r["s"] for r in rows]


SYSTEMS: dict[str, type[System]] = {"ayb-jobs": AybJobs, "pgqueuer": PgQueuer}


# --- one run of one workload -----------------------------------------------------------------------

@dataclass
class Result:
    values: dict[str, float] = field(default_factory=dict)  # metric -> value
    note: str = ""


async def scratch_db(admin: asyncpg.Connection, template: str | None = None) -> str:
    """A new database; from `template` (a system's installed, still empty schema), a copy rather
    than an install per run. Postgres 15's default copy strategy (WAL_LOG) is used on purpose:
    FILE_COPY starts with a checkpoint, which takes seconds on a busy server."""
    name = f"ayb_cmp_{uuid.uuid4().hex[:10]}"
    clause = f' TEMPLATE "{template}"' if template else ""
    await admin.execute(f'CREATE DATABASE "{name}"{clause}')
    return name


async def make_template(system: System, admin: asyncpg.Connection) -> str:
    name = await scratch_db(admin)
    await system.install(url_for(name))
    return name


async def timed(coro: Awaitable[Any]) -> float:
    started = time.perf_counter()
    await coro
    return time.perf_counter() - started


async def run_enqueue_singles(system: System, dsn: str, conn: asyncpg.Connection) -> Result:
    n = system.settings.sizes.single
    seconds = await timed(system.enqueue_singles(dsn, n, PRODUCERS))
    await check_queued(system, conn, n)
    return Result({"a": n / seconds})


async def run_enqueue_batches(system: System, dsn: str, conn: asyncpg.Connection) -> Result:
    n = system.settings.sizes.batch
    seconds = await timed(system.enqueue_batches(dsn, n, BATCH))
    await check_queued(system, conn, n)
    return Result({"b": n / seconds})


async def check_queued(system: System, conn: asyncpg.Connection, n: int) -> None:
    table = "_ayb_jobs" if isinstance(system, AybJobs) else "pgqueuer"
    found = await conn.fetchval(f"SELECT count(*) FROM {table}")
    if found != n:
        raise BenchError(f"{n} jobs enqueued but {found} in the table")


async def drain(system: System, dsn: str, conn: asyncpg.Connection, *, queued: int, measured: int,
                finished: int = 0) -> tuple[float, float]:
    """Pre-queue `queued` jobs (after `finished` finished ones), start the worker, time the first
    `measured` completions from the first claim, by the database clock. Returns the rate and the
    worker process's CPU milliseconds per 1,000 jobs, counted from its first completed job."""
    if finished:
        await system.add_finished(conn, finished)
    system.since = await conn.fetchval("SELECT now()")
    await system.enqueue_batches(dsn, queued, BATCH)
    deadline = time.monotonic() + system.settings.timeout
    worker = system.start_worker(dsn)
    try:
        done_at_start = [0]

        async def started() -> bool:  # the CPU is counted from the first completions, not start-up
            done_at_start[0] = await system.done_count(conn)
            return done_at_start[0] > 0
        await wait_until("the first completed job", started, deadline, worker, interval=0.01)
        cpu_start = worker.cpu_seconds()

        async def enough() -> bool:
            return await system.done_count(conn) >= measured
        await wait_until(f"{measured} completed jobs", enough, deadline, worker, interval=0.25)
        cpu_s = worker.cpu_seconds() - cpu_start
        counted = await system.done_count(conn) - done_at_start[0]
    finally:
        await worker.stop()
    stats = await system.processing(conn, measured)
    if stats["done"] != measured or stats["repeated"]:
        raise BenchError(f"exactly-once check failed: {stats['done']} of {measured} done, "
                         f"{stats['repeated']} done more than once")
    return measured / stats["span_s"], cpu_s * 1e6 / max(counted, 1)


async def run_process(system: System, dsn: str, conn: asyncpg.Connection) -> Result:
    n = system.settings.sizes.process
    rate, cpu_ms = await drain(system, dsn, conn, queued=n, measured=n)
    return Result({"c": rate, "c_cpu": cpu_ms})


async def run_process_backlog(system: System, dsn: str, conn: asyncpg.Connection) -> Result:
    s = system.settings.sizes
    rate, _cpu = await drain(system, dsn, conn, queued=s.backlog, measured=s.process)
    return Result({"c300": rate})


async def run_process_finished(system: System, dsn: str, conn: asyncpg.Connection) -> Result:
    s = system.settings.sizes
    rate, _cpu = await drain(system, dsn, conn, queued=s.process, measured=s.process, finished=s.finished)
    return Result({"e": rate})


async def run_latency(system: System, dsn: str, conn: asyncpg.Connection) -> Result:
    n = system.settings.sizes.latency
    worker = system.start_worker(dsn)
    try:
        deadline = time.monotonic() + system.settings.timeout
        # A first job, waited for, shows the worker is up and listening before the timetable starts.
        system.since = await conn.fetchval("SELECT now()")
        await system.enqueue_batches(dsn, 1, 1)

        def done_at_least(k: int) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                return await system.done_count(conn) >= k
            return check
        await wait_until("the worker to start", done_at_least(1), deadline, worker, interval=0.05)
        since = await conn.fetchval("SELECT now()")
        await system.paced_enqueue(dsn, n, LATENCY_RATE)
        await wait_until(f"{n} latency jobs", done_at_least(n + 1), deadline, worker, interval=0.05)
    finally:
        await worker.stop()
    lat = sorted(await system.latencies(conn, since))
    if len(lat) != n:
        raise BenchError(f"{n} latency jobs enqueued, {len(lat)} done exactly once")
    return Result({"d50": pct(lat, 50) * 1000, "d95": pct(lat, 95) * 1000, "d99": pct(lat, 99) * 1000})


async def run_cron(system: System, dsn: str, conn: asyncpg.Connection) -> Result:
    k = CRON_SCHEDULES
    await system.cron_setup(conn, k)  # type: ignore[attr-defined]
    worker = system.start_worker(dsn, cron=k)
    try:
        deadline = time.monotonic() + 75 + system.settings.timeout / 4

        async def fired() -> bool:
            return len(await system.cron_lateness(conn)) >= k
        await wait_until(f"{k} schedules to fire at a minute boundary", fired, deadline, worker,
                         interval=0.5)
    finally:
        await worker.stop()
    late = sorted(await system.cron_lateness(conn))
    return Result({"f50": pct(late, 50) * 1000, "f99": pct(late, 99) * 1000, "fmax": late[-1] * 1000})


def pct(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    rank = max(1, round(p / 100 * len(sorted_values) + 0.4999))
    return sorted_values[min(rank, len(sorted_values)) - 1]


# workload -> its runs (each from its own empty database)
RUNS: dict[str, list[Callable[[System, str, asyncpg.Connection], Awaitable[Result]]]] = {
    "a": [run_enqueue_singles], "b": [run_enqueue_batches], "c": [run_process, run_process_backlog],
    "d": [run_latency], "e": [run_process_finished], "f": [run_cron],
}


async def one_run(system: System, run: Callable[..., Awaitable[Result]],
                  admin: asyncpg.Connection) -> Result:
    name = await scratch_db(admin, system.template)
    try:
        dsn = url_for(name)
        conn = await asyncpg.connect(dsn)
        try:
            budget = system.settings.timeout + 120  # generous outer bound; inner waits have their own
            return await asyncio.wait_for(run(system, dsn, conn), budget)
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- the table --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    higher_is_better: bool
    target: str = ""


METRICS = [
    Metric("a", "(a) enqueue, 1 job per call, 10 producers", "jobs/s", True, ">= 1.0x"),
    Metric("b", "(b) enqueue, 1,000 jobs per call", "jobs/s", True, ">= 1.2x"),
    Metric("c", "(c) process {process:,} queued no-op jobs", "jobs/s", True, ">= 1.5x"),
    Metric("c_cpu", "(c) worker process CPU per 1,000 jobs", "ms", False),
    Metric("c300", "(c) process with {backlog:,} queued (first {process:,})", "jobs/s", True,
           ">= 0.9 of (c)"),
    Metric("d50", "(d) enqueue->start at 100/s, p50", "ms", False, "<= 2 ms"),
    Metric("d95", "(d) enqueue->start at 100/s, p95", "ms", False),
    Metric("d99", "(d) enqueue->start at 100/s, p99", "ms", False, "<= 5 ms"),
    Metric("e", "(e) process {process:,} with {finished:,} finished jobs", "jobs/s", True, ">= 0.9 of (c)"),
    Metric("f50", "(f) `* * * * *` start after its slot, p50", "ms", False),
    Metric("f99", "(f) `* * * * *` start after its slot, p99", "ms", False, "<= 1000 ms"),
    Metric("fmax", "(f) `* * * * *` start after its slot, max", "ms", False),
]


def fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"


def cell(values: list[float], errors: list[str]) -> str:
    if not values:
        return f"failed: {errors[0][:60]}" if errors else "—"
    med = statistics.median(values)
    text = fmt(med) + (f" ({fmt(min(values))}–{fmt(max(values))})" if len(values) > 1 else "")
    return text + (f" [{len(errors)} failed]" if errors else "")


def ratio_cell(metric: Metric, by_system: dict[str, list[float]], systems: list[str]) -> str:
    mine = by_system.get("ayb-jobs") or []
    if metric.key in ("c300", "e"):
        base = by_system.get("ayb-jobs:c") or []
        return f"{statistics.median(mine) / statistics.median(base):.2f} of (c)" if mine and base else ""
    if len(systems) < 2:
        return ""
    theirs = by_system.get(systems[1]) or []
    if not mine or not theirs:
        return ""
    a, b = statistics.median(mine), statistics.median(theirs)
    r = a / b if metric.higher_is_better else b / a
    return f"{r:.2f}x"


def render(table: dict[str, dict[str, list[float]]], errors: dict[str, dict[str, list[str]]],
           systems: list[str], sizes: Sizes, *, markdown: bool) -> str:
    head = ["workload", "unit", *systems, "ayb-jobs advantage", "target"]
    rows = []
    for m in METRICS:
        if m.key not in table:
            continue
        by_system = dict(table[m.key])
        by_system["ayb-jobs:c"] = table.get("c", {}).get("ayb-jobs", [])
        cells = [cell(table[m.key].get(s, []), errors.get(m.key, {}).get(s, [])) for s in systems]
        rows.append([m.label.format(**vars(sizes)), m.unit, *cells, ratio_cell(m, by_system, systems),
                     m.target])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True))
                     for r in [head, *rows])


# --- main -------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--compare", choices=["pgqueuer"], help="also run this system (pip install -e '.[bench]')")
    p.add_argument("--only", default=",".join(WORKLOADS), help="workloads to run, e.g. a,b,d (default all)")
    p.add_argument("--runs", type=int, help="runs per workload and system (default 3; --quick: 1)")
    p.add_argument("--quick", action="store_true", help="smaller sizes and 1 run: a smoke run")
    p.add_argument("--ayb-concurrency", type=int, default=64, help="jobs.worker_concurrency (default 64)")
    p.add_argument("--ayb-log-level", default="warning", help="the daemon's log.level (default warning)")
    p.add_argument("--pgq-batch", type=int, default=100, help="pgqueuer's --batch-size (default 100)")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds a run may wait for its jobs")
    p.add_argument("--markdown", metavar="FILE", help="also write the table as markdown to FILE")
    for f in Sizes.__dataclass_fields__:
        p.add_argument(f"--{f}-jobs", type=int, dest=f"size_{f}", help=f"override the '{f}' size")
    args = p.parse_args(argv)
    bad = set(args.only.split(",")) - set(WORKLOADS)
    if bad:
        p.error(f"unknown workload(s) {', '.join(sorted(bad))}: choose from {', '.join(WORKLOADS)}")
    return args


def settings_from(args: argparse.Namespace) -> Settings:
    sizes = QUICK if args.quick else Sizes()
    overrides = {f: getattr(args, f"size_{f}") for f in Sizes.__dataclass_fields__
                 if getattr(args, f"size_{f}") is not None}
    return Settings(sizes=replace(sizes, **overrides), ayb_concurrency=args.ayb_concurrency,
                    ayb_log_level=args.ayb_log_level, pgq_batch=args.pgq_batch, timeout=args.timeout)


async def bench(args: argparse.Namespace) -> tuple[str, dict[str, dict[str, list[float]]],
                                                   dict[str, dict[str, list[str]]], list[str]]:
    settings = settings_from(args)
    names = ["ayb-jobs"] + ([args.compare] if args.compare else [])
    runs = args.runs or (1 if args.quick else 3)
    logs = Path(tempfile.mkdtemp(prefix="ayb-compare-"))
    systems = [SYSTEMS[n](settings, logs) for n in names]
    table: dict[str, dict[str, list[float]]] = {}
    errors: dict[str, dict[str, list[str]]] = {}
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        for system in systems:
            system.template = await make_template(system, admin)
        for workload in args.only.split(","):
            for run in RUNS[workload]:
                for i in range(runs):
                    for system in systems:  # A B A B: the systems alternate within each workload
                        await one_run_recorded(system, run, admin, table, errors, i)
    finally:
        for system in systems:
            if system.template:
                await admin.execute(f'DROP DATABASE IF EXISTS "{system.template}" WITH (FORCE)')
        await admin.close()
        if any(errors.values()):
            sys.stderr.write(f"worker logs kept in {logs}\n")
        else:
            shutil.rmtree(logs, ignore_errors=True)
    notes = "\n".join(f"- {s.name}: {s.settings_note}" for s in systems)
    header = (f"{runs} run(s) per cell, median (min–max); sizes {settings.sizes}; "
              f"{os.cpu_count()} CPUs\n{notes}")
    return header, table, errors, names


async def one_run_recorded(system: System, run: Callable[..., Awaitable[Result]], admin: asyncpg.Connection,
                           table: dict[str, dict[str, list[float]]], errors: dict[str, dict[str, list[str]]],
                           i: int) -> None:
    label = f"{run.__name__} #{i + 1} {system.name}"
    sys.stderr.write(f"{label} ...\n")
    try:
        result = await one_run(system, run, admin)
    except Exception as exc:  # a failed run is a cell in the table, not the end of the benchmark
        sys.stderr.write(f"{label} failed: {type(exc).__name__}: {exc}\n")
        key = next(k for k, runs in RUNS.items() if run in runs)
        keys = {"c": ["c300"] if run is run_process_backlog else ["c", "c_cpu"], "d": ["d50", "d95", "d99"],
                "f": ["f50", "f99", "fmax"]}.get(key, [key])
        for k in keys:
            table.setdefault(k, {}).setdefault(system.name, [])
            errors.setdefault(k, {}).setdefault(system.name, []).append(str(exc))
        return
    for k, v in result.values.items():
        table.setdefault(k, {}).setdefault(system.name, []).append(v)
    sys.stderr.write(f"{label}: " + ", ".join(f"{k}={fmt(v)}" for k, v in result.values.items()) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = settings_from(args).sizes
    header, table, errors, names = asyncio.run(bench(args))
    sys.stdout.write(header + "\n\n" + render(table, errors, names, sizes, markdown=False) + "\n")
    if args.markdown:
        markdown = render(table, errors, names, sizes, markdown=True)
        Path(args.markdown).write_text(header + "\n\n" + markdown + "\n")
    failed = any(errs for per in errors.values() for errs in per.values())
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
