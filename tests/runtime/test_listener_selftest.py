"""The listener's self-test in-process: on a direct connection its probe NOTIFY comes back and the
gauge is 1; through a proxy that drops notifications it logs `listen_not_delivering` once (however
many probes fail), the gauge is 0 and passes promtool, and a later delivered probe turns it back."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import pytest
import structlog
from pg_notify_swallower import NotifySwallower

from ayb_jobs.metrics import Metrics
from ayb_jobs.runtime import listener as listener_module
from ayb_jobs.runtime.listener import Listener


@pytest.fixture(autouse=True)
def fast_probes(monkeypatch) -> None:
    monkeypatch.setattr(listener_module, "HEALTH_INTERVAL_S", 0.05)


async def probes(lst: Listener, n: int) -> None:
    for _ in range(n):
        lst.probed.clear()
        await asyncio.wait_for(lst.probed.wait(), 10)


def start(dsn: str, metrics: Metrics) -> tuple[Listener, asyncio.Task]:
    lst = Listener(dsn=dsn, wake=lambda: None, metrics=metrics, probe_timeout_s=0.3, probe_every_s=0.0)
    return lst, asyncio.create_task(lst.run())


async def stop(lst: Listener, task: asyncio.Task) -> None:
    lst.stop.set()
    await asyncio.wait_for(task, 10)


def promtool_ok(text: str) -> bool:
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: apt-get install -y --no-install-recommends prometheus"
    return subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True,
                          timeout=30).returncode == 0


async def test_a_direct_connection_delivers_and_the_gauge_is_one(db_url: str) -> None:
    metrics = Metrics()
    with structlog.testing.capture_logs() as logs:
        lst, task = start(db_url, metrics)
        await probes(lst, 2)
        assert lst.listen_ok and "ayb_jobs_listen_ok 1\n" in metrics.render(None)
        await stop(lst, task)
    assert "ayb_jobs_listen_ok 0\n" in metrics.render(None)  # stopped: no connection, nothing delivered
    assert not [e for e in logs if e["event"] == "listen_not_delivering"]


async def test_a_connection_that_never_delivers_is_reported_once_and_the_gauge_is_zero(db_url: str) -> None:
    proxy, dsn = await NotifySwallower.start_for(db_url)
    metrics = Metrics()
    try:
        with structlog.testing.capture_logs() as logs:
            lst, task = start(dsn, metrics)
            await probes(lst, 3)
            text = metrics.render(None)
            assert not lst.listen_ok and "ayb_jobs_listen_ok 0\n" in text and promtool_ok(text)
            assert proxy.swallowed >= 3  # the server did send them: the proxy is what drops them
            bad = [e for e in logs if e["event"] == "listen_not_delivering"]
            assert len(bad) == 1 and "database.listen_url" in bad[0]["message"]

            proxy.swallow = False  # e.g. listen_url now points at a direct connection
            await probes(lst, 2)
            assert lst.listen_ok and "ayb_jobs_listen_ok 1\n" in metrics.render(None)
            assert [e["event"] for e in logs if e["event"].startswith("listen_")] == [
                "listen_not_delivering", "listen_delivering"]
            await stop(lst, task)
    finally:
        await proxy.close()
