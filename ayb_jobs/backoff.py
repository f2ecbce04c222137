"""Retry delay after a failed attempt: 5 s x 2^(attempt-1), capped at 300 s, plus jitter in [0, 1 s)."""

from __future__ import annotations

import random
from collections.abc import Callable

BASE_S = 5.0
CAP_S = 300.0


def backoff_seconds(attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Delay in (fractional) seconds before the next attempt; `rand` returns a float in [0, 1)."""
    exponent = max(attempt, 1) - 1
    # Cap the exponent before computing the power so a huge attempt count cannot overflow.
    base = BASE_S * 2 ** min(exponent, 16)
    return min(base, CAP_S) + rand()
