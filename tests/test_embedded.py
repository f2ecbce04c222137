"""Embedded Postgres against the real server binaries.

These tests run as root in CI, so Postgres runs as the test account `aybtest`, which the test creates
when missing (the product never creates accounts). Data dirs live under a /tmp folder opened to mode
0755 by the test, because pytest's tmp_path sits under a 0700 folder that account cannot enter.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from ayb_jobs.embedded import EmbeddedPostgres
from ayb_jobs.errors import StartupError

IS_ROOT = os.geteuid() == 0




@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ayb-emb-", dir="/tmp"))
    path.chmod(0o755)  # our own test folder: the Postgres account must be able to enter it
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def data_dir(base: Path) -> Path:
    """One cluster shared by the tests of this module; whichever starts first initialises it."""
    return base / "pg"


class Recorder:
    """Stands in for the structlog logger handed to EmbeddedPostgres."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, object]]] = []

    def info(self, event: str, **fields: object) -> None:
        self.events.append((event, fields))


def wait_gone(pid: int, timeout_s: float) -> bool:
    """Wait for any process (not only our child) to exit, via a pidfd: no polling."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([fd], [], [], timeout_s)
        return bool(readable)
    finally:
        os.close(fd)


def processes_in(data_dir: Path) -> list[int]:
    """Pids whose working directory is data_dir (the postmaster and all its children chdir there)."""
    target = os.path.realpath(data_dir)
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.path.realpath(os.readlink(entry / "cwd")) == target:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


async def select_one(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("select 1")
    finally:
        await conn.close()


async def test_start_serves_then_stop_leaves_nothing_and_restart_is_fast(
    data_dir: Path, run_as: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/systemd/notify")  # must not leak into postgres
    log = Recorder()
    pg = EmbeddedPostgres(data_dir, run_as_user=run_as, log=log)
    dsn = await pg.start()
    assert dsn.startswith("postgresql://postgres@/postgres?host=")
    assert await select_one(dsn) == 1
    pid = pg.pid
    assert pid is not None
    assert stat_mode(data_dir) == 0o700
    assert "NOTIFY_SOCKET" not in environ_of(pid)
    assert f"-h {pg.socket_dir}" in pg.psql_command
    event, fields = log.events[-1]
    assert event == "embedded_postgres_started"
    assert fields["pid"] == pid and fields["psql"] == pg.psql_command

    await pg.stop()
    await pg.stop()  # idempotent
    assert wait_gone(pid, 5)
    assert processes_in(data_dir) == []
    assert not (data_dir / "postmaster.pid").exists()

    started = time.monotonic()
    again = EmbeddedPostgres(data_dir, run_as_user=run_as)
    assert await select_one(await again.start()) == 1
    try:
        assert time.monotonic() - started < 2.0
    finally:
        await again.stop()


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def environ_of(pid: int) -> str:
    return Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")


HELPER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from ayb_jobs.embedded import EmbeddedPostgres

    async def main():
        pg = EmbeddedPostgres(Path(sys.argv[1]), run_as_user=sys.argv[2])
        await pg.start()
        print(pg.pid, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)


def start_helper(base: Path, data_dir: Path, run_as: str) -> subprocess.Popen[str]:
    script = base / "helper.py"
    script.write_text(HELPER)
    return subprocess.Popen(
        [sys.executable, str(script), str(data_dir), run_as], stdout=subprocess.PIPE, text=True
    )


def read_line(proc: subprocess.Popen[str], timeout_s: float) -> str:
    assert proc.stdout is not None
    readable, _, _ = select.select([proc.stdout], [], [], timeout_s)
    if not readable:
        proc.kill()
        pytest.fail(f"helper printed nothing within {timeout_s}s")
    return proc.stdout.readline()


async def test_killed_daemon_takes_postgres_down_and_next_start_works(
    data_dir: Path, run_as: str, base: Path
) -> None:
    """1. a helper process starts EmbeddedPostgres and prints the postgres pid;
    2. the helper gets SIGKILL (no chance to clean up);
    3. the parent-death signal makes postgres shut down fast, so its pid vanishes;
    4. a new start on the same dir (stale state from a killed run) works."""
    helper = start_helper(base, data_dir, run_as)
    line = read_line(helper, 30)
    assert line.strip().isdigit(), line
    pg_pid = int(line)

    helper.send_signal(signal.SIGKILL)
    helper.wait(timeout=10)
    assert wait_gone(pg_pid, 15), "postgres outlived its killed parent"
    assert "received fast shutdown request" in (data_dir / "postgres.log").read_text()
    assert processes_in(data_dir) == []

    pg = EmbeddedPostgres(data_dir, run_as_user=run_as)
    try:
        assert await select_one(await pg.start()) == 1
    finally:
        await pg.stop()


async def test_live_leftover_postmaster_is_refused(data_dir: Path, run_as: str) -> None:
    first = EmbeddedPostgres(data_dir, run_as_user=run_as)
    await first.start()
    try:
        with pytest.raises(StartupError, match=rf"already running.*pid {first.pid}|pid {first.pid}.*already"):
            await EmbeddedPostgres(data_dir, run_as_user=run_as).start()
        assert await select_one(first.dsn) == 1  # the refusal did not disturb the running one
    finally:
        await first.stop()


async def test_long_data_dir_puts_socket_in_short_tmp_dir(base: Path, run_as: str) -> None:
    data_dir = base / ("d" * 100) / "pg"
    data_dir.parent.mkdir(mode=0o755)
    log = Recorder()
    pg = EmbeddedPostgres(data_dir, run_as_user=run_as, log=log)
    assert await select_one(await pg.start()) == 1
    socket_dir = pg.socket_dir
    assert socket_dir is not None and str(socket_dir).startswith("/tmp/ayb-pg-")
    assert stat_mode(socket_dir) == 0o700
    assert any(event == "embedded_postgres_socket_relocated" for event, _ in log.events)
    await pg.stop()
    assert not socket_dir.exists()


@pytest.mark.skipif(not IS_ROOT, reason="the account check applies only when running as root")
async def test_missing_account_says_how_to_create_it(base: Path) -> None:
    data_dir = base / "never-created"
    with pytest.raises(StartupError) as info:
        await EmbeddedPostgres(data_dir, run_as_user="ayb-no-such-user").start()
    assert info.value.exit_code == 2
    assert "useradd --system" in info.value.message and "ayb-no-such-user" in info.value.message
    assert "database.embedded_user" in info.value.message
    assert not data_dir.exists()


@pytest.mark.skipif(not IS_ROOT, reason="traversal by another account applies only when running as root")
async def test_untraversable_parent_is_named(run_as: str) -> None:
    closed = Path(tempfile.mkdtemp(prefix="ayb-closed-", dir="/tmp"))  # mode 0700, owned by root
    try:
        with pytest.raises(StartupError) as info:
            await EmbeddedPostgres(closed / "pg", run_as_user=run_as).start()
        assert info.value.exit_code == 2
        assert str(closed) in info.value.message and "database.embedded_data_dir" in info.value.message
        assert stat_mode(closed) == 0o700  # never chmod a parent folder
    finally:
        shutil.rmtree(closed)


async def test_bad_bin_dir_names_the_setting(base: Path) -> None:
    with pytest.raises(StartupError, match=r"database\.embedded_bin_dir") as info:
        await EmbeddedPostgres(base / "x", bin_dir="/nonexistent/bin").start()
    assert info.value.exit_code == 2


async def test_non_empty_foreign_dir_is_refused(base: Path, run_as: str) -> None:
    foreign = base / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("not a cluster")
    with pytest.raises(StartupError, match="neither empty nor a Postgres data dir"):
        await EmbeddedPostgres(foreign, run_as_user=run_as).start()
