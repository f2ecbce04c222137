"""`ayb-jobs` command line: the only place that prints for users and picks exit codes.

Exit codes: 0 success; 1 runtime failure (daemon or database unreachable, server error);
2 invalid configuration or usage (argparse errors, ConfigError, InvalidInput).

Commands register themselves on the subparsers: `local.add_commands` (run, migrate, config check,
health) and, when present, `admin.add_commands` (jobs …, schedules …). Every parser added through
these subparsers, at any depth, gets the shared options `--config --json --url --admin-token`, so they
are accepted after the command words. Each leaf parser sets `func(args) -> int`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from ayb_jobs import __version__
from ayb_jobs.errors import AybJobsError, ConfigError, InvalidInput, StartupError

_SHARED: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "config": (("--config",), {"metavar": "PATH", "help": "TOML config file (default: $AYB_CONFIG)"}),
    "json": (("--json",), {"action": "store_true", "help": "machine-readable output on stdout"}),
    "url": (("--url",), {"metavar": "URL", "help": "daemon base URL (default: http://<admin.listen>)"}),
    "admin_token": (
        ("--admin-token",),
        {
            "metavar": "TOKEN",
            "help": "admin API token (default: $AYB_ADMIN_TOKEN, admin.token, or the daemon's token file)",
        },
    ),
}


def common_options(*names: str) -> argparse.ArgumentParser:
    """The shared options (all, or only `names`), as a parent parser. Defaults are SUPPRESSed so that
    a value given before the command words is not overwritten by a sub-parser's default. `build_parser`
    sets the real defaults (None / False) once on the top parser, so `args.json`, `args.url`... always
    exist. A command passes `common_options("config", ...)` to list only the options that apply to it."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("shared options")
    for name in names or _SHARED:
        flags, kwargs = _SHARED[name]
        group.add_argument(*flags, default=argparse.SUPPRESS, **kwargs)
    return common


_COMMON = common_options()
_COMMON_FLAGS = frozenset({"--config", "--json", "--url", "--admin-token"})


def option(args: argparse.Namespace, name: str, default: Any = None) -> Any:
    """A shared option's value (`config`, `json`, `url`, `admin_token`), or `default` if not given."""
    return getattr(args, name, default)


class _SubParsers(argparse._SubParsersAction):
    """Adds the shared options to every sub-parser unless a given parent already defines them."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        parents = list(kwargs.get("parents", []))
        defined = {flag for p in parents for a in p._actions for flag in a.option_strings}
        if not defined & _COMMON_FLAGS:
            parents.append(_COMMON)
        kwargs["parents"] = parents
        return super().add_parser(name, **kwargs)


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose sub-parsers (at every depth) inherit the shared options."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register("action", "parsers", _SubParsers)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="ayb-jobs",
        description="Postgres-backed job queue and cron scheduler daemon.",
        # A separate instance: set_defaults below changes the action objects, which parents share.
        parents=[common_options()],
    )
    parser.add_argument("--version", action="version", version=f"ayb-jobs {__version__}")
    # Defaults live on the top parser only, so `args.json` etc. always exist (see common_options).
    parser.set_defaults(config=None, json=False, url=None, admin_token=None)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    subparsers.required = True
    from ayb_jobs.cli import local

    local.add_commands(subparsers)
    admin = _optional_module("ayb_jobs.cli.admin")
    if admin is not None:
        admin.add_commands(subparsers)
    return parser


def _optional_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:  # the module exists but one of its own imports is missing: a real bug
            raise
        return None


def _fail(message: str, code: int) -> int:
    print(f"ayb-jobs: {' '.join(message.split())}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `ayb-jobs` and `python -m ayb_jobs`; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage errors (2), --help and --version (0)
        return exc.code if isinstance(exc.code, int) else 2
    func = getattr(args, "func", None)
    if func is None:
        parser.print_usage(sys.stderr)
        return 2
    try:
        return int(func(args) or 0)
    except (ConfigError, InvalidInput) as exc:
        return _fail(exc.message, 2)
    except StartupError as exc:
        return _fail(exc.message, exc.exit_code)
    except AybJobsError as exc:
        return _fail(exc.message, 1)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`ayb-jobs jobs list | head`): not an error worth a traceback.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # keeps the interpreter's exit flush quiet
        return 0
