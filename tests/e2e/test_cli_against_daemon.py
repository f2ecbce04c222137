"""The real `ayb-jobs` CLI and raw HTTP against the real `ayb-jobs run` process.

tests/test_cli_admin.py and tests/api/ cover every command and route against the app served in the
test process; this module proves the same fronts work end to end through the daemon: its token
check, its service wired to the running workers and scheduler, and its stop.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import httpx
import pytest
from e2e_harness import DaemonProcess, poll_until

TOKEN = "e2e-cli-token-0123456789abcdef"


async def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "ayb_jobs", *args, "--url", url, "--admin-token", TOKEN]
    return await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, timeout=30)


async def _cli_json(url: str, *args: str) -> Any:
    done = await _cli(url, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
async def daemon_url(start_daemon, db) -> tuple[DaemonProcess, str]:
    d = start_daemon(AYB_ADMIN_ENABLED="true", AYB_ADMIN_LISTEN="127.0.0.1:0", AYB_ADMIN_TOKEN=TOKEN)
    return d, (await d.event("daemon_started"))["admin_url"]


async def test_cli_enqueues_a_job_the_daemon_runs_and_reports(daemon_url) -> None:
    _daemon, url = daemon_url
    job = await _cli_json(url, "jobs", "enqueue", "record", "--payload", '{"n": 1}')
    assert job["state"] == "queued"

    async def completed() -> bool:
        return (await _cli_json(url, "jobs", "get", job["id"]))["state"] == "completed"

    await poll_until(completed, timeout=10, what="the CLI-enqueued job to complete")
    stats = await _cli_json(url, "jobs", "stats")
    assert stats["completed"] == 1
    listed = await _cli(url, "jobs", "list", "--state", "completed")
    assert listed.returncode == 0 and job["id"] in listed.stdout


async def test_cli_schedule_trigger_runs_through_the_daemon(daemon_url) -> None:
    _daemon, url = daemon_url
    created = await _cli_json(url, "schedules", "create", "--name", "e2e_cli", "--job-type", "record",
                              "--cron", "0 0 1 1 *", "--payload", '{"from": "schedule"}')
    job = await _cli_json(url, "schedules", "trigger", created["id"])
    assert job["scheduleId"] == created["id"]

    async def completed() -> bool:
        return (await _cli_json(url, "jobs", "get", job["id"]))["state"] == "completed"

    await poll_until(completed, timeout=10, what="the triggered job to complete")
    dup = await _cli(url, "schedules", "create", "--name", "e2e_cli", "--job-type", "record",
                     "--cron", "0 0 1 1 *")
    assert dup.returncode == 1 and "already exists" in dup.stderr


async def test_daemon_api_refuses_bad_tokens_and_answers_errors_in_the_envelope(daemon_url) -> None:
    _daemon, url = daemon_url
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"}):
            r = await http.get("/api/admin/jobs", headers=headers)
            assert r.status_code == 401
            assert r.json() == {"code": 401, "message": "admin authentication required"}
        auth = {"Authorization": f"Bearer {TOKEN}"}
        r = await http.post("/api/admin/jobs", json={"type": "no_such_type"}, headers=auth)
        assert r.status_code == 400 and "registered:" in r.json()["message"]
        r = await http.get("/api/admin/jobs/not-a-uuid", headers=auth)
        assert r.status_code == 400 and r.json()["code"] == 400


async def test_cli_reports_a_stopped_daemon_in_one_line(daemon_url) -> None:
    daemon, url = daemon_url
    daemon.signal()
    assert await daemon.exit() == 0
    done = await _cli(url, "jobs", "stats")
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1 and url in done.stderr
