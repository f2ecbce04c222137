"""Black-box harness for the real daemon process (`python -m ayb_jobs run`).

`DaemonProcess` starts the daemon with a clean environment, reads its JSON log lines from stderr on a
background thread, and lets tests wait for log events with a deadline. The fixtures in conftest.py
kill every process they start at teardown. (Its own module, not conftest.py, so tests can import it
without clashing with the other `conftest` modules of the suite.)
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

SUPPORT_DIR = Path(__file__).parent / "support"
HANDLERS_SPEC = '["handlers:register"]'

Record = dict[str, Any]
Predicate = Callable[[Record], bool]

# Tables the test handlers write to (see support/handlers.py).
SUPPORT_TABLES = """
CREATE TABLE e2e_runs (
    job_id uuid PRIMARY KEY,          -- a second run of the same job violates this
    attempt int NOT NULL,
    worker_id text NOT NULL,
    marker text,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE e2e_signals (key text PRIMARY KEY);
"""


def base_env(db_url: str, **overrides: str) -> dict[str, str]:
    """The daemon's environment: no inherited AYB_* settings, test handlers importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AYB_") and k != "NOTIFY_SOCKET"}
    env.update({
        "AYB_DATABASE_URL": db_url,
        "AYB_JOBS_ENABLED": "true",
        "AYB_ADMIN_ENABLED": "false",
        "AYB_LOG_FORMAT": "json",
        "AYB_LOG_LEVEL": "debug",
        "AYB_JOBS_HANDLERS": HANDLERS_SPEC,
        "AYB_JOBS_POLL_INTERVAL_MS": "200",
        "AYB_JOBS_RECOVERY_INTERVAL_S": "5",
        "AYB_JOBS_SCHEDULER_TICK_S": "5",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SUPPORT_DIR), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
    })
    env.update(overrides)
    return env


class DaemonProcess:
    """One `ayb-jobs run` child process and the log records it has written so far."""

    def __init__(self, env: dict[str, str], name: str = "daemon") -> None:
        self.env = env
        self.name = name
        self.proc: subprocess.Popen[bytes] | None = None
        self.records: list[Record] = []
        self._cond = threading.Condition()
        self._reader: threading.Thread | None = None
        self._eof = False

    def start(self) -> DaemonProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ayb_jobs", "run"], env=self.env,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        self._reader = threading.Thread(target=self._read, name=f"{self.name}-stderr", daemon=True)
        self._reader.start()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError
            except ValueError:
                record = {"event": "_raw", "line": line}  # e.g. a traceback: kept for diagnostics
            with self._cond:
                self.records.append(record)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    # --- waiting on the log ----------------------------------------------------------------------

    def events(self, name: str, predicate: Predicate | None = None) -> list[Record]:
        with self._cond:
            return [r for r in self.records if r.get("event") == name and (predicate is None or predicate(r))]

    def wait_for_event(self, name: str, predicate: Predicate | None = None, timeout: float = 20.0) -> Record:
        """The first record named `name` (matching `predicate`); fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for r in self.records:
                    if r.get("event") == name and (predicate is None or predicate(r)):
                        return r
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    break
                self._cond.wait(left)
        why = "exited" if self._eof else f"no such event within {timeout}s"
        raise AssertionError(f"{self.name}: waiting for {name!r}: {why}\n{self.tail()}")

    async def event(self, name: str, predicate: Predicate | None = None, timeout: float = 20.0) -> Record:
        """`wait_for_event` without blocking the test's event loop."""
        return await asyncio.to_thread(self.wait_for_event, name, predicate, timeout)

    def tail(self, n: int = 40) -> str:
        with self._cond:
            return "\n".join(json.dumps(r, default=str) for r in self.records[-n:])

    # --- controlling the process -----------------------------------------------------------------

    def signal(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name}: still running after {timeout}s\n{self.tail()}") from None
        if self._reader is not None:
            self._reader.join(5)  # all of stderr is read once the pipe closes
        return code

    async def exit(self, timeout: float = 15.0) -> int:
        return await asyncio.to_thread(self.wait_exit, timeout)

    async def expect_exit(self, code: int, timeout: float = 15.0) -> None:
        """Wait for the exit and check its code, showing the log's tail when it differs."""
        got = await self.exit(timeout)
        assert got == code, f"{self.name}: exit code {got}, expected {code}\n{self.tail()}"

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc is not None and self.proc.stderr is not None and self._reader is not None:
            self._reader.join(5)
            self.proc.stderr.close()


async def poll_until(check: Callable[[], Awaitable[Any]], timeout: float = 10.0, every: float = 0.05,
                     what: str = "condition") -> Any:
    """Call `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s (last: {value!r})")
        await asyncio.sleep(every)


async def wait_job_state(db: asyncpg.Pool, job_id: Any, states: set[str] | str,
                         timeout: float = 10.0) -> asyncpg.Record:
    wanted = {states} if isinstance(states, str) else states

    async def check() -> asyncpg.Record | None:
        row = await db.fetchrow("SELECT * FROM _ayb_jobs WHERE id = $1", job_id)
        return row if row is not None and row["state"] in wanted else None

    return await poll_until(check, timeout, what=f"job {job_id} in {sorted(wanted)}")


async def insert_job(db: asyncpg.Pool, job_type: str, payload: dict[str, Any] | None = None,
                     max_attempts: int = 3) -> Any:
    """A job inserted by plain SQL, as another language would (no NOTIFY)."""
    return await db.fetchval(
        "INSERT INTO _ayb_jobs (type, payload, max_attempts) VALUES ($1, $2::jsonb, $3) RETURNING id",
        job_type, json.dumps(payload or {}), max_attempts)
