"""`ayb-jobs run` as a real process: what is checked before anything starts (DSN, token file, handler
modules), where handler modules are found, and what the log says about the admin token."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

# Nothing listens there: a command that got as far as connecting would fail differently (exit 1).
UNREACHABLE_DSN = "postgresql://postgres@127.0.0.1:1/nothing"
START_TIMEOUT_S = 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AYB_", "STATE_DIRECTORY", "XDG_"))}
    env.update(HOME=str(home), AYB_LOG_FORMAT="json", AYB_ADMIN_LISTEN=f"127.0.0.1:{free_port()}", **extra)
    return env


def run_cli(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ayb_jobs", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def one_line_error(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert result.stderr.startswith("ayb-jobs: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def start_failure(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """`run` refused to start: one `daemon_start_failed` log line (JSON here), nothing else."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    [line] = result.stderr.splitlines()
    record = json.loads(line)
    assert (record["event"], record["level"], record["exit_code"]) == ("daemon_start_failed", "error", code)
    return record["error"]


class Daemon:
    """`python -m ayb_jobs run` with JSON logs; `events` collects the parsed log lines."""

    def __init__(self, env: dict[str, str], cwd: Path, *args: str) -> None:
        self.events: list[dict[str, Any]] = []
        self.started = threading.Event()
        self.proc = subprocess.Popen([sys.executable, "-m", "ayb_jobs", "run", *args], env=env, cwd=cwd,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "non_json_line", "line": line}
            self.events.append(event)
            if event.get("event") == "daemon_started":
                self.started.set()
        self.started.set()  # the process ended: wake the waiter

    def wait_started(self) -> dict[str, Any]:
        assert self.started.wait(START_TIMEOUT_S), "daemon did not start in time"
        started = self.named("daemon_started")
        assert started, f"daemon exited {self.proc.poll()}: {self.events}"
        return started[0]

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == name]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(START_TIMEOUT_S)
        self._reader.join(5)
        return code


@pytest.fixture
def daemons():
    started: list[Daemon] = []

    def start(env: dict[str, str], cwd: Path, *args: str) -> Daemon:
        daemon = Daemon(env, cwd, *args)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait(10)


# --- checked before anything starts ---------------------------------------------------------------


@pytest.mark.parametrize("command", [["run"], ["migrate"], ["config", "check"]])
def test_malformed_dsn_is_one_line_without_the_password_for_every_command(tmp_path, command):
    env = clean_env(tmp_path, AYB_DATABASE_URL="postgresql://app:PW/x@host:1/db")
    message = one_line_error(run_cli(*command, env=env))
    assert "database.url" in message and "env AYB_DATABASE_URL" in message and "PW" not in message


@pytest.mark.parametrize("case", ["directory", "under_a_file", "read_only_dir"])
def test_unusable_token_file_stops_run_before_the_database_is_touched(tmp_path, case):
    if case == "directory":
        token_file = tmp_path / "tokens"
        token_file.mkdir()
    elif case == "under_a_file":
        (tmp_path / "plain").write_text("x")
        token_file = tmp_path / "plain" / "admin-token"
    else:
        if os.geteuid() == 0:
            pytest.skip("root can write into a read-only directory")
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        token_file = locked / "sub" / "admin-token"
    env = clean_env(tmp_path, AYB_DATABASE_URL=UNREACHABLE_DSN, AYB_ADMIN_TOKEN_FILE=str(token_file))
    message = start_failure(run_cli("run", env=env))
    assert f"admin.token_file {token_file}" in message and "AYB_ADMIN_TOKEN_FILE" in message


def test_handler_module_that_cannot_be_found_says_what_to_do_before_starting(tmp_path):
    conf = tmp_path / "etc" / "ayb.toml"
    conf.parent.mkdir()
    conf.write_text('[jobs]\nhandlers = ["myapp.jobs:register"]\n')
    env = clean_env(tmp_path, AYB_DATABASE_URL=UNREACHABLE_DSN)
    message = start_failure(run_cli("run", "--config", str(conf), env=env, cwd=tmp_path))
    assert "no module named 'myapp'" in message and "jobs.handlers_path" in message
    assert str(conf.parent) in message and str(tmp_path) in message  # the directories searched


# --- handler modules beside the config file or in the working directory ----------------------------


HANDLER_PACKAGE = """
    async def hello(payload, ctx):
        return {"hello": payload.get("name", "world")}

    def register(registry):
        registry.add("{name}", hello, description="says hello")
"""


def write_package(parent: Path, package: str, type_name: str) -> None:
    (parent / package).mkdir(parents=True)
    (parent / package / "__init__.py").write_text("")
    (parent / package / "jobs.py").write_text(textwrap.dedent(HANDLER_PACKAGE).replace("{name}", type_name))


def test_handler_modules_beside_the_config_and_in_the_working_directory_are_found(
    tmp_path, db_url, daemons
):
    conf_dir, work = tmp_path / "etc", tmp_path / "work"
    write_package(conf_dir, "besideconf", "beside_config")
    write_package(work, "incwd", "in_working_dir")
    (conf_dir / "ayb.toml").write_text(
        '[jobs]\nenabled = true\nhandlers = ["besideconf.jobs:register", "incwd.jobs:register"]\n'
    )
    env = clean_env(tmp_path, AYB_DATABASE_URL=db_url, AYB_ADMIN_TOKEN="t" * 20)
    daemon = daemons(env, work, "--config", str(conf_dir / "ayb.toml"))
    started = daemon.wait_started()
    assert {"beside_config", "in_working_dir"} <= set(started["job_types"])
    assert daemon.stop() == 0


# --- what the log says about the admin token --------------------------------------------------------


def test_token_is_generated_once_then_reused_and_a_readable_file_is_fixed(tmp_path, db_url, daemons):
    token_file = tmp_path / "state" / "admin-token"
    env = clean_env(tmp_path, AYB_DATABASE_URL=db_url, AYB_ADMIN_TOKEN_FILE=str(token_file))

    first = daemons(env, tmp_path)
    first.wait_started()
    assert [e["token_file"] for e in first.named("admin_token_generated")] == [str(token_file)]
    assert first.stop() == 0
    token = token_file.read_text().strip()
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600

    token_file.chmod(0o644)  # e.g. copied into place with cp
    second = daemons(env, tmp_path)
    second.wait_started()
    assert second.named("admin_token_generated") == []
    assert [e["token_file"] for e in second.named("admin_token_loaded")] == [str(token_file)]
    [fixed] = second.named("admin_token_file_mode_fixed")
    assert (fixed["old_mode"], fixed["new_mode"], fixed["level"]) == ("0644", "0600", "warning")
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token_file.read_text().strip() == token
    assert token not in json.dumps(second.events)
    assert second.stop() == 0
