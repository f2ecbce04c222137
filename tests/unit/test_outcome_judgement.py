"""What a retried outcome write that matched no row means, read from the job's row (outcomes.py)."""

from __future__ import annotations

import uuid

import pytest

from ayb_jobs.db.queries import SHUTDOWN_REASON, Claimed, ClaimRow
from ayb_jobs.models import JobState
from ayb_jobs.runtime.outcomes import Outcome, Settled, settled_by_earlier_try

CLAIM = Claimed(uuid.uuid4(), attempt=1, seq=7)


def outcome(kind: str, error: str | None = None) -> Outcome:
    return Outcome(kind, CLAIM, "t", error=error)  # type: ignore[arg-type]


@pytest.mark.parametrize(("o", "row", "expected"), [
    (outcome("complete"), ClaimRow(JobState.COMPLETED, 7, None), Settled.COMPLETED),
    (outcome("fail", "boom"), ClaimRow(JobState.QUEUED, 7, "boom"), Settled.QUEUED),
    (outcome("fail", "boom"), ClaimRow(JobState.FAILED, 7, "boom"), Settled.FAILED),
    (outcome("release"), ClaimRow(JobState.QUEUED, 7, SHUTDOWN_REASON), Settled.RELEASED),
    # claimed again since (here or elsewhere), or deleted
    (outcome("complete"), ClaimRow(JobState.COMPLETED, 8, None), Settled.LEASE_LOST),
    (outcome("complete"), ClaimRow(JobState.RUNNING, 8, None), Settled.LEASE_LOST),
    (outcome("complete"), None, Settled.LEASE_LOST),
    # recovered after the lease, not claimed again
    (outcome("fail", "boom"), ClaimRow(JobState.QUEUED, 7, "lease expired (worker w)"), Settled.LEASE_LOST),
    (outcome("release"), ClaimRow(JobState.FAILED, 7, "lease expired (worker w)"), Settled.LEASE_LOST),
    # the row cannot tell (e.g. an admin cancelled the requeued job meanwhile)
    (outcome("fail", "boom"), ClaimRow(JobState.CANCELED, 7, "boom"), Settled.UNCONFIRMED),
])
def test_a_retried_write_is_judged_from_the_row(o: Outcome, row: ClaimRow | None, expected: Settled) -> None:
    assert settled_by_earlier_try(o, row) is expected
