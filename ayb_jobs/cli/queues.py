"""`ayb-jobs queues list|get|pause|resume|set`: queues of a running daemon's admin API.

Registered by `admin.add_commands`; arguments are checked before any request (exit 2), as for `jobs …`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from ayb_jobs.cli import admin as a
from ayb_jobs.errors import InvalidInput


def add_commands(subparsers: argparse._SubParsersAction,
                 parents: Sequence[argparse.ArgumentParser] = ()) -> None:
    parents = list(parents)
    sub = a._group(subparsers, "queues", "queues: depth, pause/resume, global concurrency limits", parents)
    a._leaf(sub, "list", parents, cmd_queues_list, "list queues with settings or live jobs, and their depth")
    for name, func, text in (
        ("get", cmd_queues_get, "show one queue"),
        ("pause", cmd_queues_pause, "pause a queue: its jobs stay queued; running ones finish"),
        ("resume", cmd_queues_resume, "resume a paused queue"),
    ):
        a._leaf(sub, name, parents, func, text).add_argument("name", metavar="NAME")
    p = a._leaf(sub, "set", parents, cmd_queues_set, "change a queue's settings")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--concurrency", metavar="N|none",
                   help="at most N of its jobs run at once across all daemons; 'none' removes the limit")


def _name(text: str) -> str:
    return a.parse_queue(text, "NAME") or text


def parse_concurrency(text: str | None) -> tuple[bool, int | None]:
    """(given, value): 'none' is given with value None (clear the limit)."""
    if text is None:
        return False, None
    if text.strip().lower() == "none":
        return True, None
    return True, a.parse_int(text, "--concurrency", 1, 100_000)


def _line(verb: str) -> Callable[[dict[str, Any]], str]:
    def line(q: dict[str, Any]) -> str:
        limit = q["concurrency"] if q["concurrency"] is not None else "no limit"
        state = "paused" if q["paused"] else "active"
        return (f"{verb} queue {q['name']}: {state}, concurrency {limit}; {q['queued']} queued "
                f"({q['scheduled']} scheduled), {q['running']} running")

    return line


def cmd_queues_list(args: argparse.Namespace) -> int:
    data = a._call(args, "GET", "/queues")

    def text(d: dict[str, Any]) -> str:
        rows = [(q["name"], "yes" if q["paused"] else "no",
                 q["concurrency"] if q["concurrency"] is not None else "-", q["queued"], q["scheduled"],
                 q["running"], a._age(q["oldestDueAgeSec"])) for q in d["items"]]
        headers = ("QUEUE", "PAUSED", "LIMIT", "QUEUED", "SCHEDULED", "RUNNING", "OLDEST DUE")
        return f"{a.table(headers, rows)}\n{len(rows)} queues"

    return a._emit(args, data, text)


def cmd_queues_get(args: argparse.Namespace) -> int:
    return a._emit(args, a._call(args, "GET", f"/queues/{_name(args.name)}"), _line("queue"))


def cmd_queues_pause(args: argparse.Namespace) -> int:
    return a._emit(args, a._call(args, "POST", f"/queues/{_name(args.name)}/pause"), _line("paused"))


def cmd_queues_resume(args: argparse.Namespace) -> int:
    return a._emit(args, a._call(args, "POST", f"/queues/{_name(args.name)}/resume"), _line("resumed"))


def cmd_queues_set(args: argparse.Namespace) -> int:
    name = _name(args.name)
    given, concurrency = parse_concurrency(args.concurrency)
    if not given:
        raise InvalidInput("nothing to set: pass --concurrency N or --concurrency none")
    data = a._call(args, "PUT", f"/queues/{name}", body={"concurrency": concurrency})
    return a._emit(args, data, _line("updated"))
