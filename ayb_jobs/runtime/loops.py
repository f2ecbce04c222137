"""What the background loops share: sleeping on events, and `supervise`, the one loop shape.

Every long-running loop of the daemon (scheduler, recovery, listener, presence, supervision, ...)
runs a step over and over until asked to stop, and must survive its database failing under it:
count the error, say so in one `db_error` line, wait a little longer each time and try again.
`supervise` is that loop, written once; each loop keeps only its step, which says how long to wait
before the next one (and which events may end the wait early).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any


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


class FailureDelay:
    """How long a failing loop waits before trying again: doubles from `first` up to `cap` while the
    failures go on (the database is down), back to `first` on the next success. `first == cap` gives
    a fixed delay, for loops that should not retry sooner than their normal period. Not to be
    confused with a job's retry delay (ayb_jobs.backoff)."""

    def __init__(self, first: float = 0.1, cap: float = 5.0, *, spread: float = 0.1) -> None:
        self.first, self.cap, self.spread = first, cap, spread
        self.current = first

    def next(self) -> float:
        delay = self.current
        self.current = min(self.current * 2, self.cap)
        return jittered(delay, self.spread) if self.spread else delay

    def reset(self) -> None:
        self.current = self.first


@dataclass(frozen=True, slots=True)
class Pause:
    """A step's answer when a plain number of seconds is not enough: wait up to `seconds` (None: no
    limit) or until one of `events` (or the stop) is set. These events replace the loop's `wake_on`."""

    seconds: float | None
    events: tuple[asyncio.Event, ...] = ()


Step = Callable[[], Awaitable[float | Pause]]


async def supervise(component: str, step: Step, *, stop: asyncio.Event, log: Any,
                    on_db_error: Callable[[str], None] | None, delay: FailureDelay,
                    wake_on: Sequence[asyncio.Event] = ()) -> None:
    """Run `step` until `stop` is set.

    A step returns how long to wait before the next one: seconds (the wait also ends on `stop` or
    one of `wake_on`), 0 or less for the next step at once (not even a yield, as a poller that found
    a full batch wants), or a `Pause`. A step that raises is a database failure as far as the loop is
    concerned: `on_db_error(component)` counts it (None: not counted), one `db_error` line says what
    happened, and the next step comes after `delay.next()` (the wait ends early on `stop` or
    `wake_on` too); a step that returns resets `delay`. `log` is the caller's logger, so the line
    names the loop's module. Cancellation is not an Exception and ends the loop.
    """
    while not stop.is_set():
        try:
            pause = await step()
        except Exception as exc:
            if on_db_error is not None:
                on_db_error(component)
            log.warning("db_error", component=component, error=f"{type(exc).__name__}: {exc}")
            await wait_any(stop, *wake_on, timeout=delay.next())
            continue
        delay.reset()
        if isinstance(pause, Pause):
            await wait_any(stop, *pause.events, timeout=pause.seconds)
        elif pause > 0:
            await wait_any(stop, *wake_on, timeout=pause)
