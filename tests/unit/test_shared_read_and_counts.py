"""The shared read behind /metrics and /jobs/stats, the count estimator, and metric collectors."""

from __future__ import annotations

import asyncio

import pytest

from ayb_jobs.api.snapshot import SharedRead
from ayb_jobs.db.queries import estimate_counts
from ayb_jobs.metrics import Metrics


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_concurrent_readers_share_one_read() -> None:
    release = asyncio.Event()
    calls = 0

    async def read() -> int:
        nonlocal calls
        calls += 1
        await release.wait()
        return calls

    shared = SharedRead(read)
    readers = [asyncio.ensure_future(shared.get(max_age_s=5)) for _ in range(50)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*readers) == [1] * 50
    assert calls == 1


async def test_max_age_zero_never_answers_from_a_read_started_before_the_call() -> None:
    clock = Clock()
    gate = asyncio.Event()
    values = iter([10, 20])

    async def read() -> int:
        await gate.wait()
        return next(values)

    shared = SharedRead(read, clock=clock)
    first = asyncio.ensure_future(shared.get(max_age_s=0))
    await asyncio.sleep(0)
    clock.now = 1.0  # this caller asks after the first read began: it must get the next one
    second = asyncio.ensure_future(shared.get(max_age_s=0))
    await asyncio.sleep(0)
    gate.set()
    assert await first == 10
    assert await second == 20


async def test_a_cached_value_is_reused_until_it_is_too_old() -> None:
    clock = Clock()
    values = iter([1, 2])

    async def read() -> int:
        return next(values)

    shared = SharedRead(read, clock=clock)
    assert await shared.get(max_age_s=5) == 1
    clock.now = 4.9
    assert await shared.get(max_age_s=5) == 1
    clock.now = 5.1
    assert await shared.get(max_age_s=5) == 2
    assert shared.reads == 2


async def test_a_failed_read_reaches_every_waiter_and_the_next_call_reads_again() -> None:
    outcomes = iter([RuntimeError("down"), 7])

    async def read() -> int:
        await asyncio.sleep(0)
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    shared = SharedRead(read)
    results = await asyncio.gather(shared.get(1), shared.get(1), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert await shared.get(1) == 7


async def test_none_is_a_value_that_can_be_shared() -> None:
    calls = 0

    async def ready() -> None:
        nonlocal calls
        calls += 1

    shared = SharedRead(ready)
    assert await shared.get(10) is None
    assert await shared.get(10) is None
    assert calls == 1


async def test_a_caller_that_goes_away_does_not_cancel_the_others_read() -> None:
    gate = asyncio.Event()

    async def read() -> str:
        await gate.wait()
        return "ok"

    shared = SharedRead(read)
    leaving = asyncio.ensure_future(shared.get(5))
    staying = asyncio.ensure_future(shared.get(5))
    await asyncio.sleep(0)
    leaving.cancel()
    gate.set()
    assert await staying == "ok"


# --- estimates ---------------------------------------------------------------------------------------

EXACT = {"due": 3, "scheduled": 1, "running": 2, "completed": 10, "failed": 1, "canceled": 0}


def test_counts_below_the_cap_are_exact() -> None:
    assert estimate_counts(EXACT, cap=1000, live_rows=0, index_rows={}) == EXACT


def test_one_capped_state_gets_the_live_rows_not_counted_exactly() -> None:
    exact = {**EXACT, "completed": 1000}
    out = estimate_counts(exact, cap=1000, live_rows=300_007.0, index_rows={})
    assert out == {**EXACT, "completed": 300_000}


def test_several_capped_states_share_the_rest_by_their_index_estimates() -> None:
    exact = {**EXACT, "completed": 1000, "failed": 1000}
    out = estimate_counts(exact, cap=1000, live_rows=110_006.0,
                          index_rows={"completed": 100_000.0, "failed": 10_000.0})
    assert out["completed"] == 100_000 and out["failed"] == 10_000
    assert {k: out[k] for k in ("due", "running")} == {"due": 3, "running": 2}


def test_stale_statistics_never_bring_an_estimate_below_the_exact_lower_bound() -> None:
    exact = {**EXACT, "completed": 1000}
    out = estimate_counts(exact, cap=1000, live_rows=0.0, index_rows={"completed": 0.0})
    assert out["completed"] == 1000


# --- collectors --------------------------------------------------------------------------------------


def test_collectors_add_their_lines_and_a_failing_one_is_left_out() -> None:
    m = Metrics()

    def pg_health() -> list[str]:
        return ["# HELP ayb_jobs_pg_dead_tuples Dead tuples.", "# TYPE ayb_jobs_pg_dead_tuples gauge",
                'ayb_jobs_pg_dead_tuples{table="_ayb_jobs"} 12']

    def broken() -> list[str]:
        raise RuntimeError("no data yet")

    m.add_collector(pg_health)
    m.add_collector(broken)
    text = m.render(None)
    assert 'ayb_jobs_pg_dead_tuples{table="_ayb_jobs"} 12\n' in text
    assert "ayb_jobs_in_flight 0" in text and text.endswith("\n")


METRIC_NAMES = [
    "ayb_jobs_claimed_total", "ayb_jobs_completed_total", "ayb_jobs_failed_total", "ayb_jobs_retried_total",
    "ayb_jobs_recovered_total", "ayb_jobs_released_total", "ayb_jobs_lease_lost_total",
    "ayb_jobs_schedule_fires_total", "ayb_jobs_db_errors_total", "ayb_jobs_job_duration_seconds",
    "ayb_jobs_queue_depth", "ayb_jobs_scheduled_jobs", "ayb_jobs_oldest_due_age_seconds",
    "ayb_jobs_in_flight",
]


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_every_metric_name_is_still_exported(name) -> None:
    assert f"# TYPE {name} " in Metrics().render(None)
