"""A newcomer's first hour, scripted on a fresh copy of the checkout.

Two `scripts/setup.sh` at once (as when both README commands are started together), then
`scripts/run.sh` (on a scratch database of the local server rather than embedded Postgres), with a
handler module dropped beside the config file; `/` must lead to the dashboard; then the CLI exactly
as run.sh tells the user to run it: it must find the token run.sh generated, say "token rejected"
for a wrong one and say how to give one when it finds none. The copy gets its own virtualenv, so
this takes about a minute.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
SETUP_TIMEOUT_S = 300
START_TIMEOUT_S = 60
JOB_TIMEOUT_S = 30

pytestmark = pytest.mark.slow

HANDLER_MODULE = '''
async def greet(payload, ctx):
    return {"greeting": "hello " + payload.get("name", "world")}


def register(registry):
    registry.add("newcomer_greet", greet, description="Say hello")
'''


def newcomer_env(home: Path, **extra: str) -> dict[str, str]:
    """A shell without this test run's settings: no AYB_*, no virtualenv, no PYTHONPATH."""
    drop = ("AYB_", "VIRTUAL_ENV", "PYTHONPATH", "XDG_", "STATE_DIRECTORY", "PYTEST")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env.update(HOME=str(home), **extra)
    return env


def copy_checkout(dest: Path) -> None:
    """The files a clone would have (tracked and new, not ignored: no .venv, no data/)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True, timeout=60).stdout.split(b"\0")
    for name in filter(None, listed):
        source = ROOT / os.fsdecode(name)
        if source.is_file():
            target = dest / os.fsdecode(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
            target.chmod(source.stat().st_mode)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A fresh copy set up by two concurrent `scripts/setup.sh` runs; their results are kept."""
    base = tmp_path_factory.mktemp("newcomer")
    clone, home = base / "ayb-jobs", base / "home"
    clone.mkdir()
    home.mkdir()
    copy_checkout(clone)
    env = newcomer_env(home)
    started = time.monotonic()
    setups = [subprocess.Popen(["scripts/setup.sh"], cwd=clone, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=SETUP_TIMEOUT_S)[0] for p in setups]
    return {"clone": clone, "home": home, "base": base, "setup_s": time.monotonic() - started,
            "setups": [(p.returncode, out) for p, out in zip(setups, outputs, strict=True)]}


def test_two_setups_at_once_both_succeed(checkout) -> None:
    for code, output in checkout["setups"]:
        assert code == 0, output
        assert "File exists" not in output and "Errno 17" not in output, output
    exe = checkout["clone"] / ".venv" / "bin" / "ayb-jobs"
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("ayb-jobs ")


class RunSh:
    """`scripts/run.sh` in the copy; its stdout (the hints) and stderr (JSON logs) are collected."""

    def __init__(self, clone: Path, env: dict[str, str]) -> None:
        self.hints: list[str] = []
        self.events: list[dict[str, Any]] = []
        self.started = threading.Event()
        self.proc = subprocess.Popen(["scripts/run.sh"], cwd=clone, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._read_hints, daemon=True).start()
        threading.Thread(target=self._read_logs, daemon=True).start()

    def _read_hints(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.hints.append(line.rstrip("\n"))

    def _read_logs(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            try:
                self.events.append(json.loads(line))
            except ValueError:
                self.events.append({"event": "non_json_line", "line": line})
            if self.events[-1].get("event") == "daemon_started":
                self.started.set()
        self.started.set()

    def wait_started(self) -> dict[str, Any]:
        assert self.started.wait(START_TIMEOUT_S), "run.sh did not start the daemon in time"
        found = [e for e in self.events if e.get("event") == "daemon_started"]
        assert found, f"run.sh exited {self.proc.poll()}: {self.hints} {self.events}"
        return found[0]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # run.sh exec'd into the daemon: this is the daemon
        return self.proc.wait(START_TIMEOUT_S)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shell(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60)


def test_first_hour_with_run_sh(checkout, db_url) -> None:
    clone, home = checkout["clone"], checkout["home"]
    (clone / "newcomer_jobs.py").write_text(HANDLER_MODULE)  # beside config.example.toml
    port = free_port()
    env = newcomer_env(home, AYB_DATABASE_URL=db_url, AYB_ADMIN_LISTEN=f"127.0.0.1:{port}",
                       AYB_JOBS_HANDLERS='["newcomer_jobs:register"]', AYB_LOG_FORMAT="json")
    daemon = RunSh(clone, env)
    try:
        started = daemon.wait_started()
        assert "newcomer_greet" in started["job_types"]  # the module beside the config was found
        assert any(e.get("event") == "admin_token_generated" for e in daemon.events)
        assert (clone / "data" / "admin-token").exists()
        # The address run.sh printed, without its /admin/ path, leads to the dashboard.
        root = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert (root.status_code, root.headers["location"]) == (302, "/admin/")

        # The CLI exactly as run.sh says to use it: activate the venv, then the README's command.
        [hint] = [h for h in daemon.hints if "source .venv/bin/activate" in h]
        command = hint.split("then e.g. ", 1)[1]
        assert command == f"ayb-jobs jobs stats --url http://127.0.0.1:{port}"
        user_env = newcomer_env(home)
        activate = "source .venv/bin/activate && "
        stats = shell(activate + command + " --json", clone, user_env)
        assert stats.returncode == 0, stats.stderr
        assert json.loads(stats.stdout)["queued"] >= 0

        url = f"--url http://127.0.0.1:{port}"
        types = shell(f"{activate}ayb-jobs jobs types {url}", clone, user_env)
        assert types.returncode == 0 and "newcomer_greet" in types.stdout, types.stderr
        job = json.loads(shell(f"{activate}ayb-jobs jobs enqueue newcomer_greet --payload "
                               f"'{{\"name\": \"you\"}}' {url} --json", clone, user_env).stdout)
        assert wait_for_state(clone, user_env, url, job["id"]) == "completed"

        wrong = shell(f"{activate}ayb-jobs jobs stats {url} --admin-token not-the-token-0000", clone,
                      user_env)
        assert wrong.returncode == 1 and "token rejected" in wrong.stderr, wrong.stderr

        elsewhere = checkout["base"] / "elsewhere"
        elsewhere.mkdir(exist_ok=True)
        exe = clone / ".venv" / "bin" / "ayb-jobs"
        missing = shell(f"{exe} jobs stats {url}", elsewhere, user_env)
        assert missing.returncode == 1 and "no admin token was found" in missing.stderr
        assert "--admin-token" in missing.stderr and "AYB_ADMIN_TOKEN_FILE" in missing.stderr
    finally:
        code = daemon.stop()
    assert code == 0, daemon.events[-5:]


def wait_for_state(clone: Path, env: dict[str, str], url: str, job_id: str) -> str:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while True:
        got = shell(f".venv/bin/ayb-jobs jobs get {job_id} {url} --json", clone, env)
        state = json.loads(got.stdout)["state"] if got.returncode == 0 else got.stderr
        if state in ("completed", "failed") or time.monotonic() > deadline:
            return state
