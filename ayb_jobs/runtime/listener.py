"""LISTEN ayb_jobs on a dedicated connection and wake the poller on each notification.

It also listens on the control channel and hands each message ("cancel <job id>") to `on_control`;
a message missed while disconnected is made up for by the heartbeat, which reads the same request
from the job rows.

After a database restart the connection is dead for good: reconnect after a growing delay, LISTEN again,
and wake the poller at once (notifications sent meanwhile are lost). A server that hangs instead
of closing is noticed by a periodic `select 1` with a timeout.

Self-test: a connection can accept LISTEN and still never deliver a notification (PgBouncer in
transaction mode hands the LISTEN to a server connection the client is no longer attached to). So
after each connect, and every PROBE_EVERY_S after that, the listener NOTIFYs a private channel it
listens on and waits PROBE_TIMEOUT_S for it. A probe that does not arrive logs
`listen_not_delivering` once (until a later probe arrives, logged as `listen_delivering`) and sets
the gauge `ayb_jobs_listen_ok` to 0; the daemon then runs on polling alone, which needs nothing
from this connection.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import structlog

from ayb_jobs.db import queries
from ayb_jobs.db.pool import CHANNEL, CONTROL_CHANNEL, connect
from ayb_jobs.metrics import Metrics
from ayb_jobs.runtime.loops import FailureDelay, jittered, supervise, wait_any

log = structlog.get_logger("ayb_jobs.listener")
HEALTH_INTERVAL_S = 5.0
HEALTH_TIMEOUT_S = 3.0
PROBE_TIMEOUT_S = 2.0
PROBE_EVERY_S = 60.0
NOT_DELIVERING = ("a NOTIFY sent to this daemon's LISTEN connection did not arrive within {timeout:g} s "
                  "(e.g. PgBouncer in transaction mode): new jobs are found by polling only, every "
                  "jobs.poll_interval_ms; point database.listen_url (AYB_DATABASE_LISTEN_URL) at a direct "
                  "Postgres connection")


class Listener:
    def __init__(self, *, dsn: str, wake: Callable[[], None], metrics: Metrics,
                 statement_cache_size: int = 100, probe_timeout_s: float = PROBE_TIMEOUT_S,
                 probe_every_s: float = PROBE_EVERY_S,
                 on_control: Callable[[str], None] | None = None) -> None:
        self._dsn = dsn
        self._wake = wake
        self._on_control = on_control
        self._metrics = metrics
        self._cache = statement_cache_size
        self._probe_timeout_s = probe_timeout_s
        self._probe_every_s = probe_every_s
        self._probe_channel = f"ayb_jobs_probe_{uuid.uuid4().hex[:16]}"  # private to this listener
        self._probe_arrived = asyncio.Event()
        self._reported_bad = False
        self._delay = FailureDelay(first=0.1, cap=5.0)  # before reconnecting after a failure
        self._reconnect = False
        self.listen_ok = False  # connected, and the last probe arrived
        self.probed = asyncio.Event()  # set after each probe (tests wait on it)
        self.stop = asyncio.Event()
        self.connected = asyncio.Event()
        metrics.add_collector(self.metrics_lines)

    def _on_notify(self, *_args: Any) -> None:
        self._wake()

    def _on_control_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if self._on_control is None:
            return
        try:
            self._on_control(payload)
        except Exception as exc:  # a bad message must not take the listener down
            log.warning("control_message_failed", payload=payload[:200], error=f"{type(exc).__name__}: {exc}")

    def _on_probe(self, *_args: Any) -> None:
        self._probe_arrived.set()

    def metrics_lines(self) -> Iterator[str]:
        yield "# HELP ayb_jobs_listen_ok 1 when the LISTEN connection is up and delivers notifications " \
              "(its last self-test NOTIFY arrived), else 0: then jobs are found by polling only."
        yield "# TYPE ayb_jobs_listen_ok gauge"
        yield f"ayb_jobs_listen_ok {int(self.listen_ok)}"

    async def _probe(self, conn: Any) -> None:
        """NOTIFY our private channel on this connection and wait for it to come back."""
        self._probe_arrived.clear()
        await queries.notify_channel(conn, self._probe_channel, timeout=HEALTH_TIMEOUT_S)
        try:
            await asyncio.wait_for(self._probe_arrived.wait(), self._probe_timeout_s)
            delivered = True
        except TimeoutError:
            delivered = False
        self._record_probe(delivered)

    def _record_probe(self, delivered: bool) -> None:
        if not delivered and not self._reported_bad:
            log.warning("listen_not_delivering", channel=CHANNEL,
                        message=NOT_DELIVERING.format(timeout=self._probe_timeout_s))
            self._reported_bad = True
        elif delivered and self._reported_bad:
            log.info("listen_delivering", channel=CHANNEL, message="the LISTEN connection delivers again")
            self._reported_bad = False
        self.listen_ok = delivered
        self.probed.set()

    async def _session(self, *, reconnect: bool) -> None:
        """One LISTEN connection's life: returns when it is lost or the listener stops."""
        lost = asyncio.Event()
        conn = await connect(self._dsn, statement_cache_size=self._cache)
        try:
            conn.add_termination_listener(lambda _c: lost.set())
            await conn.add_listener(CHANNEL, self._on_notify)
            await conn.add_listener(self._probe_channel, self._on_probe)
            if self._on_control is not None:
                await conn.add_listener(CONTROL_CHANNEL, self._on_control_notify)
            self.connected.set()
            # Connected: a failure later in this session (a ping that times out) reconnects after
            # the shortest delay again, not after one grown by the failures before this connect.
            self._delay.reset()
            log.debug("listener_ready", channel=CHANNEL)  # tests wait on it before timing a NOTIFY
            if reconnect:
                log.info("listener_reconnected")
                self._wake()  # catch up: notifications sent while we were away are lost
            await self._probe(conn)  # re-tested after every (re)connect
            probed_at = time.monotonic()
            while not self.stop.is_set() and not lost.is_set():
                if await wait_any(self.stop, lost, timeout=HEALTH_INTERVAL_S):
                    break
                if time.monotonic() - probed_at >= self._probe_every_s:
                    await self._probe(conn)  # also proves the server answers
                    probed_at = time.monotonic()
                else:
                    await queries.ping(conn, timeout=HEALTH_TIMEOUT_S)
        finally:
            self.listen_ok = False
            self.connected.clear()
            if not conn.is_closed():
                try:
                    await asyncio.wait_for(conn.close(), timeout=2)
                except Exception:
                    conn.terminate()

    async def step(self) -> float:
        """One session; after a lost connection, the pause before connecting again."""
        reconnect, self._reconnect = self._reconnect, True  # every session after the first reconnects
        await self._session(reconnect=reconnect)
        return jittered(self._delay.first)

    async def run(self) -> None:
        await supervise("listener", self.step, stop=self.stop, log=log, on_db_error=self._metrics.db_error,
                        delay=self._delay)
