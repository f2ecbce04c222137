"""Probes of the real daemon process: /healthz, /readyz, /metrics, admin start errors."""

from __future__ import annotations

import re
import signal
import socket
from collections.abc import Callable

import asyncpg
import httpx
import pytest
from e2e_harness import DaemonProcess, base_env, insert_job, poll_until, wait_job_state

TOKEN = "e2e-health-token-0123456789"


def with_admin(start_daemon: Callable[..., DaemonProcess], **overrides: str) -> DaemonProcess:
    return start_daemon(AYB_ADMIN_ENABLED="true", AYB_ADMIN_LISTEN="127.0.0.1:0", AYB_ADMIN_TOKEN=TOKEN,
                        **overrides)


async def admin_url(d: DaemonProcess) -> str:
    return (await d.event("daemon_started"))["admin_url"]


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one Prometheus sample, or None when the series is absent."""
    label_text = ",".join(f'{k}="{v}"' for k, v in labels.items())
    series = f"{name}{{{label_text}}}" if labels else name
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


async def wait_metric(http: httpx.AsyncClient, name: str, value: float, timeout: float = 10.0,
                      **labels: str) -> str:
    async def check() -> str | None:
        text = (await http.get("/metrics")).text
        return text if sample(text, name, **labels) == value else None

    return await poll_until(check, timeout, every=0.1, what=f"{name}{labels} == {value}")


# --- readiness -------------------------------------------------------------------------------------


async def test_readyz_turns_503_when_polling_stops_while_healthz_stays_200(db, start_daemon):
    d = with_admin(start_daemon)
    async with httpx.AsyncClient(base_url=await admin_url(d), timeout=5) as http:
        assert (await http.get("/readyz")).status_code == 200
        job_id = await insert_job(db, "sleep", {"seconds": 3})
        await d.event("e2e_handler_started")

        d.signal(signal.SIGTERM)
        await d.event("shutdown_phase", lambda r: r["phase"] == "polling_stopped")
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["code"] == 503 and "draining" in ready.json()["message"]
        assert (await http.get("/healthz")).status_code == 200
        assert not d.events("job_completed")  # still inside the drain, so the answers above count

    await d.expect_exit(0, timeout=20)
    assert d.events("job_completed", lambda r: r["job_id"] == str(job_id))


async def test_readyz_is_503_while_the_database_refuses_connections(db, db_url, start_daemon):
    """Connections to the daemon's database are cut and refused; readiness says so, then recovers."""
    d = with_admin(start_daemon)
    dbname = db_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(db_url.rsplit("/", 1)[0] + "/postgres")
    try:
        async with httpx.AsyncClient(base_url=await admin_url(d), timeout=10) as http:
            assert (await http.get("/readyz")).status_code == 200
            await admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
            await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = $1 AND pid <> pg_backend_pid()", dbname)

            async def not_ready() -> httpx.Response | None:
                response = await http.get("/readyz")
                return response if response.status_code == 503 else None

            refused = await poll_until(not_ready, 10, every=0.1, what="/readyz 503")
            assert "database unavailable" in refused.json()["message"]
            assert (await http.get("/healthz")).status_code == 200

            await admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')

            async def ready() -> bool:
                return (await http.get("/readyz")).status_code == 200

            await poll_until(ready, 15, every=0.1, what="/readyz 200 again")
    finally:
        await admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
        await admin.close()
    d.signal(signal.SIGTERM)
    await d.expect_exit(0, timeout=20)


# --- metrics ---------------------------------------------------------------------------------------


async def test_metrics_count_completed_retried_failed_and_recovered_jobs(db, start_daemon):
    # A job whose worker died: running, lease expired. Recovery runs once at start.
    dead_id = await db.fetchval(
        "INSERT INTO _ayb_jobs (type, payload, state, lease_until, worker_id, attempts, max_attempts, "
        "last_run_at) VALUES ('sleep', '{\"seconds\": 0}', 'running', now() - interval '1 minute', "
        "'dead-worker', 1, 3, now() - interval '10 minutes') RETURNING id")
    d = with_admin(start_daemon)
    async with httpx.AsyncClient(base_url=await admin_url(d), timeout=5) as http:
        await wait_metric(http, "ayb_jobs_recovered_total", 1, type="sleep")
        assert d.events("job_recovered", lambda r: r["job_id"] == str(dead_id))

        ok_id = await insert_job(db, "record", {"marker": "metrics"})
        await wait_job_state(db, ok_id, "completed")
        await wait_metric(http, "ayb_jobs_completed_total", 1, type="record")

        bad_id = await insert_job(db, "boom", max_attempts=2)
        await d.event("job_retry_scheduled", lambda r: r["job_id"] == str(bad_id))
        text = await wait_metric(http, "ayb_jobs_retried_total", 1, type="boom")
        assert sample(text, "ayb_jobs_failed_total", type="boom") is None
        # Skip the backoff: the second (last) attempt is due now.
        await db.execute("UPDATE _ayb_jobs SET run_at = now() WHERE id = $1 AND state = 'queued'", bad_id)
        await wait_job_state(db, bad_id, "failed")
        text = await wait_metric(http, "ayb_jobs_failed_total", 1, type="boom")

        assert sample(text, "ayb_jobs_retried_total", type="boom") == 1
        assert sample(text, "ayb_jobs_claimed_total", type="boom") == 2
        assert sample(text, "ayb_jobs_job_duration_seconds_count", type="record") == 1
        # Queue gauges come from a read shared by all scrapes for a few seconds: wait for a fresh one.
        text = await wait_metric(http, "ayb_jobs_queue_depth", 1, timeout=15, state="failed")
        assert sample(text, "ayb_jobs_in_flight") is not None
    d.signal(signal.SIGTERM)
    await d.expect_exit(0, timeout=20)


# --- admin listener start errors -------------------------------------------------------------------


@pytest.fixture
def unused_db_url() -> str:
    """A URL nothing listens on: these starts must fail before touching a database."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"postgresql://postgres@127.0.0.1:{s.getsockname()[1]}/nowhere"


def start_raw(daemons: list[DaemonProcess], url: str, **overrides: str) -> DaemonProcess:
    d = DaemonProcess(base_env(url, AYB_ADMIN_ENABLED="true", **overrides), name="admin-error")
    daemons.append(d)
    return d.start()


async def test_non_loopback_listen_without_token_exits_2(daemons, unused_db_url):
    d = start_raw(daemons, unused_db_url, AYB_ADMIN_LISTEN="0.0.0.0:0")
    await d.expect_exit(2)
    [failure] = d.events("daemon_start_failed")
    assert "admin.token" in failure["error"]
    assert "0.0.0.0" in failure["error"]


async def test_port_in_use_exits_1_naming_the_port_and_setting(daemons, unused_db_url):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        d = start_raw(daemons, unused_db_url, AYB_ADMIN_LISTEN=f"127.0.0.1:{port}", AYB_ADMIN_TOKEN=TOKEN)
        await d.expect_exit(1)
    [failure] = d.events("daemon_start_failed")
    assert str(port) in failure["error"]
    assert "admin.listen" in failure["error"]
