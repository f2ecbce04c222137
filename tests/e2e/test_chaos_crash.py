"""Crash consistency (docs/reliability.md): three daemons on one database, a random one killed with
SIGKILL while it runs jobs, then restarted, again and again; a few thousand jobs flow meanwhile.

Must hold at the end: every job completed (none lost, none failed); none stayed `running` long past
its lease (recovery runs every 5 s on every daemon); attempts never above max_attempts; and a job ran
more than once only when a kill cut a run off — its earlier run has no end record, or ended just
before its daemon was killed and before the outcome was committed (chaos_scenarios.judge).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from chaos_scenarios import crash_consistency, private_cluster
from pgcluster import PgCluster

pytestmark = pytest.mark.slow
JOBS, KILLS = 3000, 6


@pytest.fixture
async def cluster() -> AsyncIterator[PgCluster]:
    async with private_cluster() as c:
        yield c


async def test_kill_9_storm_loses_no_job_and_reruns_only_cut_runs(cluster: PgCluster,
                                                                 daemons: list[Any]) -> None:
    figures = await crash_consistency(cluster.dsn(), daemons, jobs=JOBS, kills=KILLS)
    print(figures.line())
    assert figures.problems == [], figures.line() + "\n" + "\n".join(figures.problems[:20])
    assert figures.jobs == JOBS and figures.completed == JOBS and figures.lost == 0
    assert figures.kills == KILLS
