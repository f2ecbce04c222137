"""The cron dialect: strict 5-field validation and DST-aware fire times.

croniter walks matching *wall-clock* times (naive, in the schedule's zone); this module maps each
wall time to real instants with Debian cron's DST rule, which croniter alone gets wrong:

- a fixed-time schedule (minute and hour fields not starting with `*`) whose wall time falls in a
  spring-forward gap fires once, at the first valid instant after the gap; in a repeated
  (fall-back) hour it fires only in the first pass;
- a schedule whose minute or hour field starts with `*` follows real time: its wall times inside a
  gap do not exist and are skipped, and in a repeated hour it fires in both passes.

Everything here is pure: no clock reads, no I/O beyond loading tz data.
"""

from __future__ import annotations

import math
import re
import threading
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from croniter import croniter

from ayb_jobs.errors import InvalidCron, InvalidInput, InvalidTimezone

MAX_CRON_LENGTH = 100
MAX_TIMEZONE_LENGTH = 50

MACROS: dict[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_FIELD_LIST = "minute hour day-of-month month day-of-week"
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# Longest month lengths (February 29 in leap years): decides whether a day-of-month can ever occur.
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_NUMBER = re.compile(r"[0-9]{1,4}")


@dataclass(frozen=True)
class _FieldSpec:
    name: str
    low: int
    high: int
    names: dict[str, int]

    @property
    def allowed(self) -> str:
        if self.name == "day-of-week":
            return "0-7 (0 and 7 = Sunday) or sun-sat"
        if self.name == "month":
            return "1-12 or jan-dec"
        return f"{self.low}-{self.high}"


_FIELDS = (
    _FieldSpec("minute", 0, 59, {}),
    _FieldSpec("hour", 0, 23, {}),
    _FieldSpec("day-of-month", 1, 31, {}),
    _FieldSpec("month", 1, 12, {n: i + 1 for i, n in enumerate(_MONTH_NAMES)}),
    _FieldSpec("day-of-week", 0, 7, {n: i for i, n in enumerate(_DAY_NAMES)}),
)

# Syntax of other cron dialects, matched on the upper-cased list item, with the reason it is refused.
_FOREIGN_SYNTAX = (
    (re.compile(r".*\?"), "'?' is not supported; use '*'"),
    (re.compile(r".*#"), "'#' (nth weekday of the month) is not supported"),
    (re.compile(r"H($|[(/])"), "'H' (hashed value) is not supported; pick a fixed value"),
    (re.compile(r"([0-9]*L|L-[0-9]+|LW)$"), "'L' (last day) is not supported"),
    (re.compile(r"[0-9]*W$"), "'W' (nearest weekday) is not supported"),
)


@dataclass(frozen=True)
class _Schedule:
    normalized: str
    croniter_expr: str  # numbers only: croniter never sees ranges, steps or names it could misread
    day_or: bool
    follows_real_time: bool  # minute or hour field starts with '*'


# ---------------------------------------------------------------------------------------------------
# validation


def validate_cron(expr: str) -> str:
    """Validate a cron expression; return it normalized (macro expanded, whitespace collapsed)."""
    if not isinstance(expr, str):
        raise InvalidCron("cron expression must be a string")
    return _compile(expr).normalized


@lru_cache(maxsize=1024)
def _compile(expr: str) -> _Schedule:
    if len(expr) > MAX_CRON_LENGTH:
        raise InvalidCron(f"cron expression is too long ({len(expr)} characters, max {MAX_CRON_LENGTH})")
    fields = _split(expr)
    normalized = " ".join(fields)

    def fail(reason: str) -> InvalidCron:
        return InvalidCron(f"invalid cron expression '{normalized}': {reason}")

    try:
        sets = [_parse_field(text, spec) for text, spec in zip(fields, _FIELDS, strict=True)]
    except _FieldError as e:
        raise fail(str(e)) from None
    minutes, hours, doms, months, dows = sets
    # Vixie/Debian: a field starting with '*' leaves the days to the other field (AND), else OR.
    day_or = not (fields[2].startswith("*") or fields[4].startswith("*"))
    if not day_or and not _some_day_exists(doms, months):
        raise fail(f"it can never fire: day-of-month {fields[2]} does not occur in month {fields[3]}")
    dom_text, dow_text = _join(doms, _FIELDS[2]), _join(dows, _FIELDS[4])
    if day_or and "*" in (dom_text, dow_text):
        # "any day of the month OR Mondays" is every day; croniter would read the '*' as AND.
        dom_text, dow_text, day_or = "*", "*", False
    croniter_expr = " ".join(
        (_join(minutes, _FIELDS[0]), _join(hours, _FIELDS[1]), dom_text, _join(months, _FIELDS[3]), dow_text)
    )
    return _Schedule(
        normalized=normalized,
        croniter_expr=croniter_expr,
        day_or=day_or,
        follows_real_time=fields[0].startswith("*") or fields[1].startswith("*"),
    )


def _split(expr: str) -> list[str]:
    fields = expr.split()
    if not fields:
        raise InvalidCron(
            "cron expression is empty; use 5 fields (minute hour day-of-month month day-of-week)"
        )
    if fields[0].startswith("@"):
        macro = _macro(fields[0])
        if len(fields) > 1:
            raise InvalidCron(f"macro '{fields[0]}' stands alone; remove '{' '.join(fields[1:])}'")
        return MACROS[macro].split()
    if len(fields) != 5:
        raise InvalidCron(
            f"invalid cron expression '{' '.join(fields)}': expected 5 fields ({_FIELD_LIST}), "
            f"got {len(fields)}; seconds and year fields are not supported"
        )
    return fields


def _macro(word: str) -> str:
    key = word.lower()
    if key in MACROS:
        return key
    supported = ", ".join(MACROS)
    if key == "@reboot":
        raise InvalidCron(
            f"@reboot is not supported (the scheduler has no boot event); use one of {supported}"
        )
    raise InvalidCron(f"unknown macro '{word}'; supported: {supported}")


class _FieldError(Exception):
    """A reason one field is invalid; _compile adds the expression."""


def _parse_field(text: str, spec: _FieldSpec) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        values |= _parse_item(item, spec)
    if spec.name == "day-of-week" and 7 in values:
        values = (values - {7}) | {0}
    return frozenset(values)


def _parse_item(item: str, spec: _FieldSpec) -> set[int]:
    if not item:
        raise _FieldError(f"{spec.name} has an empty list item (stray ',')")
    for pattern, reason in _FOREIGN_SYNTAX:
        if pattern.match(item.upper()):
            raise _FieldError(f"{spec.name} '{item}': {reason}")
    base, slash, step_text = item.partition("/")
    step = _parse_step(step_text, spec, item) if slash else 1
    if base == "*":
        return set(range(spec.low, spec.high + 1, step))
    if "-" in base:
        start_text, _, end_text = base.partition("-")
        start, end = _parse_value(start_text, spec), _parse_value(end_text, spec)
        if start == end:
            raise _FieldError(
                f"{spec.name} range '{base}' starts and ends at the same value; write '{start_text}'"
            )
        if start > end:
            hint = " (use 7 for Sunday at the end of a range, e.g. 5-7)" if spec.name == "day-of-week" else ""
            raise _FieldError(f"{spec.name} range '{base}' is reversed (start after end){hint}")
        return set(range(start, end + 1, step))
    value = _parse_value(base, spec)
    if slash:
        raise _FieldError(
            f"{spec.name} step '{item}' needs '*' or a range before '/': write '{base}-{spec.high}/{step}'"
        )
    return {value}


def _parse_step(text: str, spec: _FieldSpec, item: str) -> int:
    if not _NUMBER.fullmatch(text):
        raise _FieldError(f"{spec.name} step in '{item}' must be a number")
    step = int(text)
    if step == 0:
        raise _FieldError(f"{spec.name} step in '{item}' is 0; a step must be at least 1")
    if step > spec.high:
        raise _FieldError(f"{spec.name} step in '{item}' is {step}; it must be 1-{spec.high}")
    return step


def _parse_value(text: str, spec: _FieldSpec) -> int:
    if _NUMBER.fullmatch(text):
        value = int(text)
        if not spec.low <= value <= spec.high:
            raise _FieldError(
                f"{spec.name} value {value} is out of range; {spec.name} must be {spec.allowed}"
            )
        return value
    if text.lower() in spec.names:
        return spec.names[text.lower()]
    if not text:
        raise _FieldError(f"{spec.name} has an incomplete range (a value is missing around '-')")
    raise _FieldError(f"{spec.name} value '{text}' is not valid; {spec.name} must be {spec.allowed}")


def _some_day_exists(doms: frozenset[int], months: frozenset[int]) -> bool:
    # With AND semantics the weekday never blocks: every date falls on every weekday over the years.
    return min(doms) <= max(_DAYS_IN_MONTH[m - 1] for m in months)


def _join(values: frozenset[int], spec: _FieldSpec) -> str:
    full = range(spec.low, 7) if spec.name == "day-of-week" else range(spec.low, spec.high + 1)
    if values.issuperset(full):
        return "*"
    return ",".join(str(v) for v in sorted(values))


# ---------------------------------------------------------------------------------------------------
# timezones


def validate_timezone(name: str) -> zoneinfo.ZoneInfo:
    """Return the ZoneInfo for an IANA name; `Local`, empty and unknown names are refused."""
    if not isinstance(name, str):
        raise InvalidTimezone("timezone must be a string (an IANA name such as 'UTC' or 'Europe/Berlin')")
    if len(name) > MAX_TIMEZONE_LENGTH:
        raise InvalidTimezone(f"timezone is too long ({len(name)} characters, max {MAX_TIMEZONE_LENGTH})")
    return _zone_by_name(name)


@lru_cache(maxsize=256)
def _zone_by_name(name: str) -> zoneinfo.ZoneInfo:
    if not name.strip():
        raise InvalidTimezone("timezone is empty; use an IANA name such as 'UTC' or 'Europe/Berlin'")
    if name.lower() in ("local", "localtime"):
        raise InvalidTimezone(
            f"timezone '{name}' is not allowed: the local zone differs between machines; "
            "use an IANA name such as 'UTC' or 'Europe/Berlin'"
        )
    if name not in _iana_names():
        raise InvalidTimezone(f"unknown timezone '{name}'; use an IANA name such as 'UTC' or 'Europe/Berlin'")
    return zoneinfo.ZoneInfo(name)


@lru_cache(maxsize=1)
def _iana_names() -> frozenset[str]:
    # Membership (not ZoneInfo() success) so that paths like 'posixrules', 'right/UTC' and
    # directories are refused and only canonical, case-exact IANA names pass.
    return frozenset(zoneinfo.available_timezones())


def _zone(tz: str | zoneinfo.ZoneInfo) -> zoneinfo.ZoneInfo:
    return tz if isinstance(tz, zoneinfo.ZoneInfo) else validate_timezone(tz)


# ---------------------------------------------------------------------------------------------------
# fire times

_ONE_SECOND = timedelta(seconds=1)
_thread_state = threading.local()


class BeyondCalendar(InvalidInput):
    """The next fire time lies outside the years 1-9999 that Python's calendar can represent."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="after")


def next_fire_after(expr: str, tz: str | zoneinfo.ZoneInfo, after: datetime) -> datetime:
    """The first fire time strictly after `after` (aware, any zone), as an aware UTC datetime.

    Raises BeyondCalendar when that time (or `after` in the schedule's zone) is outside years 1-9999.
    """
    validate_cron(expr)  # cached after the first call; raises InvalidCron
    schedule = _compile(expr)
    zone = _zone(tz)
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError("next_fire_after needs a timezone-aware 'after'")
    try:
        return _next_fire(schedule, zone, after)
    except (OverflowError, ValueError) as exc:
        # datetime arithmetic past year 9999 or before year 1 (croniter raises "year 10000 is out of
        # range", zone conversion OverflowError); any other ValueError is a bug and goes on.
        if isinstance(exc, ValueError) and "out of range" not in str(exc):
            raise
        raise BeyondCalendar(
            f"the fire times of '{expr}' in {zone.key} after {after.isoformat()} fall outside the years "
            "1-9999 that can be represented; choose an 'after' between years 2 and 9998") from None


def _next_fire(schedule: _Schedule, zone: zoneinfo.ZoneInfo, after: datetime) -> datetime:
    local = after.astimezone(zone)
    wall = local.replace(tzinfo=None)
    off_first, off_second = _offsets(wall, zone)
    if off_first == off_second:
        return _next_first_pass(schedule, zone, wall)
    return _next_around_repeated_hour(schedule, zone, wall, local.fold, off_first, off_second)


def next_fire_times(expr: str, tz: str | zoneinfo.ZoneInfo, after: datetime, count: int) -> list[datetime]:
    """The next `count` fire times after `after`, in UTC, strictly increasing; fewer if the calendar
    ends (year 9999) first, BeyondCalendar if not even one exists."""
    zone = _zone(tz)
    times: list[datetime] = []
    for _ in range(count):
        try:
            after = next_fire_after(expr, zone, after)
        except BeyondCalendar:
            if not times:
                raise
            break  # the calendar ends (year 9999): the times that exist, fewer than asked
        times.append(after)
    return times


def _next_first_pass(schedule: _Schedule, zone: zoneinfo.ZoneInfo, start: datetime) -> datetime:
    """Earliest fire among matching wall times after `start`, each at its first (or only) instant."""
    while True:
        wall = _next_wall(schedule, start)
        off_first, off_second = _offsets(wall, zone)
        if off_first >= off_second:  # the wall time exists (once, or twice in a fall-back)
            return _instant(wall, off_first)
        # Spring-forward gap: offset before is off_first, after is off_second.
        transition = _transition(_instant(wall, off_second), _instant(wall, off_first), zone, off_first)
        if not schedule.follows_real_time:
            return transition
        start = _wall(transition, off_second) - _ONE_SECOND  # walls from the end of the gap on


def _next_around_repeated_hour(
    schedule: _Schedule,
    zone: zoneinfo.ZoneInfo,
    wall: datetime,
    fold: int,
    off_first: timedelta,
    off_second: timedelta,
) -> datetime:
    """Next fire when `after` lies in a repeated hour, whose walls [r0, r1) occur twice."""
    second_pass_start = _transition(_instant(wall, off_first), _instant(wall, off_second), zone, off_first)
    r0 = _wall(second_pass_start, off_second)
    r1 = r0 + (off_first - off_second)
    # In the second pass, first-pass instants of the repeated walls are already past.
    first = _next_first_pass(schedule, zone, r1 - _ONE_SECOND if fold else wall)
    if not schedule.follows_real_time:
        return first
    candidate = _next_wall(schedule, wall if fold else r0 - _ONE_SECOND)
    if candidate < r1:
        return min(first, _instant(candidate, off_second))
    return first


def _next_wall(schedule: _Schedule, after_wall: datetime) -> datetime:
    """First matching wall-clock minute strictly after `after_wall` (naive)."""
    iterators: dict[tuple[str, bool], croniter] = _thread_state.__dict__.setdefault("iterators", {})
    key = (schedule.croniter_expr, schedule.day_or)
    walls = iterators.get(key)
    if walls is None:
        # Building a croniter costs ~100 µs, a get_next ~30 µs: keep one per expression and thread.
        if len(iterators) >= 256:
            iterators.clear()
        walls = croniter(schedule.croniter_expr, datetime(2000, 1, 1), ret_type=datetime, day_or=key[1])
        iterators[key] = walls
    return walls.get_next(datetime, start_time=after_wall.replace(second=0, microsecond=0))


def _offsets(wall: datetime, zone: zoneinfo.ZoneInfo) -> tuple[timedelta, timedelta]:
    """UTC offsets of a wall time at fold 0 and 1: equal normally, first > second in a repeated
    hour, first < second in a spring-forward gap (PEP 495)."""
    first = wall.replace(tzinfo=zone, fold=0).utcoffset()
    second = wall.replace(tzinfo=zone, fold=1).utcoffset()
    assert first is not None and second is not None
    return first, second


def _instant(wall: datetime, offset: timedelta) -> datetime:
    return (wall - offset).replace(tzinfo=UTC)


def _wall(instant: datetime, offset: timedelta) -> datetime:
    return (instant + offset).replace(tzinfo=None)


def _transition(low: datetime, high: datetime, zone: zoneinfo.ZoneInfo, before: timedelta) -> datetime:
    """The first instant in (low, high] whose offset is not `before` (tz data has whole seconds)."""
    lo, hi = math.floor(low.timestamp()), math.ceil(high.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, zone).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return datetime.fromtimestamp(hi, UTC)
