"""Import directions between the layers: fronts talk to the service, not to SQL; the
service knows nothing of the runtime; runtime loops know nothing of the fronts; only
runtime/daemon.py wires concrete pieces together. Checked on the source, imports inside functions
included, so a shortcut cannot creep in unnoticed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ayb_jobs"
FRONTS = ("ayb_jobs.api", "ayb_jobs.dashboard", "ayb_jobs.cli")
LEAVES = ("ayb_jobs.errors", "ayb_jobs.models", "ayb_jobs.cron", "ayb_jobs.backoff")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


MODULES = {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def under(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def offending(module: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(i for i in MODULES[module] if under(i, *forbidden))


@pytest.mark.parametrize("module", [m for m in MODULES if under(m, *FRONTS)])
def test_fronts_go_through_the_service_not_the_database_or_the_runtime(module: str) -> None:
    forbidden = ("asyncpg", "ayb_jobs.db", "ayb_jobs.runtime", "ayb_jobs.handlers.builtin")
    # `ayb-jobs run` and `migrate` work on the database directly: the CLI's local commands
    # start the daemon's composition root and the migration runner, nothing else below the service.
    allowed = {"ayb_jobs.runtime.daemon", "ayb_jobs.db.migrate"} if module == "ayb_jobs.cli.local" else set()
    assert [i for i in offending(module, forbidden) if i not in allowed] == []


def test_the_service_knows_nothing_of_the_runtime_or_the_fronts() -> None:
    assert offending("ayb_jobs.service", ("ayb_jobs.runtime", *FRONTS)) == []


@pytest.mark.parametrize(
    "module", [m for m in MODULES if under(m, "ayb_jobs.runtime") and m != "ayb_jobs.runtime.daemon"]
)
def test_runtime_loops_know_nothing_of_the_service_or_the_fronts(module: str) -> None:
    assert offending(module, ("ayb_jobs.service", *FRONTS)) == []


@pytest.mark.parametrize("module", [m for m in MODULES if under(m, "ayb_jobs.db")])
def test_the_database_layer_sits_below_everything(module: str) -> None:
    assert offending(module, ("ayb_jobs.runtime", "ayb_jobs.service", "ayb_jobs.handlers", *FRONTS)) == []


@pytest.mark.parametrize("module", LEAVES)
def test_leaves_import_only_leaves(module: str) -> None:
    ours = sorted(i for i in MODULES[module] if under(i, "ayb_jobs"))
    assert [i for i in ours if not under(i, *LEAVES)] == []
