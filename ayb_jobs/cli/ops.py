"""`ayb-jobs audit list` and `ayb-jobs workers list`: operator views of a running daemon's admin API.

Registered by `admin.add_commands`; arguments are checked before any request, as for `jobs …`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ayb_jobs.audit import AuditAction
from ayb_jobs.cli import admin as a
from ayb_jobs.errors import InvalidInput


def add_commands(subparsers: argparse._SubParsersAction,
                 parents: Sequence[argparse.ArgumentParser] = ()) -> None:
    parents = list(parents)
    sub = a._group(subparsers, "audit", "the log of admin changes (who changed what, when)", parents)
    p = a._leaf(sub, "list", parents, cmd_audit_list, "list admin changes, newest first")
    p.add_argument("--action", help=f"only this action: {', '.join(AuditAction)}")
    p.add_argument("--limit", metavar="N", help="at most N entries (1-500, default 50)")
    p.add_argument("--offset", metavar="N", help="skip the first N entries")
    sub = a._group(subparsers, "workers", "daemons working on the queue", parents)
    a._leaf(sub, "list", parents, cmd_workers_list, "list daemons seen recently and the jobs they run")


def parse_action(text: str | None) -> str | None:
    if text is not None and text not in set(AuditAction):
        raise InvalidInput(f"--action must be one of {', '.join(AuditAction)}, got '{text}'")
    return text


def cmd_audit_list(args: argparse.Namespace) -> int:
    params = {
        "action": parse_action(args.action),
        "limit": a.parse_int(args.limit, "--limit", 1, 500),
        "offset": a.parse_int(args.offset, "--offset", 0),
    }
    data = a._call(args, "GET", "/audit", params=params)

    def text(d: dict[str, Any]) -> str:
        rows = [(e["at"], e["action"], e["target"], e["actor"], e["remoteAddr"], _detail(e["detail"]))
                for e in d["items"]]
        headers = ("AT", "ACTION", "TARGET", "ACTOR", "FROM", "DETAIL")
        return f"{a.table(headers, rows)}\n{d['count']} of {d['total']} entries"

    return a._emit(args, data, text)


def _detail(detail: dict[str, Any] | None) -> str:
    return a._short(json.dumps(detail, separators=(",", ":")) if detail else "")


def cmd_workers_list(args: argparse.Namespace) -> int:
    data = a._call(args, "GET", "/workers")

    def text(d: dict[str, Any]) -> str:
        rows = [(w["workerId"], w["host"], w["pid"], "yes" if w["alive"] else "GONE", w["lastSeenAt"],
                 f"{w['inFlight']}/{w['concurrency']}", _running(w["jobs"])) for w in d["items"]]
        headers = ("WORKER", "HOST", "PID", "ALIVE", "LAST SEEN", "BUSY", "RUNNING JOBS")
        alive = sum(1 for w in d["items"] if w["alive"])
        return f"{a.table(headers, rows)}\n{alive} alive, {len(d['items']) - alive} gone"

    return a._emit(args, data, text)


def _running(jobs: list[dict[str, Any]]) -> str:
    return ", ".join(f"{j['id']} ({j['type']}, {_since(j.get('startedAt'))})" for j in jobs) or "-"


def _since(started: str | None) -> str:
    if not started:
        return "?"
    began = datetime.fromisoformat(started)
    return f"running {a._age((datetime.now(UTC) - began).total_seconds())}"
