"""Differential test: next_fire_after agrees with cronsim (Debian cron semantics) on valid expressions.

cronsim iterates in the schedule's local time: fixed-time schedules (minute and hour not starting
with '*') walk naive wall times and land gap times on the first valid minute after the gap;
others tick through real time. Its first result can be at or before `after` when `after` lies in
the second pass of a repeated hour (it restarts from the naive wall time), so the oracle is the
first cronsim result strictly after `after` — the same "no re-run in the second pass" rule.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from cronsim import CronSim
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ayb_jobs.cron import next_fire_after, validate_cron
from ayb_jobs.errors import InvalidCron

ZONES = ["America/New_York", "Europe/London", "Australia/Sydney", "Europe/Berlin"]
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


def _item(low: int, high: int, names: list[str] | None = None, near: tuple[int, ...] = ()):
    """One list item: a value, a range a-b (a < b) or a-b/n; numbers or (if given) names."""

    def show(v: int, use_name: bool) -> str:
        if not names or not use_name or v == 7:  # 7 (Sunday) has no name of its own
            return str(v)
        return names[v if len(names) == 7 else v - 1]

    value = st.one_of(st.integers(low, high), st.sampled_from(near)) if near else st.integers(low, high)

    @st.composite
    def build(draw):
        use_name = draw(st.booleans()) if names else False
        kind = draw(st.sampled_from(["value", "value", "range", "range-step"]))
        a = draw(value)
        if kind == "value":
            return show(a, use_name)
        b = draw(st.integers(low, high).filter(lambda b: b != a))
        a, b = min(a, b), max(a, b)
        text = f"{show(a, use_name)}-{show(b, use_name)}"
        if kind == "range-step":
            text += f"/{draw(st.integers(1, high))}"
        return text

    return build()


def _field(low: int, high: int, names: list[str] | None = None, near: tuple[int, ...] = ()):
    star = st.one_of(st.just("*"), st.integers(1, high).map(lambda n: f"*/{n}"))
    items = st.lists(_item(low, high, names, near), min_size=1, max_size=3).map(",".join)
    return st.one_of(star, items, items)


# Hours near DST transitions (0-3 in all four zones) are favoured so that gaps and repeats are hit.
expressions = st.tuples(
    _field(0, 59, near=(0, 15, 30, 45)),
    _field(0, 23, near=(0, 1, 2, 3)),
    _field(1, 31),
    _field(1, 12, MONTHS),
    _field(0, 7, DAYS),
).map(" ".join)


@cache
def _transitions(zone_name: str, year: int) -> tuple[datetime, ...]:
    """UTC instants in `year` where the zone's offset changes (hourly scan, then to the minute)."""
    zone, found = ZoneInfo(zone_name), []
    t = datetime(year, 1, 1, tzinfo=UTC)
    while t.year == year:
        nxt = t + timedelta(hours=1)
        if t.astimezone(zone).utcoffset() != nxt.astimezone(zone).utcoffset():
            m = t
            while m.astimezone(zone).utcoffset() == t.astimezone(zone).utcoffset():
                m += timedelta(minutes=1)
            found.append(m)
        t = nxt
    return tuple(found)


@st.composite
def instants(draw, zone_name: str) -> datetime:
    year = draw(st.integers(1995, 2045))
    if draw(st.booleans()):
        transition = draw(st.sampled_from(_transitions(zone_name, year)))
        # Within a few hours of a transition, on whole minutes or odd seconds.
        return transition + timedelta(seconds=draw(st.integers(-4 * 3600, 4 * 3600)))
    start = datetime(year, 1, 1, tzinfo=UTC)
    return start + timedelta(seconds=draw(st.integers(0, 365 * 86400)))


def _cronsim_next(expr: str, zone: ZoneInfo, after: datetime) -> datetime:
    it = CronSim(expr, after.astimezone(zone))
    for _ in range(200):  # a fixed schedule may have up to 60 walls in the repeated hour
        fire = next(it).astimezone(UTC)
        if fire > after:
            return fire
    raise AssertionError(f"cronsim did not move past {after} for {expr!r}")


@st.composite
def cases(draw):
    expr = draw(expressions)
    zone_name = draw(st.sampled_from(ZONES))
    return expr, zone_name, draw(instants(zone_name))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(cases())
def test_next_fire_after_matches_cronsim(case):
    expr, zone_name, after = case
    try:
        validate_cron(expr)
    except InvalidCron:
        assume(False)  # can never fire (e.g. day 31 only in February): both refuse it
    zone = ZoneInfo(zone_name)
    assert next_fire_after(expr, zone_name, after) == _cronsim_next(expr, zone, after), (
        expr,
        zone_name,
        after.isoformat(),
    )
