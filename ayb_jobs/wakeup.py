"""Wake-up NOTIFYs for enqueues made outside a caller's transaction, at most one per window.

Under load a NOTIFY per enqueue wakes every daemon's poller for nothing; a window of ~100 ms keeps
the wake-ups cheap while the suppressed ones are folded into one trailing NOTIFY at the window's
end, so the last jobs of a burst are not left waiting for a poll.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ayb_jobs.db import queries

WINDOW_S = 0.1


class NotifyThrottle:
    def __init__(self, window_s: float = WINDOW_S) -> None:
        self._window_s = window_s
        self._last = float("-inf")
        self._trailing: asyncio.Task[None] | None = None

    def take(self) -> bool:
        """True if this enqueue should carry the NOTIFY itself (the window is open)."""
        now = time.monotonic()
        if now - self._last >= self._window_s:
            self._last = now
            return True
        return False

    def trail(self, pool: Any) -> None:
        """Make sure one NOTIFY goes out at the end of the current window."""
        if self._trailing is None or self._trailing.done():
            self._trailing = asyncio.create_task(self._notify_later(pool))

    async def _notify_later(self, pool: Any) -> None:
        await asyncio.sleep(max(0.0, self._last + self._window_s - time.monotonic()))
        self._last = time.monotonic()
        try:
            await queries.notify(pool)
        except Exception:
            pass  # only latency is lost: every daemon's polling finds the jobs anyway

    async def close(self) -> None:
        if self._trailing is not None:
            await self._trailing
