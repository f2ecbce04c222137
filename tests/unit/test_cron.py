"""The cron dialect and DST rules of docs/cron.md, table-driven."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from ayb_jobs.cron import MACROS, next_fire_after, next_fire_times, validate_cron, validate_timezone
from ayb_jobs.errors import InvalidCron, InvalidInput, InvalidTimezone

NY, LONDON, SYDNEY = "America/New_York", "Europe/London", "Australia/Sydney"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def fires_between(expr: str, tz: str, start: str, end: str) -> list[str]:
    """UTC fire instants in [start, end), as 'YYYY-MM-DD HH:MM'."""
    t, out = utc(start) - timedelta(microseconds=1), []
    while (t := next_fire_after(expr, tz, t)) < utc(end):
        out.append(t.strftime("%Y-%m-%d %H:%M"))
    return out


def local_labels(expr: str, tz: str, start: str, end: str) -> list[str]:
    return [utc(f).astimezone(ZoneInfo(tz)).strftime("%H:%M %Z") for f in fires_between(expr, tz, start, end)]


# ---------------------------------------------------------------------------------------------------
# The DST table of docs/cron.md: every row, as the UTC instants fired across the transition day.

DST_TABLE = [
    pytest.param(
        "30 2 * * *", NY, "2026-03-07 00:00", "2026-03-10 00:00",
        ["2026-03-07 07:30", "2026-03-08 07:00", "2026-03-09 06:30"],
        id="spring gap: 02:30 missing -> once at 03:00 EDT",
    ),
    pytest.param(
        "30 1 * * *", NY, "2026-10-31 00:00", "2026-11-03 00:00",
        ["2026-10-31 05:30", "2026-11-01 05:30", "2026-11-02 06:30"],
        id="NY fall: once at 01:30 EDT, next 2026-11-02 01:30 EST",
    ),
    pytest.param(
        "30 1 * * *", LONDON, "2026-10-24 00:00", "2026-10-27 00:00",
        ["2026-10-24 00:30", "2026-10-25 00:30", "2026-10-26 01:30"],
        id="London fall: 01:30 once",
    ),
    pytest.param(
        "0 * * * *", LONDON, "2026-10-24 22:00", "2026-10-25 04:00",
        ["2026-10-24 22:00", "2026-10-24 23:00", "2026-10-25 00:00", "2026-10-25 01:00",
         "2026-10-25 02:00", "2026-10-25 03:00"],
        id="London fall hourly: every real hour, 01:00 BST and 01:00 GMT",
    ),
    pytest.param(
        "0 * * * *", LONDON, "2026-03-28 22:00", "2026-03-29 04:00",
        ["2026-03-28 22:00", "2026-03-28 23:00", "2026-03-29 00:00", "2026-03-29 01:00",
         "2026-03-29 02:00", "2026-03-29 03:00"],
        id="London spring hourly: every real hour",
    ),
    pytest.param(
        "*/15 1 * * *", NY, "2026-11-01 00:00", "2026-11-02 00:00",
        ["2026-11-01 05:00", "2026-11-01 05:15", "2026-11-01 05:30", "2026-11-01 05:45",
         "2026-11-01 06:00", "2026-11-01 06:15", "2026-11-01 06:30", "2026-11-01 06:45"],
        id="NY fall */15 1: both passes",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("expr", "tz", "start", "end", "expected"), DST_TABLE)
def test_spec_dst_table(expr, tz, start, end, expected):
    assert fires_between(expr, tz, start, end) == expected


def test_london_fall_hourly_fires_local_one_oclock_twice():
    labels = local_labels("0 * * * *", LONDON, "2026-10-24 23:00", "2026-10-25 03:00")
    assert labels == ["00:00 BST", "01:00 BST", "01:00 GMT", "02:00 GMT"]


def test_london_spring_hourly_never_names_the_missing_hour():
    labels = local_labels("0 * * * *", LONDON, "2026-03-28 23:00", "2026-03-29 03:00")
    assert labels == ["23:00 GMT", "00:00 GMT", "02:00 BST", "03:00 BST"]


def test_spring_gap_fires_at_first_valid_instant_in_local_time():
    assert local_labels("30 2 * * *", NY, "2026-03-08 00:00", "2026-03-09 00:00") == ["03:00 EDT"]


MORE_DST = [
    # @hourly is "0 * * * *": its hour field starts with '*', so it follows real time.
    pytest.param("@hourly", NY, "2026-11-01 04:00", "2026-11-01 08:00",
                 ["2026-11-01 04:00", "2026-11-01 05:00", "2026-11-01 06:00", "2026-11-01 07:00"],
                 id="@hourly fall: both passes"),
    # Several fixed walls in one gap collapse into one fire at the end of the gap (and 03:00 too).
    pytest.param("0,30 2,3 * * *", NY, "2026-03-08 00:00", "2026-03-09 00:00",
                 ["2026-03-08 07:00", "2026-03-08 07:30"], id="fixed walls in gap fire once"),
    # Debian: a schedule with '*' in minute or hour follows real time, so walls in a gap are skipped.
    pytest.param("*/15 2 * * *", NY, "2026-03-08 00:00", "2026-03-10 00:00",
                 ["2026-03-09 06:00", "2026-03-09 06:15", "2026-03-09 06:30", "2026-03-09 06:45"],
                 id="real-time schedule skips the gap"),
    pytest.param("30 * * * *", LONDON, "2026-03-29 00:00", "2026-03-29 03:00",
                 ["2026-03-29 00:30", "2026-03-29 01:30", "2026-03-29 02:30"],
                 id="hourly at :30 stays an hour apart over the gap"),
    # Fixed hour range with fixed minute: first pass only.
    pytest.param("0 1-3 * * *", NY, "2026-11-01 04:00", "2026-11-01 10:00",
                 ["2026-11-01 05:00", "2026-11-01 07:00", "2026-11-01 08:00"], id="fixed range fall"),
    # Southern hemisphere: Sydney springs forward 02:00 -> 03:00 on 2026-10-04 (16:00Z Oct 3).
    pytest.param("30 2 * * *", SYDNEY, "2026-10-02 00:00", "2026-10-05 00:00",
                 ["2026-10-02 16:30", "2026-10-03 16:00", "2026-10-04 15:30"], id="Sydney spring gap"),
    # Sydney falls back 03:00 -> 02:00 on 2026-04-05 (16:00Z Apr 4).
    pytest.param("30 2 * * *", SYDNEY, "2026-04-03 00:00", "2026-04-06 00:00",
                 ["2026-04-03 15:30", "2026-04-04 15:30", "2026-04-05 16:30"], id="Sydney fall once"),
]  # fmt: skip


@pytest.mark.parametrize(("expr", "tz", "start", "end", "expected"), MORE_DST)
def test_dst_rule_beyond_the_table(expr, tz, start, end, expected):
    assert fires_between(expr, tz, start, end) == expected


def test_fixed_schedule_asked_during_second_pass_waits_for_next_day():
    second_pass = utc("2026-11-01 06:10")  # 01:10 EST, the repeated hour
    assert next_fire_after("30 1 * * *", NY, second_pass) == utc("2026-11-02 06:30")


def test_only_real_time_schedules_reach_the_second_pass():
    first_pass_end = utc("2026-11-01 05:50")  # 01:50 EDT; next wall match 01:00 EST
    assert next_fire_after("0 1 * * *", NY, first_pass_end) == utc("2026-11-02 06:00")
    assert next_fire_after("*/20 1 * * *", NY, first_pass_end) == utc("2026-11-01 06:00")


# ---------------------------------------------------------------------------------------------------
# next_fire_after / next_fire_times contract


def test_next_fire_is_strictly_after_and_in_utc():
    fire = next_fire_after("0 9 * * *", "Europe/Berlin", utc("2026-06-01 07:00"))  # 09:00 CEST exactly
    assert fire == utc("2026-06-02 07:00")
    assert fire.tzinfo is UTC


def test_after_may_be_in_any_zone():
    after = datetime(2026, 6, 1, 3, 0, tzinfo=timezone(timedelta(hours=-4)))  # 07:00Z
    assert next_fire_after("0 9 * * *", ZoneInfo("Europe/Berlin"), after) == utc("2026-06-02 07:00")


def test_seconds_in_after_round_up_to_next_minute():
    assert next_fire_after("* * * * *", "UTC", utc("2026-01-01 10:00:30")) == utc("2026-01-01 10:01")


def test_naive_after_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        next_fire_after("* * * * *", "UTC", datetime(2026, 1, 1))


def test_next_fire_times_are_strictly_increasing():
    times = next_fire_times("*/20 1 * * *", NY, utc("2026-11-01 04:00"), 8)
    assert times == sorted(set(times)) and len(times) == 8
    assert [t.strftime("%H:%M") for t in times] == [
        "05:00", "05:20", "05:40", "06:00", "06:20", "06:40", "06:00", "06:20",  # then Nov 2, EST
    ]  # fmt: skip
    assert next_fire_times("@daily", "UTC", utc("2026-01-01 00:00"), 0) == []


def test_next_fire_after_validates_its_inputs():
    with pytest.raises(InvalidCron):
        next_fire_after("0 12-12 * * *", "UTC", utc("2026-01-01 00:00"))
    with pytest.raises(InvalidTimezone):
        next_fire_after("* * * * *", "Local", utc("2026-01-01 00:00"))


def test_sparse_schedule_leap_day_on_a_sunday():
    # day-of-week starts with '*', so both day fields must match: Feb 29 falling on a Sunday.
    assert next_fire_after("0 0 29 2 */7", "UTC", utc("2021-01-01 00:00")) == utc("2032-02-29 00:00")


# ---------------------------------------------------------------------------------------------------
# dialect: accepted forms


@pytest.mark.parametrize(("macro", "expansion"), [
    ("@yearly", "0 0 1 1 *"), ("@annually", "0 0 1 1 *"), ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"), ("@daily", "0 0 * * *"), ("@midnight", "0 0 * * *"), ("@hourly", "0 * * * *"),
])  # fmt: skip
def test_macros_expand(macro, expansion):
    assert MACROS[macro] == expansion
    assert validate_cron(macro) == expansion
    assert validate_cron(f"  {macro.upper()} ") == expansion


def test_whitespace_is_collapsed():
    assert validate_cron("  */5\t0  * *   mon-fri ") == "*/5 0 * * mon-fri"


def _days(expr: str, start: str, count: int) -> list[str]:
    return [t.strftime("%m-%d %a") for t in next_fire_times(expr, "UTC", utc(start), count)]


def test_dom_and_dow_both_restricted_fire_on_either():
    # 13th of the month OR any Friday.
    assert _days("0 0 13 * 5", "2026-01-01 00:00", 4) == ["01-02 Fri", "01-09 Fri", "01-13 Tue", "01-16 Fri"]


def test_dom_starting_with_star_means_both_must_match():
    # Odd days that are also Fridays (Vixie rule: '*/2' starts with '*').
    assert _days("0 0 */2 * 5", "2026-01-01 00:00", 3) == ["01-09 Fri", "01-23 Fri", "02-13 Fri"]


def test_dow_starting_with_star_means_both_must_match():
    # 13th that is also a Sunday ('*/7' = Sunday).
    assert _days("0 0 13 * */7", "2026-01-01 00:00", 2) == ["09-13 Sun", "12-13 Sun"]


def test_full_dom_range_or_weekday_is_every_day():
    assert _days("0 0 1-31 * 1", "2026-01-01 00:00", 3) == ["01-02 Fri", "01-03 Sat", "01-04 Sun"]


def test_single_restricted_day_field():
    assert _days("0 0 * * 1", "2026-01-01 00:00", 2) == ["01-05 Mon", "01-12 Mon"]
    assert _days("0 0 13 * *", "2026-01-01 00:00", 2) == ["01-13 Tue", "02-13 Fri"]


@pytest.mark.parametrize(("a", "b"), [
    ("0 0 * * 7", "0 0 * * 0"), ("0 0 * * sun", "0 0 * * 0"), ("0 0 * * SUN", "0 0 * * 7"),
    ("0 0 * * mon-fri", "0 0 * * 1-5"), ("0 0 * * 5-7", "0 0 * * fri,sat,sun"),
    ("0 0 1 jan *", "0 0 1 1 *"), ("0 0 1 Jun-Aug/2 *", "0 0 1 6,8 *"), ("0 0 * * 1-7/2", "0 0 * * 0,1,3,5"),
])  # fmt: skip
def test_names_and_seven_mean_the_same_as_numbers(a, b):
    assert validate_cron(a) == a
    assert next_fire_times(a, "UTC", utc("2026-01-01 00:00"), 20) == next_fire_times(
        b, "UTC", utc("2026-01-01 00:00"), 20
    )


@pytest.mark.parametrize("expr", [
    "* * * * *", "0,15,30,45 */2 1-15 * *", "5-55/10 9-17 * 1-6 mon-fri", "0 0 29 2 *", "0 0 31 1,2 *",
    "59 23 31 12 6", "0 0 31 2 1",  # OR: the weekday still fires in February
])  # fmt: skip
def test_valid_expressions_pass(expr):
    assert validate_cron(expr) == expr


# ---------------------------------------------------------------------------------------------------
# dialect: rejected forms, each with the reason in the message

REJECTED = [
    ("", "empty"),
    ("   ", "empty"),
    ("* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"),
    ("0 * * * * *", "got 6; seconds and year fields are not supported"),
    ("0 0 0 * * * 2026", "got 7"),
    ("@reboot", "@reboot is not supported"),
    ("@fortnightly", "unknown macro '@fortnightly'"),
    ("@daily 5", "stands alone"),
    ("0 0 L * *", "'L' (last day) is not supported"),
    ("0 0 * * 5L", "'L' (last day) is not supported"),
    ("0 0 15W * *", "'W' (nearest weekday) is not supported"),
    ("0 0 LW * *", "'L' (last day) is not supported"),
    ("0 0 * * 1#2", "'#' (nth weekday of the month) is not supported"),
    ("0 0 ? * 1", "'?' is not supported"),
    ("H * * * *", "'H' (hashed value) is not supported"),
    ("H(0-29)/5 * * * *", "'H' (hashed value) is not supported"),
    ("0 12-12 * * *", "hour range '12-12' starts and ends at the same value"),
    ("0 0 * * mon-mon", "day-of-week range 'mon-mon' starts and ends at the same value"),
    ("0 5-3 * * *", "hour range '5-3' is reversed"),
    ("0 0 * * mon-sun", "use 7 for Sunday"),
    ("*/0 * * * *", "step in '*/0' is 0"),
    ("0 0-12/0 * * *", "is 0"),
    ("*/60 * * * *", "minute step in '*/60' is 60; it must be 1-59"),
    ("5/15 * * * *", "needs '*' or a range before '/'"),
    ("60 * * * *", "minute value 60 is out of range; minute must be 0-59"),
    ("0 24 * * *", "hour value 24 is out of range; hour must be 0-23"),
    ("0 0 0 * *", "day-of-month value 0 is out of range; day-of-month must be 1-31"),
    ("0 0 32 * *", "day-of-month must be 1-31"),
    ("0 0 * 13 *", "month value 13 is out of range; month must be 1-12 or jan-dec"),
    ("0 0 * 0 *", "month must be 1-12"),
    ("0 0 * * 8", "day-of-week value 8 is out of range; day-of-week must be 0-7"),
    ("0 0-30 * * *", "hour value 30 is out of range"),
    ("0 0 31 2 *", "can never fire"),
    ("0 0 30 2 *", "can never fire"),
    ("0 0 31 2,4,6 *", "can never fire"),
    ("0 0 30,31 feb */2", "can never fire"),
    ("1,,2 * * * *", "empty list item"),
    ("1, * * * *", "empty list item"),
    ("-5 * * * *", "incomplete range"),
    ("0 0 * foo *", "month value 'foo' is not valid"),
    ("0 0 * * monday", "day-of-week value 'monday' is not valid"),
    ("0 0 * mon *", "month value 'mon' is not valid"),
    ("0 0 * * jan", "day-of-week value 'jan' is not valid"),
    ("²  * * * *", "minute value '²' is not valid"),
    ("0 0 * * " + "1," * 50 + "2", "too long"),
]


@pytest.mark.parametrize(("expr", "fragment"), REJECTED)
def test_rejected_forms_say_why(expr, fragment):
    with pytest.raises(InvalidCron) as info:
        validate_cron(expr)
    assert fragment in info.value.message
    assert info.value.field == "cronExpr"
    assert isinstance(info.value, InvalidInput)


def test_n_to_n_range_is_refused_not_read_as_every_hour():
    with pytest.raises(InvalidCron, match="12-12"):
        validate_cron("0 12-12 * * *")


def test_length_limit_is_100_characters():
    at_limit = "0 0 * * " + ",".join(["1"] * 46)
    assert len(at_limit) == 99
    validate_cron(at_limit + " ")
    with pytest.raises(InvalidCron, match="101 characters, max 100"):
        validate_cron(at_limit + "  ")


def test_non_string_is_refused():
    with pytest.raises(InvalidCron, match="must be a string"):
        validate_cron(None)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------
# timezones


@pytest.mark.parametrize("name", ["UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Asia/Kolkata"])
def test_iana_names_are_accepted(name):
    zone = validate_timezone(name)
    assert isinstance(zone, ZoneInfo) and zone.key == name


@pytest.mark.parametrize(("name", "fragment"), [
    ("", "timezone is empty"),
    ("   ", "timezone is empty"),
    ("Local", "'Local' is not allowed"),
    ("localtime", "is not allowed"),
    ("Mars/Olympus_Mons", "unknown timezone 'Mars/Olympus_Mons'"),
    ("europe/berlin", "unknown timezone"),
    ("Europe/Berlin ", "unknown timezone"),
    ("America", "unknown timezone"),
    ("../etc/passwd", "unknown timezone"),
    ("/etc/localtime", "unknown timezone"),
    ("posixrules", "unknown timezone"),
    ("A" * 51, "too long (51 characters, max 50)"),
    (None, "must be a string"),
])  # fmt: skip
def test_bad_timezones_are_refused(name, fragment):
    with pytest.raises(InvalidTimezone) as info:
        validate_timezone(name)
    assert fragment in info.value.message
    assert info.value.field == "timezone"
