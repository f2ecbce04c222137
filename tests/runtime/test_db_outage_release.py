"""A handler's error is its own unless *our* database failed under it (runtime/dbwatch.py).

Our database going away while a handler queries through the daemon's pool releases the job
(attempt not counted), even for the errors asyncpg raises as plain OSErrors
(ConnectionRefusedError while the pool reconnects); the same exception classes raised for the
handler's own reasons, with our database fine, fail the attempt.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from harness import insert, runtime

from ayb_jobs.handlers import Registry


async def test_a_query_failing_while_our_database_is_down_releases_the_job(db_url: str, pool) -> None:
    started, go = asyncio.Event(), asyncio.Event()
    raised: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def queries_after_go(_payload: dict[str, Any], ctx: Any) -> None:
        started.set()
        await go.wait()
        try:
            await ctx.pool.fetchval("SELECT 1")
        except Exception as exc:
            raised.set_result(exc)
            raise

    registry = Registry()
    registry.add("needs_db", queries_after_go)
    job_id = await insert(pool, "needs_db", max_attempts=1)
    async with runtime(db_url, pool, registry) as rt:
        await rt.claim()
        await asyncio.wait_for(started.wait(), 5)
        await rt.proxy.cut()
        go.set()
        print("handler raised", repr(await asyncio.wait_for(raised, 5)))
        # The release is written once the database is back (the writer retries meanwhile).
        await rt.proxy.restore()
        row = await rt.settled(job_id, "queued", "failed")
    assert row["state"] == "queued" and row["attempts"] == 0, dict(row)
    assert row["last_error"].startswith("our database connection failed during the job"), row["last_error"]


async def refused_elsewhere(_payload: dict[str, Any], _ctx: Any) -> None:
    # A port nobody listens on: the handler's own dependency is down, our database is fine.
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    await asyncio.open_connection("127.0.0.1", port)


async def interface_error(_payload: dict[str, Any], _ctx: Any) -> None:
    raise asyncpg.InterfaceError("cannot perform operation: another operation is in progress")


@pytest.mark.parametrize(("handler", "error"), [(refused_elsewhere, "ConnectionRefusedError"),
                                                (interface_error, "InterfaceError")])
async def test_a_connection_error_of_the_handlers_own_fails_the_attempt(db_url: str, pool, handler: Any,
                                                                        error: str) -> None:
    registry = Registry()
    registry.add("own_error", handler)
    job_id = await insert(pool, "own_error", max_attempts=1)
    async with runtime(db_url, pool, registry) as rt:
        await rt.claim()
        row = await rt.settled(job_id, "queued", "failed")
    assert row["state"] == "failed" and row["attempts"] == 1, dict(row)
    assert row["last_error"].startswith(error), row["last_error"]
