"""What a schedule does with its due slots: the overlap and misfire policies, as pure functions.

A schedule is due when its next_run_at has come. Its due slots are next_run_at and every later cron
slot up to the scheduler's clock. The newest one is *on time* if it came at most MISFIRE_GRACE_S
ago; every other due slot was *missed* (no daemon ran the scheduler at that moment). Then:

- misfire 'coalesce': one run for the lot (the on-time slot, else the newest missed one);
- misfire 'skip': missed slots are skipped, only an on-time slot runs;
- misfire 'all': one job per missed slot (the newest misfire_max of them), and the on-time slot;
- overlap 'skip': at most one job per pass (the oldest slot that runs); the database then skips even
  that one while a job of the schedule is still queued or running.

Every due slot gets exactly one decision: 'enqueue', 'skipped_misfire' or 'skipped_overlap'.
No clock reads and no I/O here: the scheduler passes its clock in.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache

from ayb_jobs import cron
from ayb_jobs.db.queries import DueSchedule, FirePlan

OVERLAPS = ("allow", "skip")
MISFIRES = ("coalesce", "skip", "all")
MISFIRE_MAX_LIMIT = 100
# A slot decided later than this after its time was missed. The scheduler normally decides a slot
# within milliseconds (and 5,000 of them within a second), so only downtime or a long database
# outage gets near it.
MISFIRE_GRACE_S = 10.0
# At most this many due slots are considered (and recorded) per schedule per pass: the newest ones.
# After long downtime older slots are neither run nor recorded (the history keeps 100 rows anyway).
MAX_SLOTS = 100
# Windows tried in turn to find the newest MAX_SLOTS slots without walking a long downtime slot by
# slot from its start (a week of a `* * * * *` schedule is 10,080 slots).
_WINDOWS = (timedelta(hours=1), timedelta(days=1), timedelta(days=31), timedelta(days=366))


def due_slots(expr: str, tz: str, first: datetime, now: datetime, cap: int = MAX_SLOTS) -> list[datetime]:
    """The newest `cap` slots in [first, now], oldest first; `first` (next_run_at) is one of them."""
    return list(_slots_and_next(expr, tz, first, now, cap)[0])


@lru_cache(maxsize=4096)
def _slots_and_next(expr: str, tz: str, first: datetime, now: datetime,
                    cap: int = MAX_SLOTS) -> tuple[tuple[datetime, ...], datetime]:
    """due_slots and the first slot after `now`. Cached: schedules sharing a cron and a slot (5,000
    `* * * * *` ones due the same minute) are worked out once per pass."""
    if first > now:
        return (), first
    for window in (*_WINDOWS, None):
        start = first if window is None or now - window <= first else now - window
        slots, after = _walk(expr, tz, start, now, include_start=start == first, cap=cap)
        if len(slots) >= cap or start == first:
            return tuple(slots[-cap:]), after
    raise AssertionError("unreachable: the last window starts at first")


def _walk(expr: str, tz: str, start: datetime, now: datetime, *, include_start: bool,
          cap: int) -> tuple[list[datetime], datetime]:
    """Slots from `start` up to `now`, and the first one after `now`."""
    slots = [start] if include_start else []
    at = start
    while True:
        at = cron.next_fire_after(expr, tz, at)
        if at > now:
            return slots, at
        slots.append(at)
        if len(slots) > 2 * cap:
            del slots[:-cap]  # only the newest are kept; bounded memory on a long walk


def plan(due: DueSchedule, now: datetime, *, grace_s: float = MISFIRE_GRACE_S) -> FirePlan:
    """The decisions for `due`'s slots at `now`, and its next slot (strictly after `now`)."""
    slot_tuple, next_run = _slots_and_next(due.cron_expr, due.timezone, due.next_run_at, now)
    slots = list(slot_tuple)
    if not slots:
        next_run = cron.next_fire_after(due.cron_expr, due.timezone, now)
    on_time = bool(slots) and (now - slots[-1]).total_seconds() <= grace_s
    current = slots[-1:] if on_time else []
    missed = slots[:-1] if on_time else slots
    runs = _runs(due.misfire, due.misfire_max, missed, current)
    if due.overlap == "skip" and len(runs) > 1:
        overlapping = set(runs[1:])
        runs = runs[:1]
    else:
        overlapping = set()
    wanted = set(runs)
    decisions = [(s, "enqueue" if s in wanted else "skipped_overlap" if s in overlapping
                  else "skipped_misfire") for s in slots]
    return FirePlan(due, next_run, decisions)


def _runs(misfire: str, misfire_max: int, missed: list[datetime], current: list[datetime]) -> list[datetime]:
    if misfire == "skip":
        return current
    if misfire == "all":
        return missed[-misfire_max:] + current
    return current or missed[-1:]  # coalesce (also for a value this version does not know)
