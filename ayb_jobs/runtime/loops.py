"""Small helpers shared by the background loops: sleeping on events, backing off."""

from __future__ import annotations

import asyncio
import random


async def wait_any(*events: asyncio.Event, timeout: float | None) -> bool:
    """Wait until one of the events is set or the timeout passes; True if an event was set."""
    if any(e.is_set() for e in events):
        return True
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
    return bool(done)


def jittered(seconds: float, spread: float = 0.1) -> float:
    """Spread periodic work of several daemons so they do not hit the database in lockstep."""
    return seconds * (1 + random.uniform(-spread, spread))


class Backoff:
    """Exponential delay for a loop that keeps failing (database down); reset on success."""

    def __init__(self, first: float = 0.1, cap: float = 5.0) -> None:
        self.first, self.cap = first, cap
        self.current = first

    def next(self) -> float:
        delay = self.current
        self.current = min(self.current * 2, self.cap)
        return jittered(delay)

    def reset(self) -> None:
        self.current = self.first
