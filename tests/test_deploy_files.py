"""The shipped deployment files say what docs/deployment.md promises (checked as text, no YAML/Docker)."""

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
    assert unit["ExecStart"] == "/opt/ayb-jobs/venv/bin/ayb-jobs run --config /etc/ayb-jobs/config.toml"
    assert unit["User"] == "ayb" and unit["Group"] == "ayb"
    assert unit["StateDirectory"] == "ayb-jobs"
    assert int(unit["WatchdogSec"]) > 0
    assert int(unit["TimeoutStopSec"]) > 30  # above jobs.shutdown_timeout_s's default
    assert unit["KillSignal"] == "SIGTERM" and unit["KillMode"] == "mixed"
    assert unit["Restart"] == "on-failure"
    assert unit["NoNewPrivileges"] == "yes" and unit["ProtectSystem"] == "strict"


def documented_install() -> dict[str, str]:
    """The install commands written as comments in the unit: the venv and the pip that fills it."""
    comments = "\n".join(line for line in UNIT.read_text().splitlines() if line.startswith("#"))
    venv = re.search(r"python3 -m venv (\S+)", comments)
    assert venv, "the unit's comments do not say how to create the venv"
    assert f"{venv.group(1)}/bin/pip install ." in comments, "nor how to install ayb-jobs into it"
    assert "useradd --system" in comments and "/etc/ayb-jobs/config.toml" in comments
    return {"venv": venv.group(1)}


def test_unit_runs_the_program_the_documented_install_creates() -> None:
    program = unit_settings()["ExecStart"].split()[0]
    assert program == f"{documented_install()['venv']}/bin/ayb-jobs"


def systemd_root(tmp_path: Path, unit_text: str) -> Path:
    """A root directory holding systemd's own units, the given unit, and the documented venv with its
    `ayb-jobs` entry point (a copy of this environment's, which `pip install .` creates; the packaging
    test installs a wheel into a fresh venv for real)."""
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "etc/systemd/system/ayb-jobs.service").write_text(unit_text)
    venv = root / documented_install()["venv"].lstrip("/")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    entry_point = Path(sys.executable).parent / "ayb-jobs"
    assert entry_point.exists(), "run scripts/setup.sh: this environment has no ayb-jobs entry point"
    # A copy, not a symlink: systemd resolves links inside the root. Its #! names this environment's
    # python, as the real one names the venv's.
    shutil.copy2(entry_point, venv / "bin" / "ayb-jobs")
    return root


def verify(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", "ayb-jobs.service"],
        capture_output=True, text=True, timeout=60,
    )


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None or not Path("/usr/lib/systemd/system").is_dir(),
    reason="systemd not installed (scripts/test.sh installs it)",
)
def test_unit_file_passes_systemd_analyze_verify_after_the_documented_install(tmp_path: Path) -> None:
    root = systemd_root(tmp_path, UNIT.read_text())
    result = verify(root)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "ayb-jobs.service" not in result.stderr, result.stderr  # no warnings about our unit
    # The same check fails for a unit whose program the install does not create.
    elsewhere = UNIT.read_text().replace(unit_settings()["ExecStart"].split()[0], "/usr/local/bin/ayb-jobs")
    (root / "etc/systemd/system/ayb-jobs.service").write_text(elsewhere)
    failed = verify(root)
    assert failed.returncode != 0 and "/usr/local/bin/ayb-jobs" in failed.stderr
