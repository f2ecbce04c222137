"""Postgres health guardrails: readings against a real database, the admin route, the log line on a
change of state, one reader per interval across daemons, and the gauges' exposition format."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from structlog.testing import capture_logs

from ayb_jobs.api.app import create_app
from ayb_jobs.config import HealthSettings
from ayb_jobs.handlers import default_registry
from ayb_jobs.health import HealthMonitor, build_reading, evaluate, health_metrics_lines
from ayb_jobs.metrics import Metrics
from ayb_jobs.models import iso
from ayb_jobs.service import JobService

TOKEN = "test-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Readings every 0.5 s (the setting's floor of 5 s is for production; the monitor takes any interval).
INTERVAL_S = 0.5


async def _ready() -> str | None:
    return None


async def poll(check, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not reached within {timeout}s (last: {value!r})"
        await asyncio.sleep(0.05)


@pytest.fixture
async def monitor(pool):
    m = HealthMonitor(pool, HealthSettings(xmin_horizon_warn_s=1), worker_id="test-daemon",
                      interval_s=INTERVAL_S)
    task = asyncio.create_task(m.run())
    yield m
    m.stop.set()
    await asyncio.wait_for(task, 5)


def client_for(service: JobService, *, jobs_enabled: bool = True) -> httpx.AsyncClient:
    app = create_app(service, token=TOKEN, jobs_enabled=jobs_enabled, metrics=Metrics(), readiness=_ready)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test", headers=AUTH)


@pytest.fixture
async def http(pool, monitor):
    async with client_for(JobService(pool, default_registry(), health=monitor)) as client:
        yield client


def check_of(body: dict, name: str) -> dict:
    return next(c for c in body["checks"] if c["name"] == name)


async def test_an_open_transaction_turns_health_to_warning_naming_its_pid_and_back_within_one_check(
        http, db_url) -> None:
    """1. a session opens a transaction and takes an xid (`select txid_current()`);
    2. once it is older than the lowered threshold (1 s), /api/admin/health warns and names its pid,
       with a `pg_health_warning` log line saying what to do;
    3. it commits: the first reading taken after the commit is ok again."""
    holder = await asyncpg.connect(db_url, server_settings={"application_name": "forgotten-psql"})
    try:
        pid = holder.get_server_pid()
        with capture_logs() as logs:
            tx = holder.transaction()
            await tx.start()
            await holder.fetchval("select txid_current()")

            async def warning() -> dict | None:
                body = (await http.get("/api/admin/health")).json()
                return body if body["status"] == "warning" else None

            body = await poll(warning, what="health warning")
            xmin = check_of(body, "xmin_horizon")
            assert xmin["status"] == "warning" and xmin["value"] > 1 and xmin["threshold"] == 1
            assert f"pid {pid}" in xmin["message"] and "forgotten-psql" in xmin["message"]
            assert "idle in transaction" in xmin["message"] and "select txid_current()" in xmin["message"]
            assert f"pg_terminate_backend({pid})" in xmin["message"]
            assert xmin["detail"]["pid"] == pid and xmin["detail"]["query"] == "select txid_current()"
            assert check_of(body, "notify_queue")["status"] == "ok"

            await tx.commit()
            committed_at = await holder.fetchval("select clock_timestamp()")

            async def next_reading() -> dict | None:
                body = (await http.get("/api/admin/health")).json()
                return body if datetime.fromisoformat(body["checkedAt"]) > committed_at else None

            after = await poll(next_reading, what="a reading after the commit")
            assert after["status"] == "ok", after
        warnings = [e for e in logs if e["event"] == "pg_health_warning"]
        assert len(warnings) == 1 and warnings[0]["check"] == "xmin_horizon"
        assert f"pid {pid}" in warnings[0]["message"] and warnings[0]["holder"]["pid"] == pid
        assert [e["check"] for e in logs if e["event"] == "pg_health_recovered"] == ["xmin_horizon"]
    finally:
        await holder.close()


async def test_one_daemon_reads_per_interval_and_the_others_serve_its_reading(pool) -> None:
    a = HealthMonitor(pool, worker_id="daemon-a", interval_s=60)
    b = HealthMonitor(pool, HealthSettings(dead_tuples_warn=1), worker_id="daemon-b", interval_s=60)
    first = await a.run_once()
    second = await b.run_once()
    assert first.checked_by == "daemon-a" and second.checked_by is None  # b only read the snapshot
    assert first.checked_at == second.checked_at
    assert await pool.fetchval("SELECT taken_by FROM _ayb_health_snapshot") == "daemon-a"
    # Each daemon judges the shared raw values against its own thresholds.
    thresholds = {c.name: c.threshold for c in second.checks}
    assert thresholds["dead_tuples"] == 1 and {c.threshold for c in first.checks if c.name == "dead_tuples"
                                               } == {1_000_000}


async def test_the_route_reads_on_demand_when_no_monitor_runs(pool) -> None:
    async with client_for(JobService(pool, default_registry())) as client:
        response = await client.get("/api/admin/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and {c["name"] for c in body["checks"]} == {
        "xmin_horizon", "dead_tuples", "notify_queue"}
    dead = check_of(body, "dead_tuples")
    assert dead["threshold"] == 1_000_000 and "_ayb_" in dead["message"]


async def test_the_operator_views_answer_even_when_jobs_are_disabled(pool) -> None:
    async with client_for(JobService(pool, default_registry()), jobs_enabled=False) as client:
        for path in ("/api/admin/health", "/api/admin/workers", "/api/admin/audit"):
            assert (await client.get(path)).status_code == 200, path
        assert (await client.post("/api/admin/jobs", json={"type": "job_prune"})).status_code == 503


# --- judging readings (no database) ----------------------------------------------------------------

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def reading(previous: dict | None = None, **raw) -> dict:
    base = {"backend": None, "prepared": None, "slots": [], "tables": [], "notify_queue_usage": 0.0}
    return build_reading({**base, **raw}, previous or {}, NOW)


def table(name: str, dead: int, vacuum_age: float | None = 60.0, size: int = 8192) -> dict:
    return {"table_name": name, "dead_tuples": dead, "autovacuum_age_s": vacuum_age, "bytes": size}


def test_dead_tuples_warn_above_the_threshold_naming_the_worst_table() -> None:
    limits = HealthSettings(dead_tuples_warn=1000)
    checks = {c.name: c for c in evaluate(reading(tables=[table("_ayb_jobs", 5000, None),
                                                          table("_ayb_job_schedules", 10)]), limits)}
    dead = checks["dead_tuples"]
    assert dead.status == "warning" and dead.value == 5000
    assert "_ayb_jobs has 5000 dead tuples" in dead.message and "never" in dead.message
    assert "VACUUM" in dead.message
    calm = {c.name: c for c in evaluate(reading(tables=[table("_ayb_jobs", 1000)]), limits)}
    assert calm["dead_tuples"].status == "ok"


def test_a_full_notify_queue_warns_above_the_ratio() -> None:
    limits = HealthSettings(notify_queue_warn_ratio=0.5)
    def status(usage: float) -> str:
        return next(c.status for c in evaluate(reading(notify_queue_usage=usage), limits)
                    if c.name == "notify_queue")

    assert (status(0.6), status(0.5)) == ("warning", "ok")


def test_a_stuck_replication_slot_ages_from_when_its_xmin_was_first_seen() -> None:
    slot = {"slot_name": "standby1", "slot_type": "physical", "active": False, "active_pid": None,
            "xmin": "1234", "xid_age": 99}
    earlier = {"slots": [{**slot, "since": iso(NOW - timedelta(hours=2))}]}
    stuck = reading(slots=[slot], previous=earlier)
    [xmin] = [c for c in evaluate(stuck, HealthSettings()) if c.name == "xmin_horizon"]
    assert xmin.status == "warning" and xmin.value == 7200
    assert "standby1" in xmin.message and "pg_drop_replication_slot('standby1')" in xmin.message
    moved = reading(slots=[{**slot, "xmin": "5678"}], previous=earlier)
    assert [c.value for c in evaluate(moved, HealthSettings()) if c.name == "xmin_horizon"] == [0]


# --- gauges ------------------------------------------------------------------------------------------

GAUGES = ("ayb_jobs_pg_xmin_horizon_age_seconds", "ayb_jobs_pg_dead_tuples",
          "ayb_jobs_pg_last_autovacuum_age_seconds", "ayb_jobs_pg_notify_queue_usage_ratio",
          "ayb_jobs_table_bytes")


def promtool_check(text: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: apt-get install -y --no-install-recommends prometheus"
    return subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True,
                          timeout=30)


async def test_gauges_of_a_real_reading_pass_promtool(pool) -> None:
    m = HealthMonitor(pool, worker_id="metrics-test", interval_s=60)
    assert promtool_check("\n".join(m.metrics_lines()) + "\n").returncode == 0  # no reading yet
    await pool.execute("INSERT INTO _ayb_jobs (type) VALUES ('job_prune')")
    await m.run_once()
    text = "\n".join(m.metrics_lines()) + "\n"
    for name in GAUGES:
        assert f"# TYPE {name} gauge" in text
    assert 'ayb_jobs_table_bytes{table="_ayb_jobs"} ' in text
    assert 'ayb_jobs_pg_dead_tuples{table="_ayb_admin_audit"} ' in text
    assert "ayb_jobs_pg_notify_queue_usage_ratio 0" in text
    result = promtool_check(text)
    assert result.returncode == 0, result.stdout + result.stderr


def test_gauge_labels_are_escaped() -> None:
    text = "\n".join(health_metrics_lines(reading(tables=[table('_ayb_"odd"\\name', 3)]))) + "\n"
    assert 'ayb_jobs_pg_dead_tuples{table="_ayb_\\"odd\\"\\\\name"} 3' in text
    assert promtool_check(text).returncode == 0
