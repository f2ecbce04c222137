"""Connections: the daemon's pool and the dedicated LISTEN connection."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from ayb_jobs.errors import DatabaseUnavailable

CHANNEL = "ayb_jobs"
# Requests to the daemons themselves, e.g. "cancel <job id>" (the one running the job acts on it).
CONTROL_CHANNEL = "ayb_jobs_control"
APPLICATION_NAME = "ayb-jobs"
# Session settings of every daemon connection. JIT off: the planner estimates the claim's merge of
# queue heads from its statistics, not from the LIMIT it reads under, and with a deep backlog (or
# a million finished rows) the estimate passes jit_above_cost; compiling the statement then took
# 23 ms (1,000,000 finished rows) to 420 ms (300,000 queued) of a claim that executes in 1-2 ms
# (bench/statements.py --plans). None of the daemon's statements is long enough to gain from JIT.
SESSION_SETTINGS = {"application_name": APPLICATION_NAME, "jit": "off"}
# How long past a statement's own timeout the pool may take to give its connection back.
RELEASE_GRACE_S = 1.0
T = TypeVar("T")


async def bounded(aw: Awaitable[T], timeout_s: float) -> T:
    """Await a pool statement given `timeout=timeout_s`, bounding its release too.

    After a statement timeout the pool's release waits for the server to acknowledge the cancel
    request, which a hung server (stopped, or behind a silent network) never does: the caller
    would hang until TCP gives up. Cancelling that wait makes the pool terminate the connection."""
    async with asyncio.timeout(timeout_s + RELEASE_GRACE_S):
        return await aw


async def reset_or_discard(conn: asyncpg.Connection) -> None:
    """The pool's reset on release (the default query), but a failure discards the connection
    instead of raising. asyncpg's default raises from release(), i.e. after the caller's statement
    has succeeded: after a server restart a pooled connection that got the server's FATAL answers
    the reset with InternalClientError ("cannot switch to state 15 ..."), so a committed claim,
    outcome write or handler insert looked failed (seen in tests/e2e/test_pg_restart.py). The pool
    replaces a terminated connection on the next acquire()."""
    try:
        query = conn.get_reset_query()
        if query:
            await conn.execute(query)
    except Exception:
        conn.terminate()


async def keep_session(conn: asyncpg.Connection) -> None:
    """No reset on release, for the runtime pool: its statements (claims, outcome writes,
    heartbeats) are single statements that leave no session state behind, and the reset query
    was a round trip per release, two per claimed batch (py-spy and pg_stat_statements: a quarter
    of the drain rate). asyncpg still rolls back a transaction left open before this is called."""


async def create_pool(dsn: str, *, max_size: int = 10, min_size: int = 1, statement_cache_size: int = 100,
                      connect_timeout: float = 10.0,
                      init: Callable[[asyncpg.Connection], Awaitable[Any]] | None = None,
                      reset: Callable[[asyncpg.Connection], Awaitable[None]] = reset_or_discard,
                      ) -> asyncpg.Pool:
    """Open the pool and prove the database answers with one real round trip. `init` runs on
    every connection the pool opens (the daemon's DatabaseWatch hears of their loss that way).
    Pools that hand connections to other code (handlers, the admin API) keep the default reset."""
    try:
        pool = await asyncpg.create_pool(
            dsn, min_size=min_size, max_size=max_size, statement_cache_size=statement_cache_size,
            timeout=connect_timeout, server_settings=SESSION_SETTINGS, reset=reset, init=init,
        )
        await pool.fetchval("SELECT 1", timeout=connect_timeout)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        raise DatabaseUnavailable(
            f"cannot connect to the database: {type(exc).__name__}: {exc}; check database.url "
            "(AYB_DATABASE_URL) and that PostgreSQL is running and reachable"
        ) from exc
    return pool


async def connect(dsn: str, *, statement_cache_size: int = 100, timeout: float = 10.0,
                  ) -> asyncpg.Connection:
    return await asyncpg.connect(dsn, statement_cache_size=statement_cache_size, timeout=timeout,
                                 server_settings=SESSION_SETTINGS)
