"""Database faults (docs/reliability.md) on a private cluster: the daemon's backends terminated at
random, and the server restarted with a fast and with an immediate shutdown, each while jobs with
max_attempts = 1 are in flight and their handlers query the database.

A fault in the database is not the job's failure: the attempt is released (not counted) and run
again, so with a single attempt allowed every job must still complete and none may end `failed`;
a repeated run must follow a run the fault cut off (chaos_scenarios.judge); the daemon never exits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from chaos_scenarios import database_faults, private_cluster
from pgcluster import PgCluster


@pytest.fixture
async def cluster() -> AsyncIterator[PgCluster]:
    async with private_cluster() as c:
        yield c


def assert_no_job_failed(figures: Any) -> None:
    print(figures.line())
    assert figures.problems == [], figures.line() + "\n" + "\n".join(figures.problems[:20])
    assert figures.failed == 0 and figures.lost == 0 and figures.completed == figures.jobs > 0


async def test_terminated_backends_fail_no_job(cluster: PgCluster, daemons: list[Any]) -> None:
    figures = await database_faults(cluster, daemons, mode="terminate", rounds=10)
    assert_no_job_failed(figures)
    assert figures.terminations >= 10


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_server_restart_fails_no_job(cluster: PgCluster, daemons: list[Any], mode: str) -> None:
    figures = await database_faults(cluster, daemons, mode=mode, rounds=3)
    assert_no_job_failed(figures)
    assert figures.restarts == 3
