"""Job handlers for the dashboard's daemon tests, loaded through `jobs.handlers =
["dash_handlers:register"]` (tests/dashboard/support is on the daemon's PYTHONPATH)."""

from __future__ import annotations

import asyncio
from typing import Any


async def ok(payload: dict[str, Any], ctx: Any) -> dict[str, Any]:
    return {"ok": True}


async def fail(payload: dict[str, Any], ctx: Any) -> None:
    raise RuntimeError(payload.get("message", "failed on purpose"))


async def hold(payload: dict[str, Any], ctx: Any) -> None:
    """Stay running (for the Running view) until the daemon stops."""
    await asyncio.sleep(float(payload.get("seconds", 3600)))


def register(registry: Any) -> None:
    registry.add("ok", ok, description="dashboard tests: complete at once")
    registry.add("chart_ok", ok, description="dashboard tests: complete at once (chart)")
    registry.add("fail", fail, description="dashboard tests: raise payload.message")
    registry.add("chart_fail", fail, description="dashboard tests: raise (chart)")
    registry.add("hold", hold, description="dashboard tests: keep running")
