"""Embedded Postgres: the zero-config database (docs/deployment.md).

`postgres` runs as a direct child of the daemon on a unix socket only (no TCP). It is started with a
parent-death signal, so it shuts down (fast, SIGINT) even when the daemon is killed with SIGKILL. When
the daemon runs as root, initdb and postgres run as an unprivileged account (`database.embedded_user`)
that must already exist: we never create accounts or chmod anyone's parent folders.

Lifecycle: `start()` → DSN for asyncpg; `stop()` after the pool is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import pwd
import re
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg

from ayb_jobs.errors import StartupError

PR_SET_PDEATHSIG = 1
SOCKET_NAME = ".s.PGSQL.5432"
MAX_SOCKET_PATH = 107  # sun_path is 108 bytes including the trailing NUL
LOG_NAME = "postgres.log"
LOG_ROTATE_BYTES = 10 * 1024 * 1024
USERADD = "useradd --system --home-dir /var/lib/ayb-jobs --shell /usr/sbin/nologin {user}"
# Variables that would make the child talk to systemd or to another cluster on our behalf.
_CHILD_ENV_DROP = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID")


@dataclass(frozen=True)
class Account:
    """The unprivileged account Postgres runs as (only when the daemon runs as root)."""

    name: str
    uid: int
    gid: int


# ---------------------------------------------------------------- binaries


def find_bin_dir(configured: str = "") -> Path:
    """Where the server binaries are: the setting, `pg_config --bindir`, newest /usr/lib/postgresql, extra."""
    if configured:
        path = Path(configured)
        if not _has_server_binaries(path):
            raise StartupError(
                f"database.embedded_bin_dir={configured!r} does not contain the `postgres` and `initdb` "
                "programs; point it at a PostgreSQL bin directory (e.g. /usr/lib/postgresql/15/bin)",
                exit_code=2,
            )
        return path
    for candidate in (_pg_config_bindir(), _newest_debian_bindir(), _pgserver_bindir()):
        if candidate is not None and _has_server_binaries(candidate):
            return candidate
    raise StartupError(
        "embedded Postgres: no PostgreSQL server binaries found (searched `pg_config --bindir`, "
        "/usr/lib/postgresql/*/bin); install the PostgreSQL server (e.g. `apt-get install postgresql`), "
        "or set database.embedded_bin_dir, or set database.url to use an existing Postgres",
        exit_code=2,
    )


def _has_server_binaries(path: Path) -> bool:
    return all(os.access(path / name, os.X_OK) for name in ("postgres", "initdb"))


def _pg_config_bindir() -> Path | None:
    exe = shutil.which("pg_config")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--bindir"], capture_output=True, text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out.stdout.strip())


def _newest_debian_bindir() -> Path | None:
    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (0,)

    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version)
    return found[-1] if found else None


def _pgserver_bindir() -> Path | None:
    """Binaries of the optional `embedded` extra (PyPI `pgserver`); only its files are used."""
    import importlib.util

    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


# ---------------------------------------------------------------- accounts and paths


def resolve_account(user: str) -> Account:
    """The account to run Postgres as when we are root; a clear fix when it is missing."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise StartupError(
            f"embedded Postgres: running as root, so Postgres must run as the unprivileged account "
            f"'{user}', which does not exist. Create it with: {USERADD.format(user=user)}  "
            "(database.embedded_user chooses another account; or set database.url to use an "
            "existing Postgres)",
            exit_code=2,
        ) from None
    if entry.pw_uid == 0:
        raise StartupError(
            f"embedded Postgres: database.embedded_user={user!r} is root, and Postgres refuses to run as "
            f"root; create an unprivileged account with: {USERADD.format(user='ayb')}",
            exit_code=2,
        )
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


def check_traversable(path: Path, account: Account) -> None:
    """Every existing ancestor of `path` must be searchable by `account` (only its primary group
    counts: the child runs with no supplementary groups)."""
    for parent in reversed(path.absolute().parents):
        try:
            st = parent.stat()
        except FileNotFoundError:
            return
        if st.st_uid == account.uid:
            bit = stat.S_IXUSR
        elif st.st_gid == account.gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            raise StartupError(
                f"embedded Postgres: the account '{account.name}' cannot enter {parent} (mode "
                f"{stat.filemode(st.st_mode)}, owner uid {st.st_uid}), which leads to the data dir "
                f"{path}. Fix it with e.g. `chown {account.name}: {parent}` if that folder is meant for "
                "ayb-jobs, or choose another database.embedded_data_dir (e.g. /var/lib/ayb-jobs/postgres)",
                exit_code=2,
            )


def _proc_is_postmaster_of(pid: int, data_dir: Path) -> bool | None:
    """True/False when we can tell whether `pid` is a postgres running on `data_dir`; None if unknown."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if b"postgres" not in cmdline and b"postmaster" not in cmdline:
        return False
    try:
        return os.path.realpath(os.readlink(f"/proc/{pid}/cwd")) == os.path.realpath(data_dir)
    except OSError:
        return True  # a postgres we may not inspect: assume the worst


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pidfile_pid(data_dir: Path) -> int | None:
    try:
        first = (data_dir / "postmaster.pid").read_text().splitlines()[0]
        return int(first.strip())
    except (OSError, IndexError, ValueError):
        return None


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PG") and k not in _CHILD_ENV_DROP}


def _pdeathsig_preexec() -> Callable[[], None]:
    """preexec_fn: SIGINT (fast shutdown) when the forking thread dies. It runs after the uid switch,
    which would otherwise clear the setting. libc is loaded here, not in the forked child."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGINT, 0, 0, 0)
        if os.getppid() != parent:  # the daemon died before prctl took effect
            os._exit(1)

    return preexec


# ---------------------------------------------------------------- the server


class EmbeddedPostgres:
    """A private Postgres cluster in `data_dir`, run as a child process of this daemon."""

    def __init__(self, data_dir: Path, bin_dir: str = "", run_as_user: str = "ayb", log: Any = None) -> None:
        self.data_dir = Path(data_dir).absolute()
        self._bin_dir_setting = bin_dir
        self._run_as_user = run_as_user
        self._log = log
        self._bin: Path | None = None
        self._account: Account | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._socket_dir: Path | None = None
        self._own_socket_dir = False

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def socket_dir(self) -> Path | None:
        return self._socket_dir

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_NAME

    @property
    def dsn(self) -> str:
        host = quote(str(self._socket_dir), safe="/")
        return f"postgresql://postgres@/postgres?host={host}"

    @property
    def psql_command(self) -> str:
        psql = self._bin / "psql" if self._bin and (self._bin / "psql").exists() else Path("psql")
        return f"{shlex.quote(str(psql))} -h {shlex.quote(str(self._socket_dir))} -U postgres -d postgres"

    async def start(self, timeout_s: float = 60.0) -> str:
        """Initialise once, start postgres, wait until it is really ours and answering; return the DSN."""
        if self._proc is not None:
            return self.dsn
        started = time.monotonic()
        self._bin = find_bin_dir(self._bin_dir_setting)
        if os.geteuid() == 0:
            self._account = resolve_account(self._run_as_user)
            check_traversable(self.data_dir, self._account)
        initialised = await self._ensure_cluster()
        self._refuse_live_postmaster()
        self._socket_dir = self._choose_socket_dir()
        self._spawn()
        try:
            await self._wait_ready(started + timeout_s)
        except BaseException:
            await self.stop()
            raise
        self._log_started(initialised, started)
        return self.dsn

    async def stop(self, fast_timeout_s: float = 15.0) -> None:
        """SIGINT (fast shutdown: rolls back sessions), then SIGQUIT, then SIGKILL. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            steps = ((signal.SIGINT, fast_timeout_s), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0))
            for sig, wait_s in steps:
                if proc.poll() is not None:
                    break
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    await asyncio.to_thread(proc.wait, wait_s)
        if self._own_socket_dir and self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._own_socket_dir = False

    # -- start-up steps

    async def _ensure_cluster(self) -> bool:
        """Create and initdb the data dir if needed; True if it was initialised now."""
        if (self.data_dir / "PG_VERSION").exists():
            self._check_data_dir_owner()
            return False
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise StartupError(
                f"embedded Postgres: {self.data_dir} is neither empty nor a Postgres data dir; empty it or "
                "choose another database.embedded_data_dir",
                exit_code=2,
            )
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)  # the dir is ours; Postgres refuses a group/world-readable one
        if self._account is not None:
            check_traversable(self.data_dir, self._account)  # parents we just created follow the umask
            os.chown(self.data_dir, self._account.uid, self._account.gid)
        await self._initdb()
        return True

    def _check_data_dir_owner(self) -> None:
        owner = self.data_dir.stat().st_uid
        expected = self._account.uid if self._account else os.geteuid()
        if owner != expected:
            user = self._account.name if self._account else pwd.getpwuid(expected).pw_name
            raise StartupError(
                f"embedded Postgres: the data dir {self.data_dir} belongs to uid {owner}, but Postgres runs "
                f"as '{user}'; fix with `chown -R {user}: {self.data_dir}` or choose another "
                "database.embedded_data_dir",
                exit_code=2,
            )

    async def _initdb(self) -> None:
        argv = [str(self._bin / "initdb"), "-D", str(self.data_dir), "-U", "postgres",
                "--auth=trust", "--encoding=UTF8", "--no-locale"]
        result = await asyncio.to_thread(
            subprocess.run, argv, capture_output=True, text=True, cwd="/", env=_child_env(),
            **self._user_kwargs(),
        )
        if result.returncode != 0:
            raise StartupError(
                f"embedded Postgres: initdb failed (exit {result.returncode}) for {self.data_dir}:\n"
                + "\n".join((result.stderr or result.stdout).splitlines()[-15:])
            )

    def _refuse_live_postmaster(self) -> None:
        """A postmaster left running on this dir would answer our connections: refuse clearly.
        A pid file whose pid is dead is left to postgres, which removes it itself."""
        pid = _read_pidfile_pid(self.data_dir)
        if pid is None or pid == os.getpid() or not _pid_alive(pid):
            return
        mine = _proc_is_postmaster_of(pid, self.data_dir)
        if mine is False:
            # The pid was reused by an unrelated process: postgres would refuse this lock file.
            (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
            return
        raise StartupError(
            f"embedded Postgres: another Postgres (pid {pid}) is already running on {self.data_dir}; "
            f"stop it (`kill -INT {pid}`) or choose another database.embedded_data_dir"
        )

    def _choose_socket_dir(self) -> Path:
        if len(os.fsencode(f"{self.data_dir}/{SOCKET_NAME}")) <= MAX_SOCKET_PATH:
            return self.data_dir
        short = Path(tempfile.mkdtemp(prefix="ayb-pg-", dir="/tmp"))  # created with mode 0700
        if self._account is not None:
            os.chown(short, self._account.uid, self._account.gid)
        self._own_socket_dir = True
        if self._log is not None:
            self._log.info(
                "embedded_postgres_socket_relocated", data_dir=str(self.data_dir), socket_dir=str(short),
                reason=f"a unix socket path under the data dir would exceed {MAX_SOCKET_PATH} bytes",
            )
        return short

    def _spawn(self) -> None:
        """Must run on the event loop's thread: the parent-death signal fires when the forking thread
        exits, so forking from a short-lived worker thread would stop postgres early."""
        argv = [str(self._bin / "postgres"), "-D", str(self.data_dir), "-c", "listen_addresses=",
                "-c", f"unix_socket_directories={self._socket_dir}", "-c", "logging_collector=off"]
        log_file = self._open_log()
        with log_file:
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, cwd="/",
                env=_child_env(), start_new_session=True, preexec_fn=_pdeathsig_preexec(),
                **self._user_kwargs(),
            )

    def _open_log(self) -> Any:
        path = self.log_path
        with contextlib.suppress(OSError):
            if path.stat().st_size > LOG_ROTATE_BYTES:
                path.replace(path.with_suffix(".log.1"))
        log_file = open(path, "ab")  # handed to the child; closed here after the fork
        if self._account is not None:
            os.fchown(log_file.fileno(), self._account.uid, self._account.gid)
        return log_file

    async def _wait_ready(self, deadline: float) -> None:
        """Ready = our child is alive, postmaster.pid names it, and a connection succeeds."""
        assert self._proc is not None
        while True:
            code = self._proc.poll()
            if code is not None:
                raise StartupError(
                    f"embedded Postgres exited during start-up (exit code {code}); last lines of "
                    f"{self.log_path}:\n{_tail(self.log_path)}"
                )
            if _read_pidfile_pid(self.data_dir) == self._proc.pid and await self._answers():
                return
            if time.monotonic() > deadline:
                raise StartupError(
                    f"embedded Postgres did not become ready in time; last lines of {self.log_path}:\n"
                    f"{_tail(self.log_path)}"
                )
            await asyncio.sleep(0.02)  # readiness has no event to wait on; poll the socket briefly

    async def _answers(self) -> bool:
        try:
            conn = await asyncpg.connect(self.dsn, timeout=2)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            return False
        try:
            return await conn.fetchval("select 1") == 1
        finally:
            await conn.close()

    def _user_kwargs(self) -> dict[str, Any]:
        if self._account is None:
            return {}
        return {"user": self._account.uid, "group": self._account.gid, "extra_groups": []}

    def _log_started(self, initialised: bool, started: float) -> None:
        if self._log is None:
            return
        self._log.info(
            "embedded_postgres_started", data_dir=str(self.data_dir), socket_dir=str(self._socket_dir),
            pid=self.pid, psql=self.psql_command, log_file=str(self.log_path), initialised=initialised,
            run_as=self._account.name if self._account else None,
            duration_ms=round((time.monotonic() - started) * 1000),
        )
