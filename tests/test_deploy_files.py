"""The shipped deployment files say what SPEC §13 promises (checked as text: no YAML/Docker needed)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "deploy" / "ayb-jobs.service"


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def unit_settings() -> dict[str, str]:
    settings = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    return settings


def test_dockerfile_runs_the_daemon_as_non_root_with_a_healthcheck() -> None:
    steps = dockerfile_instructions()
    kinds = dict(steps)  # the last occurrence wins, as in Docker
    assert steps[0][0] == "FROM" and "python:3.11-slim" in steps[0][1]
    user = kinds["USER"].split(":")[0]
    assert user and user not in ("root", "0")
    assert kinds["STOPSIGNAL"] == "SIGTERM"
    assert kinds["ENTRYPOINT"] == '["ayb-jobs"]'
    assert kinds["CMD"] == '["run"]'
    assert re.search(r'CMD \["ayb-jobs",\s*"health"\]', kinds["HEALTHCHECK"])
    assert any(kind == "RUN" and "pip install ." in rest for kind, rest in steps)
    # USER comes after the install steps, so the runtime (and HEALTHCHECK) is unprivileged.
    order = [kind for kind, _ in steps]
    assert order.index("USER") > max(i for i, (kind, _) in enumerate(steps) if kind == "RUN")


def test_dockerignore_keeps_the_build_inputs() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert ".git" in ignored and ".venv" in ignored
    assert not ignored & {"ayb_jobs", "migrations", "pyproject.toml", "README.md", "*", "**"}


def test_dockerfile_copies_the_top_level_migrations() -> None:
    """`pip install .` in the image needs the schema folder, which lives outside the package."""
    copies = [line.split()[1] for line in (ROOT / "Dockerfile").read_text().splitlines()
              if line.startswith("COPY ")]
    assert "ayb_jobs" in copies and "migrations" in copies


def test_compose_runs_ayb_jobs_after_a_healthy_postgres() -> None:
    text = (ROOT / "compose.yaml").read_text()
    assert "\t" not in text  # YAML forbids tabs for indentation
    services = top_level_block(text, "services")
    assert re.search(r"^  ayb-jobs:$", services, re.M)
    assert re.search(r"^  postgres:$", services, re.M)
    assert re.search(r"^\s+image: postgres:15$", services, re.M)
    assert re.search(r"^\s+healthcheck:$", services, re.M) and "pg_isready" in services
    assert re.search(r"depends_on:\n\s+postgres:\n\s+condition: service_healthy", services)
    assert re.search(r"AYB_JOBS_ENABLED: \"true\"", services)
    assert "AYB_DATABASE_URL: postgresql://" in services and "@postgres:5432/" in services


def test_compose_parses_when_a_yaml_library_is_present() -> None:
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load((ROOT / "compose.yaml").read_text())
    app = doc["services"]["ayb-jobs"]
    assert app["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert app["environment"]["AYB_JOBS_ENABLED"] == "true"
    assert doc["services"]["postgres"]["image"] == "postgres:15"


def top_level_block(text: str, key: str) -> str:
    match = re.search(rf"^{key}:\n((?:(?:  .*)?\n)*)", text, re.M)
    assert match, f"no top-level '{key}:' block"
    return match.group(1)


def test_unit_file_settings() -> None:
    unit = unit_settings()
    assert unit["Type"] == "notify" and unit["NotifyAccess"] == "main"
    assert unit["ExecStart"] == "/usr/local/bin/ayb-jobs run --config /etc/ayb-jobs/config.toml"
    assert unit["User"] == "ayb" and unit["Group"] == "ayb"
    assert unit["StateDirectory"] == "ayb-jobs"
    assert int(unit["WatchdogSec"]) > 0
    assert int(unit["TimeoutStopSec"]) > 30  # above jobs.shutdown_timeout_s's default
    assert unit["KillSignal"] == "SIGTERM" and unit["KillMode"] == "mixed"
    assert unit["Restart"] == "on-failure"
    assert unit["NoNewPrivileges"] == "yes" and unit["ProtectSystem"] == "strict"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_unit_file_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify insists that ExecStart's program exists, and /usr/local/bin/ayb-jobs is only there once
    # installed. Point a copy at this environment's ayb-jobs (installed by `pip install -e .`);
    # everything else is checked as shipped.
    exe = Path(sys.executable).parent / "ayb-jobs"
    if not exe.exists():
        exe = Path("/bin/true")
    unit = tmp_path / "ayb-jobs.service"
    unit.write_text(UNIT.read_text().replace("ExecStart=/usr/local/bin/ayb-jobs", f"ExecStart={exe}"))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "ayb-jobs.service" not in result.stderr, result.stderr  # no warnings about our unit
