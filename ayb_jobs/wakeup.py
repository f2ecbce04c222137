"""Wake-up NOTIFYs for enqueues made outside a caller's transaction, coalesced only under a burst.

A NOTIFY is what lets a daemon start a job within a millisecond or two instead of at its next
poll, so an enqueue after a quiet moment carries its own NOTIFY. Coalescing starts only when
notifications would outnumber the claims they can cause: while one went out less than a window
(~2 ms, about one claim's round trip) ago, a poller it woke is still claiming, and further
NOTIFYs would only wake it again for the same rows. Those enqueues send none; instead one
NOTIFY follows at the window's end, after every suppressed enqueue has committed (each calls
`trail()` once its insert returns), so no job is left waiting for a poll: the next enqueue's own
NOTIFY if one comes by then, else a trailing `pg_notify` of its own. (If that next enqueue fails,
its NOTIFY is lost with it: those jobs wait for a poll, only latency is lost.)

    notify_now = throttle.take()
    await insert_jobs(..., notify=notify_now)   # the NOTIFY rides in the insert's own transaction
    if not notify_now:
        throttle.trail(pool)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from ayb_jobs.db import queries

WINDOW_S = 0.002


class NotifyThrottle:
    def __init__(self, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._window_s = window_s
        self._clock = clock  # injectable so tests can place enqueues in time without sleeping
        self._last = float("-inf")
        self._trailing: asyncio.Task[None] | None = None
        self._owed = False  # a suppressed enqueue committed after the last NOTIFY was sent

    def take(self) -> bool:
        """True if this enqueue should carry the NOTIFY itself: none went out within the window."""
        now = self._clock()
        if now - self._last >= self._window_s:
            self._last = now
            # Every suppressed enqueue that called trail() has committed, so the NOTIFY this one
            # carries (delivered at its own, later commit) covers them: no separate statement.
            self._owed = False
            return True
        return False

    def trail(self, pool: Any) -> None:
        """Call after a suppressed enqueue committed: one NOTIFY will follow it, at the window's end."""
        self._owed = True
        if self._trailing is None or self._trailing.done():
            self._trailing = asyncio.create_task(self._send_owed(pool))

    async def _send_owed(self, pool: Any) -> None:
        # A trail() that arrives while a NOTIFY is being sent may belong to a row committed after
        # that NOTIFY's own commit, so it is owed another one: loop until nothing is owed.
        while self._owed:
            delay = self._last + self._window_s - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
                continue  # meanwhile an enqueue may have carried the NOTIFY, or moved the window
            self._owed = False
            self._last = self._clock()
            try:
                await queries.notify(pool)
            except Exception:
                return  # only latency is lost: every daemon's polling finds the jobs anyway

    async def close(self) -> None:
        if self._trailing is not None:
            await self._trailing
