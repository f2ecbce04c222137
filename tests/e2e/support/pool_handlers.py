"""A handler that holds one of the daemon's pool connections until the test lets it go, so a test
can exhaust the workers' pool (loaded through `jobs.handlers = ["pool_handlers:register"]`)."""

from __future__ import annotations

import asyncio
from typing import Any

SIGNAL_POLL_S = 0.05


async def hold_connection(payload: dict[str, Any], ctx: Any) -> None:
    async with ctx.pool.acquire() as conn:
        ctx.log.info("e2e_handler_started")
        # The release comes from another process (the test), so polling the table is the only way.
        while not await conn.fetchval("SELECT true FROM e2e_signals WHERE key = $1", payload["key"]):  # noqa: ASYNC110
            await asyncio.sleep(SIGNAL_POLL_S)


def register(registry: Any) -> None:
    registry.add("hold_connection", hold_connection,
                 description="e2e: hold a pool connection until signalled")
