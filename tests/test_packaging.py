"""The wheel is the product: it builds, carries its data files, and runs from a fresh venv.

The schema lives once, in the top-level `migrations/`, installed as the package `ayb_jobs.migrations`:
a wheel carries the files, an editable install (scripts/setup.sh) reads them where they are.

Needs PyPI (the isolated build fetches setuptools; the install fetches the dependencies). Builds and
editable installs run on a copy of the sources so the work tree gets no build/ or egg-info leftovers.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
import zipfile
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "packaging-test-token-0123456789"
SOURCES = ("pyproject.toml", "README.md", "ayb_jobs", "migrations")
MIGRATIONS = ROOT / "migrations"

pytestmark = pytest.mark.slow


def run(argv: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert result.returncode == 0, f"{argv} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("packaging")


def copy_sources(dest: Path) -> Path:
    dest.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, dest / name)
    return dest


def source_files() -> list[Path]:
    """Every file the wheel must carry, relative to the checkout."""
    found = [p for top in ("ayb_jobs", "migrations") for p in (ROOT / top).rglob("*") if p.is_file()]
    return [p.relative_to(ROOT) for p in found if "__pycache__" not in p.parts and p.suffix != ".pyc"]


def migration_names() -> list[str]:
    return sorted(p.name for p in MIGRATIONS.glob("[0-9][0-9][0-9]*_*.sql"))


@pytest.fixture(scope="module")
def wheel(workdir: Path) -> Path:
    src = copy_sources(workdir / "src")
    run([sys.executable, "-m", "build", "--wheel", "--outdir", str(workdir / "dist"), str(src)], 120)
    [built] = (workdir / "dist").glob("ayb_jobs-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(workdir: Path, wheel: Path) -> Path:
    """A fresh venv holding only the wheel and its dependencies. It is created without pip (ensurepip
    is slow) and filled by the project's pip through --python."""
    path = workdir / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(path)], 60)
    run([sys.executable, "-m", "pip", "--python", str(path / "bin" / "python"), "install", "--no-compile",
         "--quiet", str(wheel)], 180)
    return path


def clean_env(**extra: str) -> dict[str, str]:
    drop = ("AYB_", "PYTHONPATH", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(extra)
    return env


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A working directory away from the source tree, so nothing imports from the checkout."""
    return tmp_path


def test_migrations_have_one_home():
    assert migration_names(), "no migrations in the top-level migrations/ folder"
    assert not (ROOT / "ayb_jobs" / "migrations").exists(), (
        "ayb_jobs/migrations/ must not exist: the schema lives in the top-level migrations/ "
        "(a leftover folder there would shadow it)"
    )


def test_wheel_carries_migrations_queries_and_dashboard(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"ayb_jobs/migrations/{m}" for m in migration_names()} <= names
    assert "ayb_jobs/db/queries.sql" in names
    assert any(n.startswith("ayb_jobs/dashboard/static/") for n in names)
    # The package list in pyproject.toml is written by hand: every source and data file must be in.
    expected = {str(p).replace("migrations/", "ayb_jobs/migrations/", 1) if p.parts[0] == "migrations"
                else str(p) for p in source_files()}
    missing = sorted(expected - names)
    assert not missing, f"not in the wheel (add the package to pyproject.toml): {missing}"
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "ayb-jobs = ayb_jobs.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_wheel_migrates_and_runs(venv: Path, outside: Path, empty_db_url: str):
    exe = str(venv / "bin" / "ayb-jobs")
    version = run([exe, "--version"], 30, cwd=outside, env=clean_env())
    expected = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert version.stdout.split() == ["ayb-jobs", expected]

    migrated = run([exe, "migrate"], 60, cwd=outside, env=clean_env(AYB_DATABASE_URL=empty_db_url))
    assert migrated.stdout.split() == [w for m in migration_names() for w in ("applied", m)]

    env = clean_env(AYB_DATABASE_URL=empty_db_url, AYB_JOBS_ENABLED="true", AYB_ADMIN_LISTEN="127.0.0.1:0",
                    AYB_ADMIN_TOKEN=TOKEN, AYB_LOG_FORMAT="json", AYB_ADMIN_TOKEN_FILE=str(outside / "tok"))
    with LoggedProcess([exe, "run"], cwd=outside, env=env) as daemon:
        started = daemon.wait_for("daemon_started", timeout=30)
        assert started["settings"]["jobs.enabled"] is True
        page = httpx.get(f"{started['admin_url']}/admin/", timeout=5, follow_redirects=True)
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]
        assert "<html" in page.text.lower()
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.proc.wait(20) == 0, daemon.tail()


@pytest.fixture(scope="module")
def editable(workdir: Path) -> tuple[Path, Path]:
    """A fresh venv with an editable install (as scripts/setup.sh makes) of a copy of the sources."""
    src = copy_sources(workdir / "editable-src")
    path = workdir / "editable-venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(path)], 60)
    run([sys.executable, "-m", "pip", "--python", str(path / "bin" / "python"), "install", "--no-compile",
         "--quiet", "-e", str(src)], 180)
    return src, path


def test_editable_install_migrates_from_the_top_level_folder(
    editable: tuple[Path, Path], outside: Path, empty_db_url: str
):
    src, venv_path = editable
    exe = str(venv_path / "bin" / "ayb-jobs")
    env = clean_env(AYB_DATABASE_URL=empty_db_url)
    migrated = run([exe, "migrate"], 60, cwd=outside, env=env)
    assert migrated.stdout.split() == [w for m in migration_names() for w in ("applied", m)]

    # A new file in the checkout's migrations/ is seen at once: there is no second copy to update.
    probe = src / "migrations" / "999_editable_probe.sql"
    probe.write_text("CREATE TABLE _editable_probe (id int);\n")
    try:
        again = run([exe, "migrate"], 60, cwd=outside, env=env)
    finally:
        probe.unlink()
    assert again.stdout.split() == ["applied", "999_editable_probe.sql"]


def test_leftover_old_migrations_folder_is_reported_not_silently_empty(
    editable: tuple[Path, Path], outside: Path, empty_db_url: str
):
    """An empty ayb_jobs/migrations/ (the old place, left behind by a checkout) would shadow the real
    package and make `migrate` find nothing; it must say so instead of 'schema is up to date'."""
    src, venv_path = editable
    stale = src / "ayb_jobs" / "migrations"
    stale.mkdir()
    try:
        exe = str(venv_path / "bin" / "ayb-jobs")
        env = clean_env(AYB_DATABASE_URL=empty_db_url)
        result = subprocess.run([exe, "migrate"], capture_output=True, text=True, timeout=60,
                                cwd=outside, env=env)
    finally:
        stale.rmdir()
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no migration files found" in result.stderr
    assert "leftover ayb_jobs/migrations/" in result.stderr
    assert "Traceback" not in result.stderr


def test_editable_install_from_before_the_move_is_told_to_reinstall(
    editable: tuple[Path, Path], outside: Path, empty_db_url: str
):
    """An editable install made while the files lived in ayb_jobs/migrations/ maps only `ayb_jobs`;
    after the move its `migrate` must say to reinstall, not print a traceback."""
    _src, venv_path = editable
    [finder] = (venv_path / "lib").glob("python3*/site-packages/__editable___ayb_jobs_*_finder.py")
    original = finder.read_text()
    assert "'ayb_jobs.migrations':" in original
    finder.write_text(re.sub(r", 'ayb_jobs\.migrations': '[^']*'", "", original))
    try:
        exe = str(venv_path / "bin" / "ayb-jobs")
        env = clean_env(AYB_DATABASE_URL=empty_db_url)
        result = subprocess.run([exe, "migrate"], capture_output=True, text=True, timeout=60,
                                cwd=outside, env=env)
    finally:
        finder.write_text(original)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the schema migrations are not installed; reinstall ayb-jobs" in result.stderr
    assert "Traceback" not in result.stderr


class LoggedProcess:
    """A child whose JSON log lines (stderr) are collected on a thread; killed on exit if still alive."""

    def __init__(self, argv: list[str], **popen: object) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, **popen)  # type: ignore[call-overload]
        self.records: list[dict] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            try:
                record = json.loads(raw)
            except ValueError:
                record = {"event": "_raw", "line": raw.decode(errors="replace").rstrip()}
            with self._cond:
                self.records.append(record)
                self._cond.notify_all()

    def wait_for(self, event: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for record in self.records:
                    if record.get("event") == event:
                        return record
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(f"no {event!r} (exit code {self.proc.poll()}):\n{self.tail()}")
                self._cond.wait(min(left, 0.5))

    def tail(self, n: int = 30) -> str:
        with self._cond:
            return "\n".join(json.dumps(r) for r in self.records[-n:])

    def __enter__(self) -> LoggedProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

