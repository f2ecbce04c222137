"""The daemon process's life: start-up, systemd notifications, ordered shutdown, bad starts."""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from e2e_harness import insert_job, wait_job_state

SHUTDOWN_PHASES = ["scheduler_stopped", "polling_stopped", "drained", "exited"]


@pytest.fixture
def notify_socket() -> Iterator[socket.socket]:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET (short path: sun_path is 108 bytes)."""
    folder = tempfile.mkdtemp(prefix="ayb-e2e-")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(Path(folder) / "notify"))
    sock.settimeout(0.2)
    try:
        yield sock
    finally:
        sock.close()
        shutil.rmtree(folder, ignore_errors=True)


def receive_until(sock: socket.socket, wanted: str, timeout: float = 10.0) -> str:
    """The first datagram holding a line that starts with `wanted` (fails after `timeout`)."""
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            continue
        if any(line.startswith(wanted) for line in got[-1].splitlines()):
            return got[-1]
    raise AssertionError(f"no {wanted!r} on NOTIFY_SOCKET within {timeout}s; got {got}")


def phases(daemon) -> list[str]:
    return [r["phase"] for r in daemon.events("shutdown_phase")]


async def test_start_notifies_systemd_and_sigterm_exits_cleanly(db, start_daemon, notify_socket):
    # WATCHDOG_USEC of 1 s: systemd expects a ping at least every second, we send every half.
    d = start_daemon(NOTIFY_SOCKET=notify_socket.getsockname(), WATCHDOG_USEC="1000000")
    started = await d.event("daemon_started")
    assert started["settings"]["jobs.enabled"] is True
    assert "record" in started["job_types"]

    await asyncio.to_thread(receive_until, notify_socket, "READY=1")
    status = await asyncio.to_thread(receive_until, notify_socket, "STATUS=")
    assert "queued" in status
    for _ in range(2):  # not a one-off: the pings keep coming while the daemon is healthy
        await asyncio.to_thread(receive_until, notify_socket, "WATCHDOG=1", 3.0)

    d.signal(signal.SIGTERM)
    await asyncio.to_thread(receive_until, notify_socket, "STOPPING=1")
    await d.expect_exit(0)
    assert phases(d) == SHUTDOWN_PHASES


async def test_sigterm_lets_a_running_job_finish_in_phase_order(db, start_daemon):
    d = start_daemon()
    await d.event("daemon_started")
    job_id = await insert_job(db, "sleep", {"seconds": 2})
    await d.event("e2e_handler_started")

    d.signal(signal.SIGTERM)
    await d.expect_exit(0, timeout=20)

    assert phases(d) == SHUTDOWN_PHASES
    assert d.events("shutdown_phase", lambda r: r["phase"] == "drained")[0]["released"] == 0
    assert d.events("job_completed", lambda r: r["job_id"] == str(job_id))
    row = await db.fetchrow("SELECT state, attempts FROM _ayb_jobs WHERE id = $1", job_id)
    assert (row["state"], row["attempts"]) == ("completed", 1)


async def test_job_outliving_shutdown_timeout_is_released_uncounted(db, start_daemon):
    d = start_daemon(AYB_JOBS_SHUTDOWN_TIMEOUT_S="1")
    await d.event("daemon_started")
    job_id = await insert_job(db, "sleep", {"seconds": 30})
    await d.event("e2e_handler_started")

    d.signal(signal.SIGTERM)
    await d.expect_exit(0, timeout=10)

    assert phases(d) == SHUTDOWN_PHASES
    assert d.events("job_released", lambda r: r["job_id"] == str(job_id))
    row = await db.fetchrow("SELECT * FROM _ayb_jobs WHERE id = $1", job_id)
    assert row["state"] == "queued"
    assert row["attempts"] == 0
    assert row["last_error"] == "interrupted by shutdown"
    assert row["worker_id"] is None and row["lease_until"] is None


async def test_second_sigterm_releases_at_once(db, start_daemon):
    d = start_daemon(AYB_JOBS_SHUTDOWN_TIMEOUT_S="60")
    await d.event("daemon_started")
    job_id = await insert_job(db, "sleep", {"seconds": 30})
    await d.event("e2e_handler_started")

    d.signal(signal.SIGTERM)
    await d.event("draining")
    d.signal(signal.SIGTERM)
    await d.expect_exit(0, timeout=5)

    assert d.events("shutdown_forced")
    row = await wait_job_state(db, job_id, "queued", timeout=1)
    assert row["attempts"] == 0 and row["last_error"] == "interrupted by shutdown"


# --- bad starts --------------------------------------------------------------------------------------

def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def error_lines(daemon) -> list[dict]:
    return [r for r in daemon.records if r.get("level") in ("error", "critical") or r["event"] == "_raw"]


async def test_unreachable_database_is_one_clear_error_and_exit_1(start_daemon):
    d = start_daemon(url=f"postgresql://postgres@127.0.0.1:{closed_port()}/nowhere")
    await d.expect_exit(1)
    [line] = error_lines(d)
    assert line["event"] == "daemon_start_failed"
    assert "cannot connect to the database" in line["error"]


async def test_handlers_module_that_fails_to_import_exits_2(db, start_daemon):
    d = start_daemon(AYB_JOBS_HANDLERS='["broken_handlers:register"]')
    await d.expect_exit(2)
    [line] = error_lines(d)
    assert "broken_handlers" in line["error"]
    assert "No module named 'ayb_e2e_no_such_module'" in line["error"]


async def test_no_auto_migrate_on_empty_database_exits_1(empty_db_url, start_daemon):
    d = start_daemon(url=empty_db_url, AYB_DATABASE_AUTO_MIGRATE="false")
    await d.expect_exit(1)
    [line] = error_lines(d)
    assert "run `ayb-jobs migrate`" in line["error"]


def datagrams_within(sock: socket.socket, seconds: float) -> list[str]:
    """Every datagram that arrives in the next `seconds` (a bounded window: absence is the point)."""
    got: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            continue
    return got


async def test_watchdog_pings_stop_while_the_database_is_unreachable(db, db_url, start_daemon, notify_socket):
    """1. pings flow; 2. the database refuses connections and ours are cut: pings stop (systemd
    would restart a daemon that cannot reach its database); 3. connections allowed again: pings resume."""
    d = start_daemon(NOTIFY_SOCKET=notify_socket.getsockname(), WATCHDOG_USEC="1000000")
    await asyncio.to_thread(receive_until, notify_socket, "WATCHDOG=1")
    dbname = db_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(db_url.rsplit("/", 1)[0] + "/postgres")
    try:
        await admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = $1 AND pid <> pg_backend_pid()", dbname)
        await asyncio.to_thread(datagrams_within, notify_socket, 1.0)  # a ping already on its way
        silent = await asyncio.to_thread(datagrams_within, notify_socket, 2.5)
        assert not [m for m in silent if "WATCHDOG=1" in m.splitlines()], silent
        await admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
        await asyncio.to_thread(receive_until, notify_socket, "WATCHDOG=1", 15.0)
    finally:
        await admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
        await admin.close()
    d.signal(signal.SIGTERM)
    await d.expect_exit(0, timeout=20)
