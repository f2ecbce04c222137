"""One loop timer for every running handler's timeout."""

from __future__ import annotations

import asyncio

from ayb_jobs.runtime.deadlines import EARLY_S, Deadlines


class Recorder:
    """Records when each key expired (loop time since the start) and wakes who waits for `n`."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.start = self.loop.time()
        self.expired: list[tuple[str, float]] = []
        self.changed = asyncio.Event()

    def __call__(self, key: object) -> None:
        self.expired.append((str(key), self.loop.time() - self.start))
        self.changed.set()

    async def until(self, n: int) -> list[str]:
        while len(self.expired) < n:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 5)
        return [key for key, _ in self.expired]


async def test_each_key_expires_after_its_own_timeout_in_deadline_order() -> None:
    seen = Recorder()
    deadlines = Deadlines(seen)
    deadlines.add("slow", 0.2)
    deadlines.add("fast", 0.05)  # a shorter timeout arms the timer earlier
    deadlines.add("fast-too", 0.05)
    assert await seen.until(3) == ["fast", "fast-too", "slow"]
    timeouts = {"fast": 0.05, "fast-too": 0.05, "slow": 0.2}
    assert all(at >= timeouts[key] - EARLY_S for key, at in seen.expired), seen.expired
    assert len(deadlines) == 0


async def test_a_discarded_key_never_expires_and_the_next_one_still_does() -> None:
    seen = Recorder()
    deadlines = Deadlines(seen)
    deadlines.add("done", 0.02)
    deadlines.add("running", 0.06)
    deadlines.discard("done", 0.02)  # the timer armed for it fires, finds nothing due, re-arms
    assert await seen.until(1) == ["running"]
    assert seen.expired[0][1] >= 0.06 - EARLY_S


async def test_close_cancels_the_timer() -> None:
    seen = Recorder()
    deadlines = Deadlines(seen)
    deadlines.add("x", 0.01)
    deadlines.close()
    later = Deadlines(seen)
    later.add("after-close", 0.03)  # an independent timer, to know when "x" would long have fired
    assert await seen.until(1) == ["after-close"]
