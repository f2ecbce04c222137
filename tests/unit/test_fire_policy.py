"""The overlap and misfire decisions as pure functions: which due slots run, which are skipped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from ayb_jobs import fire_policy
from ayb_jobs.db.queries import DueSchedule

T0 = datetime(2030, 1, 7, 10, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def due(expr: str = "* * * * *", first: datetime = T0, **policy) -> DueSchedule:
    return DueSchedule(UUID(int=1), "s", "t", expr, "UTC", first, T0, **policy)


def outcomes(plan) -> list[str]:
    return [d for _, d in plan.decisions]


def test_an_on_time_slot_is_one_enqueue_and_the_next_slot_follows_now() -> None:
    plan = fire_policy.plan(due(), T0 + timedelta(seconds=0.5))
    assert plan.decisions == [(T0, "enqueue")] and plan.next_run_at == T0 + MIN


@pytest.mark.parametrize(("misfire", "expected"), [
    ("all", ["enqueue"] * 3),
    ("skip", ["skipped_misfire"] * 3),
    ("coalesce", ["skipped_misfire", "skipped_misfire", "enqueue"]),
])
def test_three_missed_slots(misfire: str, expected: list[str]) -> None:
    plan = fire_policy.plan(due(misfire=misfire), T0 + 2 * MIN + timedelta(seconds=30))
    assert [s for s, _ in plan.decisions] == [T0, T0 + MIN, T0 + 2 * MIN]
    assert outcomes(plan) == expected and plan.next_run_at == T0 + 3 * MIN


def test_the_grace_decides_whether_the_newest_slot_is_on_time() -> None:
    late = T0 + timedelta(seconds=fire_policy.MISFIRE_GRACE_S)
    assert outcomes(fire_policy.plan(due(misfire="skip"), late)) == ["enqueue"]
    assert outcomes(fire_policy.plan(due(misfire="skip"), late + timedelta(seconds=1))) == ["skipped_misfire"]


def test_misfire_all_is_bounded_by_misfire_max_keeping_the_newest() -> None:
    plan = fire_policy.plan(due(misfire="all", misfire_max=2), T0 + 4 * MIN + timedelta(seconds=30))
    assert outcomes(plan) == ["skipped_misfire"] * 3 + ["enqueue"] * 2


def test_misfire_all_with_overlap_skip_enqueues_only_the_oldest() -> None:
    plan = fire_policy.plan(due(misfire="all", overlap="skip"), T0 + 2 * MIN + timedelta(seconds=30))
    assert outcomes(plan) == ["enqueue", "skipped_overlap", "skipped_overlap"]


def test_a_hand_set_next_run_that_is_no_cron_slot_is_still_a_slot() -> None:
    odd = T0 + timedelta(seconds=17)
    plan = fire_policy.plan(due(first=odd), odd + timedelta(seconds=1))
    assert plan.decisions == [(odd, "enqueue")] and plan.next_run_at == T0 + MIN


def test_a_week_of_downtime_considers_only_the_newest_slots_quickly() -> None:
    now = T0 + timedelta(days=7, seconds=30)
    slots = fire_policy.due_slots("* * * * *", "UTC", T0, now)
    assert len(slots) == fire_policy.MAX_SLOTS and slots[-1] == T0 + timedelta(days=7)
    assert slots == [slots[-1] - i * MIN for i in range(len(slots) - 1, -1, -1)]


def test_a_sparse_schedule_walks_from_its_first_slot() -> None:
    slots = fire_policy.due_slots("0 0 1 1 *", "UTC", datetime(2025, 1, 1, tzinfo=UTC), T0)
    assert slots == [datetime(y, 1, 1, tzinfo=UTC) for y in range(2025, 2031)]


def test_nothing_is_due_before_the_first_slot() -> None:
    assert fire_policy.due_slots("* * * * *", "UTC", T0, T0 - timedelta(seconds=1)) == []
