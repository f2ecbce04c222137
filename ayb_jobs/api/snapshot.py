"""One shared read for many readers: the queue counts behind /metrics and /jobs/stats.

However many clients ask at once, at most one database read is in flight; a caller gets a result
no older than the `max_age_s` it asks for (a read that started before its request counts only if
it is young enough), so a storm of scrapes costs one cheap query per interval, not one per request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SharedRead(Generic[T]):
    def __init__(self, read: Callable[[], Awaitable[T]], *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._read = read
        self._clock = clock
        self._value: T | None = None
        self._has_value = False  # the value itself may be None (e.g. "ready, no reason")
        self._read_at = -float("inf")  # when the cached value's read started
        self._inflight: asyncio.Task[T] | None = None
        self._inflight_started = 0.0
        self.reads = 0  # database reads made (for tests and debugging)

    async def get(self, max_age_s: float) -> T:
        """A value read at most `max_age_s` before now (0: a read that starts after this call)."""
        asked_at = self._clock()
        while True:
            if self._has_value and asked_at - self._read_at <= max_age_s:
                return self._value  # type: ignore[return-value]
            inflight = self._inflight
            if inflight is None:
                inflight = self._start()
            elif asked_at - self._inflight_started > max_age_s:
                # Started too early for this caller: let it end, then start (or join) the next read.
                await asyncio.wait([inflight])
                continue
            # Shielded: a caller that goes away (client disconnect) does not cancel the others' read.
            return await asyncio.shield(inflight)

    def _start(self) -> asyncio.Task[T]:
        started = self._clock()
        self.reads += 1

        async def read() -> T:
            try:
                value = await self._read()
                self._value, self._read_at, self._has_value = value, started, True
                return value
            finally:
                self._inflight = None

        self._inflight, self._inflight_started = asyncio.create_task(read(), name="shared-read"), started
        self._inflight.add_done_callback(_retrieve)
        return self._inflight


def _retrieve(task: asyncio.Task[object]) -> None:
    """Mark a failed read's error as seen: every caller got it already, none is lost."""
    if not task.cancelled():
        task.exception()
