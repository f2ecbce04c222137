"""Fault-injection scenarios against the real daemon process, shared by the reliability tests
(tests/e2e/test_chaos_*.py, small and bounded) and bench/chaos.py (the same scenarios, larger).

Every run of a job is recorded by the `chaos_work` handler (support/chaos_handlers.py) in
`chaos_runs`. Each fault the scenario injects is a *cut*: a kill -9 of one daemon, or a database
fault (backends terminated, server restarted) that hits every daemon. `judge` then reads the
recorded runs and the job rows and says whether delivery held: every job completed, none failed,
attempts never above max, and every repeated run explained by a cut.

Times: the runs are stamped by Postgres (`clock_timestamp()`), the cuts by this process's wall
clock; both read the same host clock (these scenarios never run under faketime).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

import asyncpg
from e2e_harness import DaemonProcess, base_env
from pgcluster import PgCluster

from ayb_jobs.db.migrate import migrate_dsn

T = TypeVar("T")
JOB_TYPE = "chaos_work"
HANDLERS = '["handlers:register", "chaos_handlers:register"]'
LEASE_S = 30  # the shortest lease the config allows: bounds how long a killed daemon's jobs wait
RECOVERY_S = 5  # the shortest recovery interval
# A run whose handler had written its end but whose outcome was not yet committed when its daemon
# was killed is run again legitimately: its end lies at most this long before the cut.
OUTCOME_WINDOW_S = 2.0
# A job recovered after its lease waits a recovery interval (jittered) at most; allow restarts.
MAX_LEASE_OVERDUE_S = 2 * RECOVERY_S + 5
# The longest a healthy run may go without any job settling: a killed daemon's last jobs wait out
# their lease, a recovery interval and a retry backoff (5-6 s).
STALL_S = LEASE_S + 2 * RECOVERY_S + 20

RUNS_TABLE = """
CREATE TABLE IF NOT EXISTS chaos_runs (
    run_id bigserial PRIMARY KEY,
    job_id uuid NOT NULL,
    attempt int NOT NULL,
    worker_id text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    ended_at timestamptz
);
CREATE INDEX IF NOT EXISTS chaos_runs_job ON chaos_runs (job_id);
CREATE INDEX IF NOT EXISTS chaos_runs_open ON chaos_runs (worker_id) WHERE ended_at IS NULL;
"""


def now_utc() -> datetime:
    return datetime.now(UTC)


# --- database access that survives the faults ---------------------------------------------------


async def query(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    """A fresh connection per query: the test's own reads must not depend on a pool across restarts."""
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def execute(dsn: str, sql: str) -> None:
    """Run a script (several statements, no parameters) on a fresh connection."""
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def value(dsn: str, sql: str, *args: Any) -> Any:
    rows = await query(dsn, sql, *args)
    return rows[0][0] if rows else None


DB_DOWN = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


async def until(check: Callable[[], Awaitable[T]], timeout: float, what: str, every: float = 0.1) -> T:
    """Call `check` until it returns something truthy (database errors count as "not yet")."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = await check()
        except DB_DOWN as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout}s (last: {last!r})")
        await asyncio.sleep(every)


async def prepare_database(dsn: str) -> None:
    """The runs table, and no default schedules (they would add jobs at the top of an hour)."""
    await execute(dsn, RUNS_TABLE + "DELETE FROM _ayb_job_schedules;")


@contextlib.asynccontextmanager
async def private_cluster() -> AsyncIterator[PgCluster]:
    """A migrated throw-away cluster (tests/e2e/pgcluster.py) that may be restarted at will."""
    cluster = await asyncio.to_thread(PgCluster.create)
    try:
        await cluster.start()
        await migrate_dsn(cluster.dsn())
        await prepare_database(cluster.dsn())
        yield cluster
    finally:
        await cluster.destroy()


async def stop_immediate(cluster: PgCluster) -> None:
    """`pg_ctl stop -m immediate`: SIGQUIT, no checkpoint; the next start runs crash recovery."""
    proc, cluster.proc = cluster.proc, None
    assert proc is not None
    proc.send_signal(signal.SIGQUIT)
    try:
        await asyncio.to_thread(proc.wait, 10)
    except subprocess.TimeoutExpired:
        proc.kill()
        await asyncio.to_thread(proc.wait, 5)


async def enqueue(dsn: str, count: int, *, max_attempts: int, steps: int, step_ms: float) -> int:
    """`count` chaos_work jobs by plain SQL in one statement, with the NOTIFY an application sends."""
    payload = json.dumps({"steps": steps, "step_ms": step_ms})
    await query(dsn, "WITH new AS (INSERT INTO _ayb_jobs (type, payload, max_attempts) "
                     "SELECT $1, $2::jsonb, $3 FROM generate_series(1, $4)) SELECT pg_notify('ayb_jobs', '')",
                JOB_TYPE, payload, max_attempts, count)
    return count


def chaos_env(dsn: str, **overrides: str) -> dict[str, str]:
    env = {
        "AYB_JOBS_HANDLERS": HANDLERS,
        "AYB_LOG_LEVEL": "info",
        "AYB_JOBS_LEASE_DURATION_S": str(LEASE_S),
        "AYB_JOBS_RECOVERY_INTERVAL_S": str(RECOVERY_S),
        "AYB_JOBS_POLL_INTERVAL_MS": "200",
    }
    env.update(overrides)
    return base_env(dsn, **env)


async def start_daemon(env: dict[str, str], name: str,
                       started: list[DaemonProcess]) -> tuple[DaemonProcess, str]:
    """Start a daemon (kept in `started` for the caller's cleanup); returns it and its worker id."""
    d = DaemonProcess(env, name=name)
    started.append(d)
    d.start()
    record = await d.event("daemon_started", timeout=60)
    return d, str(record["worker_id"])


async def open_runs(dsn: str, worker_id: str) -> int:
    """Runs of one daemon started and not (yet) ended."""
    return int(await value(dsn, "SELECT count(*) FROM chaos_runs WHERE ended_at IS NULL AND worker_id = $1",
                           worker_id))


async def open_runs_since(dsn: str, since: datetime) -> int:
    """Runs started after `since` and not (yet) ended: in flight now, if no fault came since."""
    return int(await value(dsn, "SELECT count(*) FROM chaos_runs WHERE ended_at IS NULL AND started_at > $1",
                           since))


async def due_backlog(dsn: str) -> int:
    """Jobs queued and due (a released job waiting out its backoff does not keep workers busy)."""
    return int(await value(dsn, "SELECT count(*) FROM _ayb_jobs WHERE state = 'queued' AND type = $1 "
                                "AND run_at <= now()", JOB_TYPE))


class LeaseWatch:
    """Samples, while it runs, how long any job has stayed `running` past its lease."""

    def __init__(self, dsn: str, every: float = 0.5) -> None:
        self.dsn, self.every = dsn, every
        self.max_overdue_s = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(*DB_DOWN):
                overdue = await value(self.dsn, "SELECT coalesce(max(extract(epoch FROM clock_timestamp() "
                                                "- lease_until)), 0)::float8 FROM _ayb_jobs WHERE state = "
                                                "'running' AND lease_until < clock_timestamp()")
                self.max_overdue_s = max(self.max_overdue_s, float(overdue))
            await asyncio.sleep(self.every)

    def __enter__(self) -> LeaseWatch:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


# --- the verdict --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cut:
    """A fault: `worker_id` set for a kill of that daemon, None for a database fault (all daemons)."""
    start: datetime
    end: datetime
    worker_id: str | None = None
    what: str = ""


@dataclass
class Figures:
    scenario: str
    jobs: int = 0
    completed: int = 0
    failed: int = 0
    lost: int = 0  # jobs not completed at the end
    runs: int = 0
    duplicates: int = 0  # runs beyond the first of a job
    cut_mid_handler: int = 0  # repeated runs whose earlier run had no end record
    cut_before_outcome: int = 0  # repeated runs whose earlier run ended just before a kill
    kills: int = 0
    restarts: int = 0
    terminations: int = 0
    max_attempts_seen: int = 0
    max_lease_overdue_s: float = 0.0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        shown = {k: v for k, v in asdict(self).items() if k != "problems"}
        shown["problems"] = len(self.problems)
        return " ".join(f"{k}={round(v, 1) if isinstance(v, float) else v}" for k, v in shown.items())


def _explains(cut: Cut, run: asyncpg.Record, rerun: asyncpg.Record) -> str | None:
    """How `cut` explains that `run` was followed by `rerun`: "mid_handler", "before_outcome" or None."""
    window = timedelta(seconds=OUTCOME_WINDOW_S)
    if cut.worker_id is not None and cut.worker_id != run["worker_id"]:
        return None
    if not (run["started_at"] - window <= cut.end and cut.start <= rerun["started_at"]):
        return None
    if run["ended_at"] is None:
        return "mid_handler"
    if cut.start - window <= run["ended_at"] <= cut.end + window:
        return "before_outcome"
    return None


async def judge(dsn: str, figures: Figures, cuts: list[Cut]) -> Figures:
    """Fill `figures` from the job rows and the recorded runs; every violation goes to `problems`.
    A kill explains only its own daemon's runs, so with kills alone a run that stopped half-way on
    a daemon that was not killed is a violation too."""
    jobs = await query(dsn, "SELECT id, state, attempts, max_attempts, last_error FROM _ayb_jobs "
                            "WHERE type = $1", JOB_TYPE)
    runs = await query(dsn, "SELECT * FROM chaos_runs ORDER BY job_id, started_at, run_id")
    by_job: dict[Any, list[asyncpg.Record]] = {}
    for r in runs:
        by_job.setdefault(r["job_id"], []).append(r)
    figures.jobs, figures.runs = len(jobs), len(runs)
    problems = figures.problems
    for job in jobs:
        _judge_job(job, by_job.get(job["id"], []), cuts, figures)
    figures.completed = sum(1 for j in jobs if j["state"] == "completed")
    figures.failed = sum(1 for j in jobs if j["state"] == "failed")
    figures.lost = figures.jobs - figures.completed
    failed = [f"{j['id']}: {j['last_error']}" for j in jobs if j["state"] == "failed"][:5]
    if failed:
        problems.append(f"{figures.failed} jobs failed, e.g. {failed}")
    unsettled = [f"{j['id']}: {j['state']}" for j in jobs if j["state"] in ("queued", "running")][:5]
    if unsettled:
        problems.append(f"jobs still queued or running at the end, e.g. {unsettled}")
    return figures


def _judge_job(job: asyncpg.Record, runs: list[asyncpg.Record], cuts: list[Cut], figures: Figures) -> None:
    problems = figures.problems
    figures.max_attempts_seen = max(figures.max_attempts_seen, job["attempts"], *(r["attempt"] for r in runs))
    if job["attempts"] > job["max_attempts"] or any(r["attempt"] > job["max_attempts"] for r in runs):
        problems.append(f"job {job['id']}: attempts {job['attempts']} / runs "
                        f"{[r['attempt'] for r in runs]} above max_attempts {job['max_attempts']}")
    if job["state"] == "completed" and (not runs or runs[-1]["ended_at"] is None):
        problems.append(f"job {job['id']} completed without a finished run: {[dict(r) for r in runs]}")
    figures.duplicates += max(0, len(runs) - 1)
    for run, rerun in itertools.pairwise(runs):
        how = {_explains(c, run, rerun) for c in cuts} - {None}
        if "mid_handler" in how:
            figures.cut_mid_handler += 1
        elif "before_outcome" in how:
            figures.cut_before_outcome += 1
        else:
            problems.append(f"job {job['id']} ran again with no fault to explain it: {dict(run)} -> "
                            f"{dict(rerun)}")


# --- scenario 1: kill -9 of random daemons ----------------------------------------------------------


async def crash_consistency(dsn: str, started: list[DaemonProcess], *, jobs: int, kills: int,
                            daemons: int = 3, concurrency: int = 8, max_attempts: int = 10,
                            seed: int | None = None,
                            log: Callable[[str], None] = lambda _m: None) -> Figures:
    """`daemons` daemons on one database; `kills` times a random live one is killed with SIGKILL
    while it has runs in flight, and restarted in the background. The next kill comes once the
    survivors have finished a share of the jobs, so kills land every few seconds with work flowing
    (jobs are enqueued in waves). Returns the figures once every job is settled (or the drain timed
    out)."""
    seed = random.randrange(1 << 30) if seed is None else seed
    rng = random.Random(seed)
    figures = Figures(f"crash seed={seed}")
    began = time.monotonic()
    env = chaos_env(dsn, AYB_JOBS_WORKER_CONCURRENCY=str(concurrency))
    slots: list[asyncio.Task[tuple[DaemonProcess, str]]] = [
        asyncio.ensure_future(start_daemon(env, f"d{i}", started)) for i in range(daemons)]
    cuts: list[Cut] = []
    wave = max(1, jobs // (kills + 1))
    progress = max(1, wave // 2)  # runs to finish between two kills
    enqueued = 0
    since = now_utc() - timedelta(hours=1)
    with LeaseWatch(dsn) as watch:
        for k in range(kills):
            enqueued += await enqueue(dsn, min(wave, jobs - enqueued), max_attempts=max_attempts,
                                      steps=2, step_ms=10)
            await until(lambda s=since: ended_since(dsn, s, progress), 60, f"progress before kill {k + 1}")
            victim = await pick_live(slots, rng)
            proc, worker_id = slots[victim].result()
            await until(lambda w=worker_id: open_runs(dsn, w), 30, f"daemon {proc.name} running a job")
            before = now_utc()
            proc.kill()
            since = now_utc()
            cuts.append(Cut(before, since, worker_id, f"kill -9 {proc.name}"))
            figures.kills += 1
            log(f"kill {k + 1}/{kills}: {proc.name} ({worker_id})")
            slots[victim] = asyncio.ensure_future(start_daemon(env, f"d{victim}.{k + 1}", started))
        await enqueue(dsn, jobs - enqueued, max_attempts=max_attempts, steps=2, step_ms=10)
        procs = [proc for proc, _ in await asyncio.gather(*slots)]
        await settle(dsn)  # judged below: the figures say what was left
        figures.max_lease_overdue_s = watch.max_overdue_s
    for proc in procs:
        proc.signal(signal.SIGTERM)
    for proc in procs:
        code = await proc.exit(timeout=45)
        if code != 0:
            figures.problems.append(f"{proc.name} exited {code} after SIGTERM:\n{proc.tail(10)}")
    await judge(dsn, figures, cuts)
    if figures.max_lease_overdue_s > MAX_LEASE_OVERDUE_S:
        figures.problems.append(f"a job stayed running {figures.max_lease_overdue_s:.1f}s past its lease")
    figures.seconds = time.monotonic() - began
    return figures


async def pick_live(slots: list[asyncio.Task[tuple[DaemonProcess, str]]], rng: random.Random) -> int:
    """A random slot whose daemon has started (waiting for one if all are restarting)."""
    if not any(t.done() for t in slots):
        await asyncio.wait(slots, return_when=asyncio.FIRST_COMPLETED)
    return rng.choice([i for i, t in enumerate(slots) if t.done()])


async def ended_since(dsn: str, since: datetime, count: int) -> bool:
    return bool(await value(dsn, "SELECT count(*) >= $2 FROM chaos_runs WHERE ended_at > $1", since, count))


async def unsettled(dsn: str) -> int:
    return int(await value(dsn, "SELECT count(*) FROM _ayb_jobs WHERE type = $1 "
                                "AND state IN ('queued', 'running')", JOB_TYPE))


async def settle(dsn: str, stall_s: float = STALL_S) -> None:
    """Wait until no job is queued or running, or until none has settled for `stall_s` (a slow
    machine only makes the wait longer; a stuck job ends it)."""
    deadline, last = time.monotonic() + stall_s, None
    while time.monotonic() < deadline:
        try:
            left = await unsettled(dsn)
        except DB_DOWN:
            left = last
        if left == 0:
            return
        if last is None or (left is not None and left < last):
            deadline, last = time.monotonic() + stall_s, left
        await asyncio.sleep(0.25)


# --- scenario 2: database faults --------------------------------------------------------------------

FaultMode = Literal["terminate", "fast", "immediate"]
# (steps, step_ms) of the handler per fault. Terminations: short sleeps, so a run spends much of its
# time inside queries and a terminated backend cuts queries off. Restarts: a run sleeps between its
# queries far longer than it spends in them, so when the server goes down most runs in flight are
# between queries, and their next query comes while it is still down.
HANDLER_STEPS: dict[str, tuple[int, float]] = {"terminate": (10, 5), "fast": (4, 100), "immediate": (4, 100)}


async def terminate_backends(dsn: str, rng: random.Random) -> int:
    """pg_terminate_backend on a random half (at least one) of the daemons' connections."""
    pids = [r[0] for r in await query(dsn, "SELECT pid FROM pg_stat_activity WHERE datname = "
                                           "current_database() AND pid <> pg_backend_pid() "
                                           "AND backend_type = 'client backend'")]
    if not pids:
        return 0
    chosen = rng.sample(pids, max(1, len(pids) // 2))
    await query(dsn, "SELECT pg_terminate_backend(p) FROM unnest($1::int[]) p", chosen)
    return len(chosen)


async def inject(cluster: PgCluster, mode: FaultMode, rng: random.Random, figures: Figures) -> Cut:
    start = now_utc()
    if mode == "terminate":
        figures.terminations += await terminate_backends(cluster.dsn(), rng)
    else:
        if mode == "fast":
            await cluster.stop()  # SIGINT: pg_ctl stop -m fast
        else:
            await stop_immediate(cluster)
        await cluster.start()
        figures.restarts += 1
    return Cut(start, now_utc(), None, mode)


async def database_faults(cluster: PgCluster, started: list[DaemonProcess], *, mode: FaultMode,
                          rounds: int, concurrency: int = 16, daemons: int = 1, seed: int | None = None,
                          log: Callable[[str], None] = lambda _m: None) -> Figures:
    """Jobs with max_attempts = 1 whose handlers query the database throughout; `rounds` faults of
    `mode`, each while runs are in flight and after the flow resumed from the last one."""
    seed = random.randrange(1 << 30) if seed is None else seed
    rng = random.Random(seed)
    figures = Figures(f"db-{mode} seed={seed}")
    began = time.monotonic()
    dsn = cluster.dsn()
    env = chaos_env(dsn, AYB_JOBS_WORKER_CONCURRENCY=str(concurrency), AYB_DATABASE_POOL_MAX_SIZE="20")
    procs = [(await start_daemon(env, f"db{i}", started))[0] for i in range(daemons)]
    cuts: list[Cut] = []
    wave = concurrency * daemons * 8
    steps, step_ms = HANDLER_STEPS[mode]
    in_flight = max(2, concurrency * daemons // 2)

    async def flowing_again(since: datetime) -> bool:
        if await due_backlog(dsn) < wave // 2:
            await enqueue(dsn, wave, max_attempts=1, steps=steps, step_ms=step_ms)
        return await open_runs_since(dsn, since) >= in_flight

    since = now_utc() - timedelta(hours=1)
    with LeaseWatch(dsn) as watch:
        for k in range(rounds):
            await until(lambda s=since: flowing_again(s), 60, f"jobs in flight before fault {k + 1}")
            cut = await inject(cluster, mode, rng, figures)
            cuts.append(cut)
            since = cut.end
            log(f"fault {k + 1}/{rounds}: {mode}")
        await settle(dsn)  # judged below: the figures say what was left
        figures.max_lease_overdue_s = watch.max_overdue_s
    for proc in procs:
        if proc.proc is not None and proc.proc.poll() is not None:
            figures.problems.append(f"{proc.name} exited with {proc.proc.returncode}:\n{proc.tail(10)}")
        if proc.events("core_task_died"):
            figures.problems.append(f"{proc.name}: core_task_died {proc.events('core_task_died')}")
    await judge(dsn, figures, cuts)
    figures.seconds = time.monotonic() - began
    return figures
