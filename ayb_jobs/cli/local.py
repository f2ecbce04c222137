"""Commands that work on the config and database directly: run, migrate, config check, health.

`run` and `migrate` import their implementation lazily, so the CLI (and `config check`) works even
where the daemon's heavier dependencies are not importable.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
from importlib import resources
from typing import Any

from ayb_jobs.cli import common_options, option
from ayb_jobs.config import Settings, load_settings, redact_dsn, settings_report
from ayb_jobs.errors import ConfigError, StartupError

HEALTH_TIMEOUT_S = 3.0


RUN_HELP = "run the daemon: job workers, cron scheduler, admin API and dashboard"
RUN_DESCRIPTION = (
    "Run the ayb-jobs daemon in the foreground until SIGTERM or Ctrl-C: it opens the database (or "
    "starts an embedded Postgres when database.url is empty), applies migrations, then runs the job "
    "workers and the cron scheduler (when jobs.enabled) and serves the admin API, dashboard, /healthz, "
    "/readyz and /metrics on admin.listen. Exit codes: 0 clean stop, 1 runtime failure, 2 bad config."
)
MIGRATE_HELP = "apply pending schema migrations to database.url"
MIGRATE_DESCRIPTION = (
    "Apply the pending schema migrations to the database named by database.url and exit; for "
    "deployments that run with database.auto_migrate = false. Embedded Postgres is migrated by `run`."
)
CHECK_HELP = "validate the configuration and print every setting with its source"
HEALTH_HELP = "exit 0 if the daemon answers /healthz (for Docker HEALTHCHECK)"
HEALTH_DESCRIPTION = (
    "Ask the daemon's /healthz (at --url, else http://<admin.listen>) and exit 0 if it answers 200, "
    "else 1. Needs no admin token."
)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser("run", help=RUN_HELP, description=RUN_DESCRIPTION,
                                parents=[common_options("config")])
    run.set_defaults(func=cmd_run)
    _add_set_option(run)

    migrate = subparsers.add_parser("migrate", help=MIGRATE_HELP, description=MIGRATE_DESCRIPTION,
                                    parents=[common_options("config", "json")])
    migrate.set_defaults(func=cmd_migrate)
    _add_set_option(migrate)

    config = subparsers.add_parser("config", help="configuration commands", description=CHECK_HELP,
                                   parents=[common_options("config", "json")])
    config_sub = config.add_subparsers(dest="config_command", metavar="COMMAND")
    config_sub.required = True
    check = config_sub.add_parser("check", help=CHECK_HELP, description=CHECK_HELP,
                                  parents=[common_options("config", "json")])
    check.set_defaults(func=cmd_config_check)
    _add_set_option(check)

    health = subparsers.add_parser("health", help=HEALTH_HELP, description=HEALTH_DESCRIPTION,
                                   parents=[common_options("config", "url", "json")])
    health.set_defaults(func=cmd_health)


def _add_set_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
        help="override one setting, above file and environment (e.g. --set jobs.worker_concurrency=8); "
             "repeatable",
    )


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    """--set pairs as {"section.key": "value"}; values are read like environment variables."""
    pairs: dict[str, str] = {}
    for item in getattr(args, "overrides", []):
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE with a dotted key, e.g. jobs.enabled=true")
        pairs[key.strip()] = value
    return pairs


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(option(args, "config"), overrides=_overrides(args))


def _lazy(module: str, name: str) -> Any:
    """Import `module.name` at call time; a missing piece is a one-line StartupError, not a traceback."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise StartupError(f"{module}.{name} is not available in this build: {exc}") from exc


# --- config check ----------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list) or value == "":
        return json.dumps(value)
    return str(value)


def cmd_config_check(args: argparse.Namespace) -> int:
    rows = settings_report(_settings(args))
    if option(args, "json"):
        data = {key: {"value": value, "source": source} for key, value, source in rows}
        print(json.dumps(data, indent=2))
        return 0
    table = [("KEY", "VALUE", "SOURCE")] + [(key, _text(value), source) for key, value, source in rows]
    key_w = max(len(r[0]) for r in table)
    value_w = max(len(r[1]) for r in table)
    for key, value, source in table:
        print(f"{key:<{key_w}}  {value:<{value_w}}  {source}")
    return 0


# --- migrate ---------------------------------------------------------------------------------------


def _migration_count() -> int:
    folder = resources.files("ayb_jobs.migrations")
    return sum(1 for f in folder.iterdir() if f.name.endswith(".sql")) if folder.is_dir() else 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if not settings.database.url:
        raise ConfigError(
            "migrate needs database.url (AYB_DATABASE_URL or [database] url in the config file); "
            "embedded Postgres is only started by `ayb-jobs run`, which migrates it itself"
        )
    migrate_dsn = _lazy("ayb_jobs.db.migrate", "migrate_dsn")
    from ayb_jobs.logs import configure_logging

    configure_logging(settings.log)
    try:
        applied = asyncio.run(migrate_dsn(settings.database.url))
    except OSError as exc:  # connection refused, DNS failure: not translated by the driver
        safe_url = redact_dsn(settings.database.url)
        print(f"ayb-jobs: cannot reach the database at {safe_url}: {redact_dsn(str(exc))}", file=sys.stderr)
        return 1
    if option(args, "json"):
        print(json.dumps({"applied": list(applied)}))
    elif applied:
        for name in applied:
            print(f"applied {name}")
    else:
        print(f"schema is up to date ({_migration_count()} migrations)")
    return 0


# --- run -------------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    daemon_main = _lazy("ayb_jobs.runtime.daemon", "main")
    from ayb_jobs.logs import configure_logging

    configure_logging(settings.log)  # idempotent: the daemon may configure again
    try:
        _check_token_file(settings)
        _import_handlers(settings)
    except StartupError as exc:
        # Logged like the daemon's own start-up failures, so log pipelines see one kind of event.
        import structlog

        structlog.get_logger("ayb_jobs.daemon").error(
            "daemon_start_failed", error=exc.message, exit_code=exc.exit_code
        )
        return exc.exit_code
    return int(daemon_main(settings))


def _check_token_file(settings: Settings) -> None:
    """A token file the daemon could not read or write is reported now, before anything starts."""
    admin = settings.admin
    if admin.enabled and not admin.token:
        from ayb_jobs.api.auth import check_token_file

        check_token_file(admin.resolved_token_file)


def _import_handlers(settings: Settings) -> None:
    """Put the handler search path in place and import each jobs.handlers module now, so that a
    module that cannot be found is one line (exit 2) before the database or Postgres is started."""
    from ayb_jobs.handlers import import_register, use_search_path

    use_search_path(settings.handler_search_path())
    for spec in settings.jobs.handlers:
        import_register(spec)


# --- health ----------------------------------------------------------------------------------------


def _base_url(args: argparse.Namespace) -> str:
    url = option(args, "url")
    if not url:
        admin = _settings(args).admin
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(admin.host, admin.host)
        url = f"{f'[{host}]' if ':' in host else host}:{admin.port}"
    if "://" not in url:
        url = f"http://{url}"
    return url.rstrip("/")


def cmd_health(args: argparse.Namespace) -> int:
    import httpx

    url = f"{_base_url(args)}/healthz"
    try:
        response = httpx.get(url, timeout=HEALTH_TIMEOUT_S)
    except httpx.HTTPError as exc:
        return _health_result(args, url, False, f"no answer from {url}: {exc or type(exc).__name__}")
    if response.status_code != 200:
        return _health_result(args, url, False, f"{url} answered {response.status_code}")
    return _health_result(args, url, True, f"ok: {url} answered 200")


def _health_result(args: argparse.Namespace, url: str, ok: bool, line: str) -> int:
    if option(args, "json"):
        print(json.dumps({"ok": ok, "url": url, "message": line}))
    else:
        print(line if ok else f"ayb-jobs: {' '.join(line.split())}", file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1
