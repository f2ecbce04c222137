"""Job types for the benchmark: `bench_noop` does nothing, so the figures measure the queue itself."""

from __future__ import annotations

from typing import Any

JOB_TYPE = "bench_noop"


async def noop(payload: dict[str, Any], ctx: Any) -> None:
    return None


def register(registry: Any) -> None:
    registry.add(JOB_TYPE, noop, description="benchmark job: does nothing")
