"""A private, throw-away Postgres cluster for tests that must stop and restart the server.

    cluster = PgCluster.create()          # initdb into a fresh dir under /tmp, pick a free port
    await cluster.start()                 # postgres as a direct child; waits until it answers
    await cluster.restart()               # SIGINT (fast shutdown), wait for exit, start again
    await cluster.destroy()               # stop (escalating) and remove every file

Run as root, Postgres runs as the unprivileged account ACCOUNT (created with `useradd --system`
when missing, since Postgres refuses to run as root). The cluster listens on 127.0.0.1:<port> with
trust auth, and on a unix socket inside its own data dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from pg_account import PG_TEST_ACCOUNT, ensure_pg_test_account

ACCOUNT = PG_TEST_ACCOUNT
PR_SET_PDEATHSIG = 1


def find_bin_dir() -> Path:
    """The newest /usr/lib/postgresql/<ver>/bin that has the server programs."""

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", path.parent.name)) or (0,)

    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True):
        if all(os.access(candidate / name, os.X_OK) for name in ("postgres", "initdb")):
            return candidate
    raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_account(name: str = ACCOUNT) -> pwd.struct_passwd:
    return pwd.getpwnam(ensure_pg_test_account(name))


def _pdeathsig() -> Any:
    """preexec_fn: fast-shutdown the server if the test process dies without cleaning up."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    return lambda: libc.prctl(PR_SET_PDEATHSIG, signal.SIGINT, 0, 0, 0)


@dataclass
class PgCluster:
    root: Path
    port: int
    bin_dir: Path
    account: pwd.struct_passwd | None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    @classmethod
    def create(cls) -> PgCluster:
        """initdb a new cluster (about half a second)."""
        account = ensure_account() if os.geteuid() == 0 else None
        # mkdtemp makes 0700; the server account must be able to traverse into its data dir.
        root = Path(tempfile.mkdtemp(prefix="ayb-pgtest-", dir="/tmp"))
        root.chmod(0o755)
        cluster = cls(root, free_port(), find_bin_dir(), account)
        cluster.data_dir.mkdir(mode=0o700)
        if account is not None:
            os.chown(cluster.data_dir, account.pw_uid, account.pw_gid)
        argv = [str(cluster.bin_dir / "initdb"), "-D", str(cluster.data_dir), "-U", "postgres",
                "--auth=trust", "--encoding=UTF8", "--no-locale"]
        result = subprocess.run(argv, capture_output=True, text=True, cwd="/", env=cls._env(),
                                **cluster._user_kwargs())
        if result.returncode != 0:
            shutil.rmtree(root, ignore_errors=True)
            raise RuntimeError(f"initdb failed: {result.stderr or result.stdout}")
        return cluster

    @staticmethod
    def _env() -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if not k.startswith("PG")}

    def _user_kwargs(self) -> dict[str, Any]:
        if self.account is None:
            return {}
        return {"user": self.account.pw_uid, "group": self.account.pw_gid, "extra_groups": []}

    async def start(self, timeout_s: float = 30.0) -> None:
        """Start postgres on the same dir and port as before; returns once it answers."""
        self._spawn()
        await self._wait_ready(time.monotonic() + timeout_s)

    def _spawn(self) -> None:
        """Runs on the event loop's thread: the parent-death signal fires when the forking thread ends."""
        argv = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
                "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.data_dir}",
                "-c", "logging_collector=off", "-c", "fsync=off", "-c", "max_connections=50"]
        with open(self.log_path, "ab") as log_file:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                                         cwd="/", env=self._env(), start_new_session=True,
                                         preexec_fn=_pdeathsig(), **self._user_kwargs())

    async def _wait_ready(self, deadline: float) -> None:
        """Ready = our child is alive, postmaster.pid names it, and a connection succeeds."""
        assert self.proc is not None
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self._pidfile_pid() == self.proc.pid and await self._answers():
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not become ready:\n{self.log_tail()}")
            await asyncio.sleep(0.02)  # no event to wait on: poll the socket briefly

    def _pidfile_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    async def _answers(self) -> bool:
        try:
            conn = await asyncpg.connect(self.dsn(), timeout=2)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            return False
        try:
            return bool(await conn.fetchval("SELECT 1") == 1)
        finally:
            await conn.close()

    async def stop(self, fast_timeout_s: float = 15.0) -> None:
        """Fast shutdown (SIGINT: sessions are terminated), escalating to SIGQUIT then SIGKILL."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for sig, wait_s in ((signal.SIGINT, fast_timeout_s), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
            if proc.poll() is not None:
                return
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(proc.wait, wait_s)

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def destroy(self) -> None:
        try:
            await self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
