"""THE daemon lifecycle: start-up in dependency order, run, ordered shutdown, exit code.

Start: admin checks -> bind HTTP -> database (embedded Postgres if database.url is empty) ->
migrate/check schema -> handlers -> fill missing next_run_at -> listener, outcome writer, poller +
workers, heartbeat, maintenance, scheduler (or the legacy pruner when jobs are disabled) -> HTTP ->
READY=1 -> `daemon_started`.

Shutdown on SIGTERM/SIGINT, each phase logged as `shutdown_phase`:
scheduler_stopped -> polling_stopped (STOPPING=1, /readyz 503) -> drained (in-flight jobs get up to
jobs.shutdown_timeout_s, then are cancelled and released; a second signal releases at once) ->
exited (HTTP, pool, embedded Postgres stop). Exit codes: 0 clean, 1 runtime failure, 2 bad config.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import secrets
import signal
import socket
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import structlog

from ayb_jobs.api.auth import is_loopback
from ayb_jobs.config import Settings, settings_report
from ayb_jobs.db import migrate, queries
from ayb_jobs.db.pool import create_pool, keep_session
from ayb_jobs.errors import AybJobsError, StartupError
from ayb_jobs.handlers import Registry, default_registry
from ayb_jobs.health import HealthMonitor
from ayb_jobs.logs import add_secret
from ayb_jobs.metrics import Metrics
from ayb_jobs.runtime import http
from ayb_jobs.runtime.dbwatch import DatabaseWatch
from ayb_jobs.runtime.executor import Executor
from ayb_jobs.runtime.heartbeat import Heartbeat
from ayb_jobs.runtime.legacy import LegacyPruner
from ayb_jobs.runtime.listener import Listener
from ayb_jobs.runtime.loops import FailureDelay, supervise, wait_any
from ayb_jobs.runtime.maintenance import Maintenance
from ayb_jobs.runtime.outcomes import Outcome, OutcomeWriter, Settled
from ayb_jobs.runtime.policies import publish_job_types
from ayb_jobs.runtime.poller import Poller
from ayb_jobs.runtime.scheduler import Scheduler, fill_missing_next_run
from ayb_jobs.runtime.sdnotify import SystemdNotifier
from ayb_jobs.runtime.workers import WorkerPresence
from ayb_jobs.service import JobService

log = structlog.get_logger("ayb_jobs.daemon")
PING_TIMEOUT_S = 2.0
STATUS_INTERVAL_S = 10.0
# The stop's budget: jobs.shutdown_timeout_s up to the outcome writer's end, then a tail of at most
# about LOOP_STOP_S x 3 + WRITER_GRACE_S + HTTP_STOP_S + POOL_CLOSE_S (9 s): 39 s with the default
# 30 s, inside the systemd unit's TimeoutStopSec=45.
LOOP_STOP_S = 1.5  # a loop asked to stop is cancelled after this
CANCEL_WAIT_S = 0.5
RELEASE_RESERVE_S = 5.0  # the end of the drain budget kept for cancelling and writing releases
MIN_RELEASE_S = 2.0  # even with shutdown_timeout_s = 0, releases get this long to be written
WRITER_GRACE_S = 1.0
HTTP_STOP_S = 3.0
POOL_CLOSE_S = 2.0


def _at_least(count: int) -> str:
    """A count from active_counts: one at its cap means that many or more."""
    return f"{count}+" if count >= queries.ACTIVE_COUNT_CAP else str(count)


def make_worker_id() -> str:
    return f"{socket.gethostname()[:60]}-{os.getpid()}-{secrets.token_hex(3)}"



# The runtime pool: one connection each for the poller, the outcome writer and the heartbeat.
RUNTIME_POOL_SIZE = 3
# Young-generation collections before the first full one (CPython's default is 700 allocations).
GC_YOUNG_THRESHOLD = 20_000


def settle_garbage_collector() -> None:
    """Move everything allocated at start-up (the imported modules, FastAPI's routes, the settings)
    out of the collector's sight, and collect the young generation less often. A job allocates a
    few dozen short-lived objects, so at thousands of jobs a second the default collector ran
    several times a second over the whole start-up heap: 12 % of the daemon's CPU at saturation
    (py-spy), for objects that live as long as the process."""
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)

class Daemon:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.jobs = settings.jobs
        self.worker_id = make_worker_id()
        self.metrics = Metrics()
        self.notifier = SystemdNotifier(log=log)
        self.stop_requested = asyncio.Event()
        self.force = asyncio.Event()
        self.draining = False
        self.outcomes_unwritten = False
        self.exit_code = 0
        self.pool: Any = None
        # The runtime's own statements (claims, outcome writes, heartbeats): a pool of their own,
        # without the reset round trip, that handlers holding every `pool` connection cannot starve.
        self.runtime_pool: Any = None
        self.watch = DatabaseWatch()
        self.embedded: Any = None
        self.registry: Registry | None = None
        self.http: http.HttpServer | None = None
        self._sock: socket.socket | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.writer: OutcomeWriter | None = None
        self.executor: Executor | None = None
        self.poller: Poller | None = None
        self.scheduler: Scheduler | None = None
        self.heartbeat: Heartbeat | None = None
        self.maintenance: Maintenance | None = None
        self.listener: Listener | None = None
        self.legacy: LegacyPruner | None = None
        self.health: HealthMonitor | None = None
        self.presence: WorkerPresence | None = None

    # --- the whole life --------------------------------------------------------------------------

    async def serve(self) -> int:
        # Signals first: a SIGTERM during start-up (a slow migration, Postgres starting) stops the
        # start cleanly instead of killing the process with the default action.
        self.install_signals()
        try:
            started = await self.start_unless_stopped()
        except AybJobsError as exc:
            code = exc.exit_code if isinstance(exc, StartupError) else 1
            log.error("daemon_start_failed", error=exc.message, exit_code=code)
            await self.close_resources()
            return code
        if not started:
            log.info("start_interrupted", message="stop requested during start-up; nothing was running")
            await self.close_resources()
            return 0
        await self.main_loop()
        await self.shutdown()
        return self.exit_code

    async def start_unless_stopped(self) -> bool:
        """Run start-up; False if a stop signal came first (start-up is then cancelled)."""
        startup = asyncio.ensure_future(self.startup())
        stop_wait = asyncio.ensure_future(self.stop_requested.wait())
        await asyncio.wait([startup, stop_wait], return_when=asyncio.FIRST_COMPLETED)
        stop_wait.cancel()
        if startup.done():
            startup.result()  # re-raises a start-up error
            return True
        startup.cancel()
        with contextlib.suppress(asyncio.CancelledError, AybJobsError):
            await startup
        return False

    # --- start-up --------------------------------------------------------------------------------

    async def startup(self) -> None:
        self.check_admin_settings()
        if self.settings.admin.enabled:
            self._sock = http.bind(self.settings.admin.host, self.settings.admin.port)
        dsn = await self.open_database()
        await self.prepare_schema()
        self.registry = default_registry(self.jobs.handlers)
        if self.jobs.enabled:
            await publish_job_types(self.pool, self.registry)
            await fill_missing_next_run(self.pool)
            self.start_job_system(dsn)
        else:
            self.start_legacy_mode()
        self.health = HealthMonitor(self.pool, self.settings.health, worker_id=self.worker_id)
        self.metrics.add_collector(self.health.metrics_lines)
        self.spawn("health", self.health.run())
        if self._sock is not None:
            await self.start_http(dsn)
        self.notifier.ready()
        if self.notifier.enabled:  # not run by systemd: nobody to tell, so no queries for it either
            self.spawn("supervision", self.report_to_systemd())
        settle_garbage_collector()
        log.info("daemon_started", worker_id=self.worker_id, pid=os.getpid(),
                 settings={k: v for k, v, _src in settings_report(self.settings)},
                 admin_url=self.admin_url(), job_types=self.registry.names())

    def check_admin_settings(self) -> None:
        admin = self.settings.admin
        if admin.enabled and not admin.token and not is_loopback(admin.host):
            raise StartupError(
                f"admin.listen is {admin.listen}, which is reachable from other machines, but no "
                "admin.token is configured; set admin.token (AYB_ADMIN_TOKEN, at least 16 characters) "
                "or listen on 127.0.0.1", exit_code=2,
            )

    async def open_database(self) -> str:
        db = self.settings.database
        dsn = db.url
        if not dsn:
            from ayb_jobs.embedded import EmbeddedPostgres

            self.embedded = EmbeddedPostgres(db.resolved_embedded_data_dir, db.embedded_bin_dir,
                                             db.embedded_user, log=log)
            dsn = await self.embedded.start()
        self.pool = await create_pool(dsn, max_size=db.pool_max_size,
                                      statement_cache_size=db.statement_cache_size, init=self.watch.track)
        await self.watch.prime(self.pool)
        if self.jobs.enabled:
            self.runtime_pool = await create_pool(dsn, max_size=RUNTIME_POOL_SIZE, min_size=RUNTIME_POOL_SIZE,
                                                  statement_cache_size=db.statement_cache_size,
                                                  init=self.watch.track, reset=keep_session)
        return dsn

    async def prepare_schema(self) -> None:
        async with self.pool.acquire() as conn:
            if self.settings.database.auto_migrate:
                applied = await migrate.migrate(conn)
                if applied:
                    log.info("migrations_applied", applied=applied)
            else:
                await migrate.check_current(conn)

    def start_job_system(self, dsn: str) -> None:
        jobs, db = self.jobs, self.settings.database
        self.writer = OutcomeWriter(self.runtime_pool, self.worker_id,
                                    on_db_error=lambda: self.metrics.db_error("outcomes"))
        self.executor = Executor(pool=self.pool, registry=self.registry, writer=self.writer,
                                 metrics=self.metrics, worker_id=self.worker_id,
                                 concurrency=jobs.worker_concurrency, job_timeout_s=jobs.job_timeout_s,
                                 watch=self.watch, lease_s=jobs.lease_duration_s)
        self.poller = Poller(pool=self.runtime_pool, executor=self.executor, metrics=self.metrics,
                             lease_s=jobs.lease_duration_s, poll_interval_s=jobs.poll_interval_ms / 1000,
                             queues=jobs.claim_queues)
        self.listener = Listener(dsn=db.listen_url or dsn, wake=self.poller.wake.set, metrics=self.metrics,
                                 statement_cache_size=db.statement_cache_size, on_control=self._on_control)
        self.heartbeat = Heartbeat(pool=self.runtime_pool, executor=self.executor, metrics=self.metrics,
                                   lease_s=jobs.lease_duration_s)
        self.maintenance = Maintenance(pool=self.pool, metrics=self.metrics,
                                       interval_s=jobs.recovery_interval_s, on_requeued=self.poller.wake.set)
        self.spawn("listener", self.listener.run())
        self.spawn("outcomes", self.writer.run())
        self.spawn("poller", self.poller.run())
        self.spawn("heartbeat", self.heartbeat.run())
        self.spawn("maintenance", self.maintenance.run())
        self.presence = WorkerPresence(pool=self.pool, worker_id=self.worker_id, types=self.registry.names(),
                                       concurrency=jobs.worker_concurrency, queues=jobs.claim_queues or (),
                                       running=lambda: self.executor.running,
                                       on_db_error=self.metrics.db_error)
        self.spawn("workers", self.presence.run())
        if jobs.scheduler_enabled:
            self.scheduler = Scheduler(pool=self.pool, metrics=self.metrics, tick_s=jobs.scheduler_tick_s,
                                       on_enqueued=self.poller.wake.set)
            self.spawn("scheduler", self.scheduler.run())
        else:
            log.warning("scheduler_disabled",
                        message="jobs.scheduler_enabled is false: no schedules (and so no built-in "
                                "cleanup) run on this daemon; make sure another daemon runs the scheduler")

    def start_legacy_mode(self) -> None:
        log.info("jobs_disabled", message="jobs.enabled is false: no workers or scheduler; only the legacy "
                                          "hourly webhook-delivery pruner runs (set jobs.enabled = true)")
        self.legacy = LegacyPruner(pool=self.pool, metrics=self.metrics)
        self.spawn("legacy_pruner", self.legacy.run())

    async def start_http(self, dsn: str) -> None:
        from ayb_jobs.api.app import create_app
        from ayb_jobs.api.auth import load_or_create_token

        admin = self.settings.admin
        admin_token = load_or_create_token(admin.token, admin.resolved_token_file)
        token = admin_token.value
        add_secret(token)
        if admin_token.generated:
            log.info("admin_token_generated", token_file=str(admin_token.file))
        elif admin_token.origin == "file":
            log.info("admin_token_loaded", token_file=str(admin_token.file))
        if admin_token.fixed_mode is not None:
            log.warning("admin_token_file_mode_fixed", token_file=str(admin_token.file),
                        old_mode=f"{admin_token.fixed_mode:04o}", new_mode="0600",
                        message="the token file was readable by other users; it is now 0600")
        hooks: dict[str, Callable[[], None]] = {}
        if self.poller is not None:
            hooks["on_enqueued"] = self.poller.wake.set
        if self.scheduler is not None:
            hooks["on_schedules_changed"] = self.scheduler.wake.set
        # Admin requests get their own small pool: no read storm can take the workers' connections.
        admin_pool = await create_pool(dsn, max_size=http.ADMIN_POOL_SIZE,
                                       statement_cache_size=self.settings.database.statement_cache_size)
        service = JobService(admin_pool, self.registry, default_max_attempts=self.jobs.max_retries_default,
                             health=self.health, **hooks)
        app = create_app(service, token=token, jobs_enabled=self.jobs.enabled, metrics=self.metrics,
                         readiness=self.readiness)
        self.http = http.HttpServer(app, self._sock, on_stop=[admin_pool.close])
        await self.http.start()

    def admin_url(self) -> str | None:
        if self._sock is None:
            return None
        host = self.settings.admin.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self._sock.getsockname()[1]}"

    def _on_control(self, message: str) -> None:
        """A control-channel message: "cancel <job id>" stops that job's handler if it runs here."""
        verb, _, arg = message.partition(" ")
        if verb != "cancel" or self.executor is None:
            return
        try:
            job_id = uuid.UUID(arg)
        except ValueError:
            log.warning("control_message_ignored", message=message[:200])
            return
        if self.executor.cancel_requested(job_id):
            log.info("job_cancel_requested", job_id=str(job_id), worker_id=self.worker_id)

    def spawn(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        self._tasks[name] = asyncio.create_task(coro, name=name)

    # --- running ---------------------------------------------------------------------------------

    def install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.on_stop_signal, sig)
        loop.add_signal_handler(signal.SIGHUP, lambda: log.info(
            "sighup_ignored", message="SIGHUP reloads nothing in this version; restart to apply changes"))

    def on_stop_signal(self, sig: signal.Signals) -> None:
        if self.stop_requested.is_set():
            log.warning("shutdown_forced", signal=sig.name)
            self.force.set()
        else:
            log.info("shutdown_requested", signal=sig.name)
            self.stop_requested.set()

    async def main_loop(self) -> None:
        """Run until a stop signal, or until a core task dies (a bug: exit 1, supervisor restarts)."""
        watched = [self.http.task] if self.http and self.http.task else []
        watched += list(self._tasks.values())
        stop_wait = asyncio.ensure_future(self.stop_requested.wait())
        done, _ = await asyncio.wait([stop_wait, *watched], return_when=asyncio.FIRST_COMPLETED)
        stop_wait.cancel()
        for task in done:
            if task is stop_wait:
                continue
            exc = task.exception() if not task.cancelled() else None
            if exc is None and not task.cancelled() and self.stop_requested.is_set():
                continue  # it ended because of the stop request (supervision does), in the same tick
            log.error("core_task_died", task=task.get_name(), error=repr(exc))
            self.exit_code = 1

    async def readiness(self) -> str | None:
        if self.draining:
            return "draining: the daemon is shutting down"
        try:
            await queries.db_now(self.pool, timeout=PING_TIMEOUT_S)
        except Exception as exc:
            return f"database unavailable: {type(exc).__name__}: {exc}"
        return None

    async def report_to_systemd(self) -> None:
        """Watchdog pings while the loop and the database are healthy, and a STATUS line."""
        interval = self.notifier.watchdog_interval_s()
        period = min(interval, STATUS_INTERVAL_S) if interval else STATUS_INTERVAL_S

        async def step() -> float:
            self.notifier.status(await self.status_line())
            if interval:
                self.notifier.watchdog()
            return period

        # A failure skips the watchdog ping, so systemd restarts a daemon whose database stays away.
        # Not counted in ayb_jobs_db_errors_total (these reads only feed the STATUS line); no jitter:
        # the watchdog must hear from us within WatchdogSec.
        await supervise("supervision", step, stop=self.stop_requested, log=log, on_db_error=None,
                        delay=FailureDelay(first=period, cap=period, spread=0))

    async def status_line(self) -> str:
        if not self.jobs.enabled:
            await queries.db_now(self.pool, timeout=PING_TIMEOUT_S)
            return "jobs disabled; legacy webhook pruner active"
        queued, running = await queries.active_counts(self.pool, timeout=PING_TIMEOUT_S)
        running_here = len(self.executor.running) if self.executor else 0
        return f"{running_here} running here, {_at_least(running)} running, {_at_least(queued)} queued"

    # --- shutdown --------------------------------------------------------------------------------

    def phase(self, name: str, **fields: Any) -> None:
        log.info("shutdown_phase", phase=name, **fields)

    async def shutdown(self) -> None:
        """Everything up to the outcome writer's end fits jobs.shutdown_timeout_s (with at least
        MIN_RELEASE_S to write releases); the rest is bounded by STOP_TAIL_S, whatever state the
        database is in (down, or hung)."""
        deadline = asyncio.get_running_loop().time() + self.jobs.shutdown_timeout_s
        await self.stop_loops([("scheduler", self.scheduler)], LOOP_STOP_S)
        self.phase("scheduler_stopped")
        await self.stop_loops([("poller", self.poller)], LOOP_STOP_S)
        self.draining = True
        self.notifier.stopping()
        self.phase("polling_stopped")
        report = await self.finish_in_flight(deadline)
        await self.stop_loops([("heartbeat", self.heartbeat), ("maintenance", self.maintenance),
                               ("listener", self.listener), ("legacy_pruner", self.legacy),
                               ("workers", self.presence), ("health", self.health)], LOOP_STOP_S)
        self.phase("drained", **report.fields())
        await self.close_resources()
        self.phase("exited", exit_code=self.exit_code)

    async def stop_loops(self, loops: list[tuple[str, Any]], timeout: float) -> None:
        """Ask loops to stop, together; cancel those still running after `timeout`."""
        tasks = []
        for name, component in loops:
            task = self._tasks.pop(name, None)
            if component is not None:
                component.stop.set()
            if task is not None:
                tasks.append(task)
        if tasks:
            await self.stop_tasks(tasks, timeout)

    @staticmethod
    async def stop_tasks(tasks: list[asyncio.Task[Any]], timeout: float) -> None:
        done, late = await asyncio.wait(tasks, timeout=timeout)
        for task in late:
            log.warning("task_stop_failed", task=task.get_name(), error=f"still running after {timeout:g}s; "
                                                                         "cancelled")
            task.cancel()
        if late:  # a task that ignores its cancellation is left behind: the process is ending
            await asyncio.wait(late, timeout=CANCEL_WAIT_S)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.warning("task_stop_failed", task=task.get_name(), error=repr(task.exception()))

    async def finish_in_flight(self, deadline: float) -> InFlightReport:
        """Let in-flight jobs finish until the deadline (less a reserve), then cancel them and
        write their releases; outcomes the database has not taken by then are reported, not waited
        for (their jobs are recovered after their leases)."""
        ex = self.executor
        if ex is None:
            return InFlightReport()
        loop = asyncio.get_running_loop()
        before = ex.settled.copy()
        report = InFlightReport(in_flight=len(ex.running))
        if ex.running:
            budget = max(0.0, deadline - loop.time())
            log.info("draining", in_flight=len(ex.running), timeout_s=round(budget, 3))
            reserve = min(RELEASE_RESERVE_S, budget / 3)
            await wait_any(ex.idle, self.force, timeout=max(0.0, deadline - reserve - loop.time()))
        if ex.running:
            report.cancelled = len([c for c in ex.running if ex.in_handler(c)])
            ex.stop_all("shutdown")
            await wait_any(ex.idle, timeout=max(deadline - loop.time(), MIN_RELEASE_S))
        if self.writer is not None:
            self.writer.close()
            task = self._tasks.pop("outcomes", None)
            if task is not None:
                await self.stop_tasks([task], WRITER_GRACE_S)
            report.unwritten = self.writer.unwritten()
        report.count(ex.settled - before)
        self.outcomes_unwritten = bool(report.unwritten)
        if report.unwritten:
            log.warning("drain_incomplete", unwritten=len(report.unwritten),
                        by_outcome=dict(Counter(o.kind for o in report.unwritten)),
                        job_ids=[str(o.claimed.id) for o in report.unwritten[:20]],
                        reason="the database did not take these outcomes before the stop timeout; "
                               "the jobs stay running until their leases expire, then recovery "
                               "queues them again (a finished job's work may run again)")
        return report

    async def close_resources(self) -> None:
        leftover = list(self._tasks.values())  # supervision, or all of them after a failed start
        self._tasks.clear()
        for task in leftover:
            task.cancel()
        if leftover:
            done, _ = await asyncio.wait(leftover, timeout=CANCEL_WAIT_S)
            for task in done:  # retrieved, so none is reported as never retrieved
                if not task.cancelled():
                    task.exception()
        if self.http is not None:
            with contextlib.suppress(Exception, TimeoutError):
                await asyncio.wait_for(self.http.stop(), timeout=HTTP_STOP_S)
        elif self._sock is not None:
            self._sock.close()
        if self.executor is not None:
            self.executor.close()
        for pool in (self.runtime_pool, self.pool):
            if pool is None:
                continue
            if self.outcomes_unwritten:
                pool.terminate()  # it did not take the outcomes: no goodbye either
            else:
                try:
                    await asyncio.wait_for(pool.close(), timeout=POOL_CLOSE_S)
                except (Exception, TimeoutError):
                    pool.terminate()  # a hung server never answers the goodbye
        if self.embedded is not None:
            await self.embedded.stop()
        self.notifier.close()


@dataclass
class InFlightReport:
    """What finish_in_flight did with the jobs in flight when the stop began (the `drained` phase)."""

    in_flight: int = 0
    cancelled: int = 0  # handlers still running at the deadline
    released: int = 0  # releases written (queued again, attempt not counted)
    finished: int = 0  # completed or failed (retry or final) and written
    lease_lost: int = 0
    unwritten: list[Outcome] = field(default_factory=list)

    def count(self, settled: Counter[Settled]) -> None:
        self.released = settled[Settled.RELEASED]
        self.finished = settled[Settled.COMPLETED] + settled[Settled.QUEUED] + settled[Settled.FAILED]
        self.lease_lost = settled[Settled.LEASE_LOST]

    def fields(self) -> dict[str, Any]:
        return {"in_flight": self.in_flight, "finished": self.finished, "cancelled": self.cancelled,
                "released": self.released, "lease_lost": self.lease_lost,
                "not_released": len(self.unwritten)}


def main(settings: Settings, *, run: Callable[..., Any] = asyncio.run) -> int:
    """Entry point of `ayb-jobs run` (called by the CLI): returns the exit code."""

    async def _serve() -> int:
        return await Daemon(settings).serve()

    return int(run(_serve()))
