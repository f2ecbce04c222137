"""One timer for the timeouts of every running handler, instead of an `asyncio.timeout` each.

A per-job `asyncio.timeout` costs a timer handle in the loop's heap, a context manager and a
`current_task()` lookup for every job, rescheduled and cancelled again a millisecond later when the
job is quick (6.5 % of the daemon's CPU at saturation under py-spy). Here the deadlines wait in
one insertion-ordered dict per timeout value: jobs of one timeout start in order, so each dict is
ordered by deadline too, adding and removing are O(1), and a single loop timer is armed for the
earliest deadline. When it fires early (the job it was armed for has finished), it looks at the
fronts and arms itself again for the next one: at most one wake-up per timeout period in a steady
flow of quick jobs.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Hashable

# A deadline this close is due: the loop may run a timer a clock tick before its time.
EARLY_S = 0.001


class Deadlines:
    def __init__(self, on_expired: Callable[[Hashable], None]) -> None:
        self._on_expired = on_expired
        self._loop: asyncio.AbstractEventLoop | None = None
        self._by_timeout: dict[float, OrderedDict[Hashable, float]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for = float("inf")

    def add(self, key: Hashable, timeout_s: float) -> None:
        """Call `on_expired(key)` in `timeout_s` seconds, unless `discard` comes first."""
        group = self._by_timeout.get(timeout_s)
        if group is None:
            group = self._by_timeout[timeout_s] = OrderedDict()
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        deadline = self._loop.time() + timeout_s
        group[key] = deadline
        if deadline < self._armed_for:
            self._arm(deadline)

    def discard(self, key: Hashable, timeout_s: float) -> None:
        group = self._by_timeout.get(timeout_s)
        if group is not None:
            group.pop(key, None)

    def __len__(self) -> int:
        return sum(len(g) for g in self._by_timeout.values())

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._armed_for = None, float("inf")
        self._by_timeout.clear()

    def _arm(self, when: float) -> None:
        assert self._loop is not None
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(when, self._fire)
        self._armed_for = when

    def _fire(self) -> None:
        self._timer, self._armed_for = None, float("inf")
        assert self._loop is not None
        due_by = self._loop.time() + EARLY_S
        expired: list[Hashable] = []
        following = float("inf")
        for group in self._by_timeout.values():
            while group:
                key, deadline = next(iter(group.items()))
                if deadline > due_by:
                    following = min(following, deadline)
                    break
                del group[key]
                expired.append(key)
        if following < float("inf"):
            self._arm(following)
        for key in expired:
            self._on_expired(key)
