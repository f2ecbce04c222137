"""SIGTERM while the database is down (stopped) or hung (every server process SIGSTOPped): the whole
stop fits jobs.shutdown_timeout_s plus a short, fixed tail (inside the systemd unit's
TimeoutStopSec=45 with the defaults), and the drain says what was released and what was not
(nothing can be written), instead of claiming releases."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from chaos_scenarios import private_cluster, query, until
from e2e_harness import DaemonProcess, base_env
from pgcluster import PgCluster

SHUTDOWN_TIMEOUT_S = 3
# The tail after the drain budget (daemon.py: loops, writer grace, HTTP, pool), with slack for a
# busy machine. The old stop took the budget + 25 s here.
TAIL_S = 10
JOBS = 4


@pytest.fixture
async def cluster() -> AsyncIterator[PgCluster]:
    async with private_cluster() as c:
        try:
            yield c
        finally:
            signal_server(c, signal.SIGCONT)  # a hung server must be able to stop


def server_pids(cluster: PgCluster) -> list[int]:
    """The postmaster (our child) and its children, from /proc."""
    assert cluster.proc is not None
    root = cluster.proc.pid
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == root:
            children.append(int(stat.parent.name))
    return [root, *children]


def signal_server(cluster: PgCluster, sig: signal.Signals) -> None:
    if cluster.proc is None or cluster.proc.poll() is not None:
        return
    for pid in server_pids(cluster):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


@pytest.mark.parametrize("fault", ["down", "hung"])
async def test_sigterm_with_the_database_down_stops_in_budget_and_says_nothing_was_released(
        cluster: PgCluster, daemons: list[DaemonProcess], fault: str) -> None:
    dsn = cluster.dsn()
    d = DaemonProcess(base_env(dsn, AYB_JOBS_SHUTDOWN_TIMEOUT_S=str(SHUTDOWN_TIMEOUT_S),
                               AYB_LOG_LEVEL="info"), name="stopper")
    daemons.append(d)
    d.start()
    await d.event("daemon_started", timeout=60)
    await query(dsn, "INSERT INTO _ayb_jobs (type, payload) "
                     "SELECT 'hang', $1::jsonb FROM generate_series(1, $2)", json.dumps({}), JOBS)
    await until(lambda: query(dsn, "SELECT 1 FROM _ayb_jobs WHERE state = 'running' HAVING count(*) = $1",
                              JOBS), 20, "jobs running")
    if fault == "down":
        await cluster.stop()
    else:
        signal_server(cluster, signal.SIGSTOP)

    began = time.monotonic()
    d.signal(signal.SIGTERM)
    code = await d.exit(timeout=SHUTDOWN_TIMEOUT_S + 40)
    took = time.monotonic() - began
    print(f"stop with the database {fault} took {took:.1f}s (shutdown_timeout_s={SHUTDOWN_TIMEOUT_S})")
    assert took < SHUTDOWN_TIMEOUT_S + TAIL_S, f"stop took {took:.1f}s\n{d.tail()}"
    assert code == 0, d.tail()
    [drained] = d.events("shutdown_phase", lambda r: r["phase"] == "drained")
    assert (drained["in_flight"], drained["cancelled"], drained["released"], drained["not_released"]) == (
        JOBS, JOBS, 0, JOBS), drained
    [incomplete] = d.events("drain_incomplete")
    assert incomplete["by_outcome"] == {"release": JOBS} and len(incomplete["job_ids"]) == JOBS
