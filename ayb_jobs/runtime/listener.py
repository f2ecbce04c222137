"""LISTEN ayb_jobs on a dedicated connection and wake the poller on each notification.

It also listens on the control channel and hands each message ("cancel <job id>") to `on_control`;
a message missed while disconnected is made up for by the heartbeat, which reads the same request
from the job rows.

After a database restart the connection is dead for good: reconnect with backoff, LISTEN again,
and wake the poller at once (notifications sent meanwhile are lost). A server that hangs instead
of closing is noticed by a periodic `select 1` with a timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog

from ayb_jobs.db.pool import CHANNEL, CONTROL_CHANNEL, connect
from ayb_jobs.metrics import Metrics
from ayb_jobs.runtime.loops import Backoff, wait_any

log = structlog.get_logger("ayb_jobs.listener")
HEALTH_INTERVAL_S = 5.0
HEALTH_TIMEOUT_S = 3.0


class Listener:
    def __init__(self, *, dsn: str, wake: Callable[[], None], metrics: Metrics,
                 statement_cache_size: int = 100, on_control: Callable[[str], None] | None = None) -> None:
        self._dsn = dsn
        self._wake = wake
        self._on_control = on_control
        self._metrics = metrics
        self._cache = statement_cache_size
        self.stop = asyncio.Event()
        self.connected = asyncio.Event()

    def _on_notify(self, *_args: Any) -> None:
        self._wake()

    def _on_control_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if self._on_control is None:
            return
        try:
            self._on_control(payload)
        except Exception as exc:  # a bad message must not take the listener down
            log.warning("control_message_failed", payload=payload[:200], error=f"{type(exc).__name__}: {exc}")

    async def _session(self, *, reconnect: bool, backoff: Backoff) -> None:
        """One LISTEN connection's life: returns when it is lost or the listener stops."""
        lost = asyncio.Event()
        conn = await connect(self._dsn, statement_cache_size=self._cache)
        try:
            conn.add_termination_listener(lambda _c: lost.set())
            await conn.add_listener(CHANNEL, self._on_notify)
            if self._on_control is not None:
                await conn.add_listener(CONTROL_CHANNEL, self._on_control_notify)
            self.connected.set()
            backoff.reset()
            log.debug("listener_ready", channel=CHANNEL)  # tests wait on it before timing a NOTIFY
            if reconnect:
                log.info("listener_reconnected")
                self._wake()  # catch up: notifications sent while we were away are lost
            while not self.stop.is_set() and not lost.is_set():
                if await wait_any(self.stop, lost, timeout=HEALTH_INTERVAL_S):
                    break
                await conn.fetchval("SELECT 1", timeout=HEALTH_TIMEOUT_S)
        finally:
            self.connected.clear()
            if not conn.is_closed():
                try:
                    await asyncio.wait_for(conn.close(), timeout=2)
                except Exception:
                    conn.terminate()

    async def run(self) -> None:
        backoff = Backoff(first=0.1, cap=5.0)
        reconnect = False
        while not self.stop.is_set():
            try:
                await self._session(reconnect=reconnect, backoff=backoff)
            except Exception as exc:
                self._metrics.db_error("listener")
                log.warning("db_error", component="listener", error=f"{type(exc).__name__}: {exc}")
            reconnect = True
            if not self.stop.is_set():
                await wait_any(self.stop, timeout=backoff.next())
