"""Retry backoff (docs/job-lifecycle.md): 5 s × 2^(attempt−1), capped at 300 s, plus jitter in [0, 1 s)."""

from __future__ import annotations

import random

import pytest

from ayb_jobs.backoff import backoff_seconds

ALMOST_ONE = 0.999_999


@pytest.mark.parametrize(("attempt", "base"), [(1, 5), (2, 10), (3, 20), (4, 40), (6, 160), (7, 300),
                                               (50, 300), (10**9, 300)])
def test_bounds_with_injected_randomness(attempt: int, base: float) -> None:
    assert backoff_seconds(attempt, rand=lambda: 0.0) == base
    assert base < backoff_seconds(attempt, rand=lambda: ALMOST_ONE) < base + 1


@pytest.mark.parametrize("attempt", [0, -3])
def test_attempts_below_one_count_as_the_first(attempt: int) -> None:
    assert backoff_seconds(attempt, rand=lambda: 0.5) == 5.5


def test_jitter_is_fractional_and_kept() -> None:
    assert backoff_seconds(2, rand=lambda: 0.123) == pytest.approx(10.123)


def test_default_randomness_stays_in_range_and_varies() -> None:
    random.seed(1)
    samples = [backoff_seconds(1) for _ in range(200)]
    assert all(5 <= s < 6 for s in samples)
    assert len(set(samples)) > 100
