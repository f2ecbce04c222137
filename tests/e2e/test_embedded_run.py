"""Zero-config start: `ayb-jobs run` with no database.url runs its own Postgres.

Black-box: the real daemon process, its JSON log, its admin API and /proc. Run as root (as here and in
CI), Postgres runs as the test account `aybtest`, which the test creates when missing (the product
never creates accounts). Data dirs live under a /tmp folder of mode 0755 that the account can enter.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e_harness import DaemonProcess, base_env

IS_ROOT = os.geteuid() == 0
TOKEN = "e2e-embedded-token-0123456789"
START_TIMEOUT_S = 30.0  # initdb + start take ~1 s idle, several seconds on a loaded CI machine




@pytest.fixture
def base() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ayb-run-", dir="/tmp"))
    path.chmod(0o755)  # our own test folder: the Postgres account must be able to enter it
    yield path
    shutil.rmtree(path, ignore_errors=True)


def embedded_env(base: Path, user: str, **overrides: str) -> dict[str, str]:
    return base_env(
        "",  # empty database.url = embedded Postgres
        AYB_DATABASE_EMBEDDED_DATA_DIR=str(base / "pg"),
        AYB_DATABASE_EMBEDDED_USER=user,
        AYB_ADMIN_ENABLED="true",
        AYB_ADMIN_LISTEN="127.0.0.1:0",  # the real port is in daemon_started's admin_url
        AYB_ADMIN_TOKEN=TOKEN,
        AYB_ADMIN_TOKEN_FILE=str(base / "admin-token"),
        **overrides,
    )


def start(daemons: list[DaemonProcess], env: dict[str, str], name: str = "embedded") -> DaemonProcess:
    d = DaemonProcess(env, name=name)
    daemons.append(d)
    return d.start()


# --- /proc ---------------------------------------------------------------------------------------


def is_running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie may linger when PID 1 does not reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and is_running(int(entry.name)):
            found.append(int(entry.name))
    return found


async def wait_postgres_gone(pid: int, data_dir: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while is_running(pid) or processes_mentioning(str(data_dir)):
        if time.monotonic() > deadline:
            raise AssertionError(f"postgres still running after {timeout}s: pid {pid}, "
                                 f"processes on {data_dir}: {processes_mentioning(str(data_dir))}")
        await asyncio.sleep(0.05)


# --- steps ---------------------------------------------------------------------------------------


async def until_ready(d: DaemonProcess) -> tuple[str, int]:
    """Wait for daemon_started and a 200 from /readyz; return (admin URL, postgres pid)."""
    pg = await d.event("embedded_postgres_started", timeout=START_TIMEOUT_S)
    started = await d.event("daemon_started", timeout=START_TIMEOUT_S)
    async with httpx.AsyncClient(base_url=started["admin_url"], timeout=5) as http:
        ready = await http.get("/readyz")
    assert ready.status_code == 200, ready.text
    return started["admin_url"], pg["pid"]


async def run_builtin_job(url: str) -> dict:
    """Enqueue `job_prune` through the admin API and wait until the daemon completed it."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=5) as http:
        created = await http.post("/api/admin/jobs", json={"type": "job_prune"})
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]
        deadline = time.monotonic() + 15
        while True:
            job = (await http.get(f"/api/admin/jobs/{job_id}")).json()
            if job["state"] == "completed" or time.monotonic() > deadline:
                return job
            await asyncio.sleep(0.1)


# --- tests ---------------------------------------------------------------------------------------


async def test_zero_config_run_starts_postgres_runs_a_job_and_stops_it(base, run_as, daemons):
    d = start(daemons, embedded_env(base, run_as))
    url, pg_pid = await until_ready(d)
    assert is_running(pg_pid)
    if IS_ROOT:
        assert os.stat(f"/proc/{pg_pid}").st_uid == pwd.getpwnam(run_as).pw_uid

    job = await run_builtin_job(url)
    assert job["state"] == "completed", job

    d.signal(signal.SIGTERM)
    await d.expect_exit(0, timeout=20)
    # The daemon waits for its postgres before exiting: nothing may be left, not even briefly.
    assert not is_running(pg_pid)
    assert processes_mentioning(str(base / "pg")) == []


async def test_postgres_dies_with_a_killed_daemon_and_the_data_dir_restarts(base, run_as, daemons):
    first = start(daemons, embedded_env(base, run_as), name="first")
    _, pg_pid = await until_ready(first)

    first.kill()  # SIGKILL: only the parent-death signal can stop postgres now
    await wait_postgres_gone(pg_pid, base / "pg", timeout=20)

    second = start(daemons, embedded_env(base, run_as), name="second")
    _, pg_pid2 = await until_ready(second)
    pg_started = second.events("embedded_postgres_started")[0]
    assert pg_started["initialised"] is False  # the same cluster, started again
    second.signal(signal.SIGTERM)
    await second.expect_exit(0, timeout=20)
    assert not is_running(pg_pid2)
    assert processes_mentioning(str(base / "pg")) == []


@pytest.mark.skipif(not IS_ROOT, reason="the embedded account is only used when the daemon runs as root")
async def test_missing_account_as_root_exits_2_with_the_useradd_command(base, daemons):
    user = "ayb_e2e_no_such_user"
    with pytest.raises(KeyError):
        pwd.getpwnam(user)
    d = start(daemons, embedded_env(base, user))
    await d.expect_exit(2)

    expected = f"useradd --system --home-dir /var/lib/ayb-jobs --shell /usr/sbin/nologin {user}"
    [failure] = d.events("daemon_start_failed")
    assert expected in failure["error"]
    assert not (base / "pg").exists()  # nothing created on the way
