"""`ayb-jobs config check` as a real process: settings with sources; bad config = one line, exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from ayb_jobs.cli import main

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, env: dict[str, str] | None = None, home: Path) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("AYB_")}
    clean.update({"HOME": str(home), "XDG_DATA_HOME": "", "STATE_DIRECTORY": ""}, **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "ayb_jobs", *args], env=clean, capture_output=True, text=True, timeout=30
    )


def config_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "ayb.toml"
    path.write_text(text)
    return str(path)


def test_good_config_prints_values_and_sources(tmp_path):
    path = config_file(tmp_path, '[jobs]\nworker_concurrency = 8\n[database]\nurl = "postgres://a:pw1@h/d"\n')
    result = run_cli("config", "check", "--config", path, env={"AYB_JOBS_ENABLED": "true"}, home=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()}
    assert rows["jobs.worker_concurrency"] == ["8", "file"]
    assert rows["jobs.enabled"] == ["true", "env"]
    assert rows["jobs.poll_interval_ms"] == ["1000", "default"]
    assert rows["database.url"] == ["postgres://a:***@h/d", "file"]
    assert rows["database.embedded_data_dir"] == [f"{tmp_path}/.local/share/ayb-jobs/postgres", "default"]
    assert "pw1" not in result.stdout


def test_json_output_is_machine_readable(tmp_path):
    result = run_cli("config", "check", "--json", env={"AYB_ADMIN_TOKEN": "s" * 20}, home=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["admin.token"] == {"value": "***", "source": "env"}
    assert data["jobs.handlers"] == {"value": [], "source": "default"}


def test_set_flag_beats_file_and_env(tmp_path):
    path = config_file(tmp_path, "[jobs]\nworker_concurrency = 8\n")
    result = run_cli("config", "check", "--config", path, "--set", "jobs.worker_concurrency=5", "--json",
                     env={"AYB_JOBS_WORKER_CONCURRENCY": "6"}, home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["jobs.worker_concurrency"] == {"value": 5, "source": "cli"}


@pytest.mark.parametrize(
    ("flag", "fragment"),
    [
        ("jobs.worker_concurrency=0", "jobs.worker_concurrency"),
        ("jobs.enabled=yes", "jobs.enabled"),
        ("jobs.no_such_key=1", "jobs.no_such_key"),
        ("worker_concurrency", "KEY=VALUE"),
    ],
)
def test_bad_set_flag_is_one_line_and_exit_2(tmp_path, flag, fragment):
    result = run_cli("config", "check", "--set", flag, home=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and fragment in result.stderr


def test_example_config_checks_clean(tmp_path):
    result = run_cli("config", "check", "--config", str(REPO / "config.example.toml"), home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("file_text", "env", "expected"),
    [
        ("[jobs]\nworker_concurrency = 1025", {},
         ["jobs.worker_concurrency = 1025", "between 1 and 1024", "file"]),
        ("[jobs]\nworkers = 2\n", {}, ["jobs.workers", "file"]),
        ("", {"AYB_JOBS_FOO": "1"}, ["jobs.foo", "AYB_JOBS_FOO"]),
        ("[jobs]\nenabled = 'yes'\n", {}, ["jobs.enabled", "yes", "file"]),
        ("", {"AYB_ADMIN_ENABLED": "2"}, ["admin.enabled", "AYB_ADMIN_ENABLED"]),
        ("[jobs\n", {}, ["not valid TOML"]),
        (None, {}, ["missing.toml", "does not exist"]),
    ],
    ids=["range", "unknown-file-key", "unknown-env-key", "bool-file", "bool-env", "toml", "missing"],
)
def test_bad_config_is_one_line_on_stderr_and_exit_2(tmp_path, file_text, env, expected):
    path = str(tmp_path / "missing.toml") if file_text is None else config_file(tmp_path, file_text)
    result = run_cli("config", "check", "--config", path, env=env, home=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    for part in expected:
        assert part in result.stderr


def test_shared_options_are_accepted_before_the_command_and_usage_errors_exit_2(tmp_path):
    path = config_file(tmp_path, "[log]\nlevel = 'debug'\n")
    result = run_cli("--config", path, "config", "check", "--json", home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["log.level"] == {"value": "debug", "source": "file"}
    assert run_cli("config", "check", "--no-such-flag", home=tmp_path).returncode == 2
    assert run_cli("config", home=tmp_path).returncode == 2


def test_migrate_without_database_url_is_a_one_line_error(tmp_path):
    result = run_cli("migrate", home=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and "database.url" in result.stderr


def test_health_reports_a_daemon_that_is_not_running(tmp_path):
    result = run_cli("health", "--url", "http://127.0.0.1:9", home=tmp_path)
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1 and "http://127.0.0.1:9/healthz" in result.stderr


def test_shared_options_reach_commands_added_by_the_admin_module(monkeypatch):
    """ayb_jobs.cli.admin (another module) adds nested commands; the shared options work at any depth."""
    seen = []

    def add_commands(subparsers):
        jobs = subparsers.add_parser("jobs").add_subparsers(dest="jobs_command", required=True)
        listing = jobs.add_parser("list")
        listing.add_argument("--state")
        listing.set_defaults(func=lambda args: seen.append(args) or 0)

    monkeypatch.setitem(sys.modules, "ayb_jobs.cli.admin", types.SimpleNamespace(add_commands=add_commands))
    assert (
        main(["jobs", "list", "--state", "failed", "--json", "--url", "http://d", "--admin-token", "t"]) == 0
    )
    assert main(["--json", "--config", "c.toml", "jobs", "list"]) == 0
    assert main(["jobs", "list"]) == 0
    first, second, third = seen
    assert (first.state, first.json, first.url, first.admin_token, first.config) == (
        "failed",
        True,
        "http://d",
        "t",
        None,
    )
    assert (second.json, second.config) == (True, "c.toml")
    assert (third.json, third.url, third.admin_token, third.config) == (False, None, None, None)
    assert main(["jobs"]) == 2
