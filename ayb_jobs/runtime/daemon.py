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
import os
import secrets
import signal
import socket
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from ayb_jobs.api.auth import is_loopback
from ayb_jobs.config import Settings, settings_report
from ayb_jobs.db import migrate, queries
from ayb_jobs.db.pool import create_pool
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
from ayb_jobs.runtime.loops import wait_any
from ayb_jobs.runtime.maintenance import Maintenance
from ayb_jobs.runtime.outcomes import OutcomeWriter
from ayb_jobs.runtime.poller import Poller
from ayb_jobs.runtime.scheduler import Scheduler, fill_missing_next_run
from ayb_jobs.runtime.sdnotify import SystemdNotifier
from ayb_jobs.runtime.workers import WorkerPresence
from ayb_jobs.service import JobService

log = structlog.get_logger("ayb_jobs.daemon")
PING_TIMEOUT_S = 2.0
STATUS_INTERVAL_S = 10.0


def make_worker_id() -> str:
    return f"{socket.gethostname()[:60]}-{os.getpid()}-{secrets.token_hex(3)}"


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
        self.exit_code = 0
        self.pool: Any = None
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
            self.spawn("supervision", self.supervise())
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
        self.writer = OutcomeWriter(self.pool, self.worker_id,
                                    on_db_error=lambda: self.metrics.db_error("outcomes"))
        self.executor = Executor(pool=self.pool, registry=self.registry, writer=self.writer,
                                 metrics=self.metrics, worker_id=self.worker_id,
                                 concurrency=jobs.worker_concurrency, job_timeout_s=jobs.job_timeout_s,
                                 watch=self.watch)
        self.poller = Poller(pool=self.pool, executor=self.executor, metrics=self.metrics,
                             lease_s=jobs.lease_duration_s, poll_interval_s=jobs.poll_interval_ms / 1000)
        self.listener = Listener(dsn=db.listen_url or dsn, wake=self.poller.wake.set, metrics=self.metrics,
                                 statement_cache_size=db.statement_cache_size, on_control=self._on_control)
        self.heartbeat = Heartbeat(pool=self.pool, executor=self.executor, metrics=self.metrics,
                                   lease_s=jobs.lease_duration_s)
        self.maintenance = Maintenance(pool=self.pool, metrics=self.metrics,
                                       interval_s=jobs.recovery_interval_s, on_requeued=self.poller.wake.set)
        self.spawn("listener", self.listener.run())
        self.spawn("outcomes", self.writer.run())
        self.spawn("poller", self.poller.run())
        self.spawn("heartbeat", self.heartbeat.run())
        self.spawn("maintenance", self.maintenance.run())
        self.presence = WorkerPresence(pool=self.pool, worker_id=self.worker_id, types=self.registry.names(),
                                       concurrency=jobs.worker_concurrency,
                                       running=lambda: self.executor.running,
                                       on_db_error=lambda: self.metrics.db_error("workers"))
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

    async def supervise(self) -> None:
        """Watchdog pings while the loop and the database are healthy, and a STATUS line."""
        interval = self.notifier.watchdog_interval_s()
        period = min(interval, STATUS_INTERVAL_S) if interval else STATUS_INTERVAL_S
        while not self.stop_requested.is_set():
            try:
                status = await self.status_line()
                self.notifier.status(status)
                if interval:
                    self.notifier.watchdog()
            except Exception as exc:
                log.warning("db_error", component="supervision", error=f"{type(exc).__name__}: {exc}")
            await wait_any(self.stop_requested, timeout=period)

    async def status_line(self) -> str:
        if not self.jobs.enabled:
            await queries.db_now(self.pool, timeout=PING_TIMEOUT_S)
            return "jobs disabled; legacy webhook pruner active"
        queued, running = await queries.active_counts(self.pool, timeout=PING_TIMEOUT_S)
        running_here = len(self.executor.running) if self.executor else 0
        return f"{running_here} running here, {running} running, {queued} queued"

    # --- shutdown --------------------------------------------------------------------------------

    def phase(self, name: str, **fields: Any) -> None:
        log.info("shutdown_phase", phase=name, **fields)

    async def shutdown(self) -> None:
        await self.stop_loop(self.scheduler, "scheduler")
        self.phase("scheduler_stopped")
        await self.stop_loop(self.poller, "poller")
        self.draining = True
        self.notifier.stopping()
        self.phase("polling_stopped")
        released = await self.drain()
        for name, component in (("heartbeat", self.heartbeat), ("maintenance", self.maintenance),
                                ("listener", self.listener), ("legacy_pruner", self.legacy),
                                ("workers", self.presence), ("health", self.health)):
            await self.stop_loop(component, name)
        self.phase("drained", released=released)
        await self.close_resources()
        self.phase("exited", exit_code=self.exit_code)

    async def stop_loop(self, component: Any, name: str) -> None:
        task = self._tasks.pop(name, None)
        if component is not None:
            component.stop.set()
        if task is not None:
            try:
                await asyncio.wait_for(task, timeout=10)
            except (Exception, asyncio.CancelledError) as exc:
                log.warning("task_stop_failed", task=name, error=repr(exc))

    async def drain(self) -> int:
        """Let in-flight jobs finish (bounded); cancel and release the rest. Returns released count."""
        if self.executor is None:
            return 0
        in_flight = len(self.executor.running)
        if in_flight:
            log.info("draining", in_flight=in_flight, timeout_s=self.jobs.shutdown_timeout_s)
            await wait_any(self.executor.idle, self.force, timeout=self.jobs.shutdown_timeout_s)
        leftover = len(self.executor.running)
        if leftover:
            self.executor.stop_all("shutdown")
            # Handlers get a moment to unwind; the release writes then go out in one statement.
            await wait_any(self.executor.idle, timeout=15)
        if self.writer is not None:
            self.writer.close()
            await self.stop_loop(None, "outcomes")
        return leftover

    async def close_resources(self) -> None:
        for name in list(self._tasks):
            task = self._tasks.pop(name)
            task.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task
        if self.http is not None:
            await self.http.stop()
        elif self._sock is not None:
            self._sock.close()
        if self.pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.pool.close(), timeout=10)
        if self.embedded is not None:
            await self.embedded.stop()
        self.notifier.close()


def main(settings: Settings, *, run: Callable[..., Any] = asyncio.run) -> int:
    """Entry point of `ayb-jobs run` (called by the CLI): returns the exit code."""

    async def _serve() -> int:
        return await Daemon(settings).serve()

    return int(run(_serve()))
