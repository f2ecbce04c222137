"""Is *our* database down? The evidence that decides whether a handler's error is its own.

A handler that queries through the daemon's pool sees a database outage as an exception of its
own call: ConnectionRefusedError while the pool reconnects, ConnectionResetError or
ConnectionDoesNotExistError mid-query, CannotConnectNowError while the server starts, an
InterfaceError with the real error in `__context__`. The same exception classes can just as well
be the handler's own business (a web service refusing, its own asyncpg connection to another
database), so the class alone decides nothing. An error counts as our database's fault when
something connection-like is in its chain *and* our side saw the fault:
- a connection of our pool was lost since the run started (the pool tells us, see `track`), or
- a quick probe through our pool fails, or
- the server's start time changed since we last looked (it restarted in between).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import asyncpg

from ayb_jobs.db import queries
from ayb_jobs.errors import DatabaseUnavailable

PROBE_TIMEOUT_S = 2.0
# Exceptions that can mean "the connection went away", somewhere in an error's chain.
_CONNECTION_LIKE = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                    asyncpg.InternalClientError, asyncpg.AdminShutdownError, asyncpg.CrashShutdownError,
                    asyncpg.CannotConnectNowError, DatabaseUnavailable)
_CHAIN_DEPTH = 8


def connection_like(exc: BaseException) -> bool:
    """Whether `exc` or an exception it came from (cause or context) looks like a lost connection."""
    seen: BaseException | None = exc
    for _ in range(_CHAIN_DEPTH):
        if seen is None:
            return False
        if isinstance(seen, _CONNECTION_LIKE):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class DatabaseWatch:
    """Counts the faults our pool saw; `faults` read at a run's start and compared at its end."""

    def __init__(self, probe_timeout_s: float = PROBE_TIMEOUT_S) -> None:
        self.faults = 0
        self._probe_timeout_s = probe_timeout_s
        self._server_started: datetime | None = None

    async def track(self, conn: asyncpg.Connection) -> None:
        """The pool's `init`: every connection it opens reports its loss here."""
        conn.add_termination_listener(self._lost)

    def _lost(self, _conn: Any) -> None:
        # Also fires when the pool closes an idle connection on purpose; counting that as a
        # fault at worst releases (uncounted, after a backoff) one connection-like handler error.
        self.faults += 1

    async def prime(self, pool: Any) -> None:
        """Read the server's start time once, so a restart before the first fault shows too."""
        await self.fault_since(pool, self.faults)

    async def fault_since(self, pool: Any, faults_before: int) -> bool:
        """True when our database failed since `faults_before` was read, or fails a probe now."""
        try:
            async with asyncio.timeout(self._probe_timeout_s):
                started = await queries.server_started_at(pool)
        except Exception:
            self.faults += 1
            return True
        if self._server_started is not None and started != self._server_started:
            self.faults += 1
        self._server_started = started
        return self.faults != faults_before
