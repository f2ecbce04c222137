"""`ayb-jobs jobs …` and `ayb-jobs schedules …`: clients of a running daemon's admin API (docs/admin-api.md).

Every argument is checked here before any request (bad UUID, JSON, cron, number → InvalidInput, exit 2);
the server's errors are printed with its message (exit 1). Numbers are parsed by hand rather than by
argparse so that a bad one is one line on stderr, like every other usage error.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from ayb_jobs import cron
from ayb_jobs.cli import option
from ayb_jobs.cli.client import AdminClient, connect
from ayb_jobs.errors import InvalidInput
from ayb_jobs.models import JobState

ERROR_WIDTH = 60


def add_commands(
    subparsers: argparse._SubParsersAction, parents: Sequence[argparse.ArgumentParser] = ()
) -> None:
    """Register `jobs` and `schedules`. `parents` (the shared options) is optional: the CLI's own
    subparsers action already adds them to every parser."""
    _add_jobs(subparsers, list(parents))
    _add_schedules(subparsers, list(parents))
    from ayb_jobs.cli import ops, queues  # audit, workers, queues (they import this module's helpers)

    ops.add_commands(subparsers, list(parents))
    queues.add_commands(subparsers, list(parents))


def _leaf(
    sub: argparse._SubParsersAction,
    name: str,
    parents: list[argparse.ArgumentParser],
    func: Callable[[argparse.Namespace], int],
    help_text: str,
) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text, description=help_text, parents=parents)
    parser.set_defaults(func=func)
    return parser


def _group(
    subparsers: argparse._SubParsersAction, name: str, help_text: str, parents: list[argparse.ArgumentParser]
) -> argparse._SubParsersAction:
    parser = subparsers.add_parser(name, help=help_text, description=help_text, parents=parents)
    sub = parser.add_subparsers(dest=f"{name}_command", metavar="COMMAND")
    sub.required = True
    return sub


def _add_jobs(subparsers: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    sub = _group(subparsers, "jobs", "inspect and manage jobs of a running daemon", parents)
    p = _leaf(sub, "list", parents, cmd_jobs_list, "list jobs, newest first")
    p.add_argument("--state", help="queued, running, completed, failed or canceled")
    p.add_argument("--type", dest="job_type", metavar="TYPE", help="only jobs of this type")
    p.add_argument("--queue", metavar="NAME", help="only jobs of this queue")
    p.add_argument("--limit", metavar="N", help="at most N jobs (1-500, default 50)")
    p.add_argument("--offset", metavar="N", help="skip the first N jobs")
    _leaf(sub, "get", parents, cmd_jobs_get, "show one job").add_argument("id", metavar="ID")
    p = _leaf(sub, "explain", parents, cmd_jobs_explain, "why a job is (not) running, and what to do")
    p.add_argument("id", metavar="ID")
    p = _leaf(sub, "enqueue", parents, cmd_jobs_enqueue, "enqueue a job of a registered type")
    p.add_argument("job_type", metavar="TYPE")
    p.add_argument("--payload", metavar="JSON", help="a JSON object (default {})")
    p.add_argument("--run-at", metavar="ISO", help="not before this time, e.g. 2026-01-01T00:00:00Z")
    p.add_argument("--max-attempts", metavar="N", help="total runs allowed (1-100)")
    p.add_argument("--idempotency-key", metavar="K", help="reject a second job with the same key")
    p.add_argument("--unique-key", metavar="K",
                   help="if a job with this key is queued or running, return it instead of adding one")
    _queue_fields(p, "the job type's queue, else default", "the job type's, else 0")
    _leaf(sub, "retry", parents, cmd_jobs_retry, "queue a failed or canceled job again").add_argument(
        "id", metavar="ID"
    )
    _leaf(sub, "cancel", parents, cmd_jobs_cancel,
          "cancel a queued job, or stop a running one").add_argument("id", metavar="ID")
    _leaf(sub, "delete", parents, cmd_jobs_delete, "delete a completed, failed or canceled job").add_argument(
        "id", metavar="ID")
    p = _leaf(sub, "bulk", parents, cmd_jobs_bulk,
              "retry, cancel or delete every job a filter matches (at most 10,000)")
    p.add_argument("action", metavar="ACTION", help="retry, cancel or delete")
    p.add_argument("--state", help="only jobs in this state")
    p.add_argument("--type", dest="job_type", metavar="TYPE", help="only jobs of this type")
    p.add_argument("--queue", metavar="NAME", help="only jobs of this queue")
    p.add_argument("--ids", metavar="ID,ID,...", help="only these jobs (comma-separated UUIDs)")
    p.add_argument("--error-contains", metavar="TEXT", help="only jobs whose last error contains TEXT")
    p.add_argument("--created-before", metavar="ISO", help="only jobs created before this time")
    p.add_argument("--dry-run", action="store_true", help="count what would change, change nothing")
    _leaf(sub, "stats", parents, cmd_jobs_stats, "job counts per state")
    _leaf(sub, "types", parents, cmd_jobs_types, "the job types the daemon has handlers for")


def _queue_fields(p: argparse.ArgumentParser, queue_default: str, priority_default: str) -> None:
    p.add_argument("--queue", metavar="NAME", help=f"queue to run in (default: {queue_default})")
    p.add_argument("--priority", metavar="N",
                   help=f"-100 to 100, lower runs first (default: {priority_default})")


def _schedule_fields(p: argparse.ArgumentParser, *, cron_required: bool = False) -> None:
    p.add_argument("--cron", metavar="EXPR", required=cron_required,
                   help="5-field cron expression or @daily etc.")
    p.add_argument("--timezone", metavar="TZ", help="IANA timezone (default UTC)")
    p.add_argument("--payload", metavar="JSON", help="a JSON object")
    p.add_argument("--enabled", metavar="true|false")
    p.add_argument("--max-attempts", metavar="N", help="total runs allowed (1-100)")
    _queue_fields(p, "the job type's; 'none' hands it back to the type", "the job type's; 'none' likewise")
    p.add_argument("--overlap", metavar="allow|skip",
                   help="skip: no new run while the previous job is queued or running (default allow)")
    p.add_argument("--misfire", metavar="coalesce|skip|all",
                   help="slots missed while no daemon ran: one run (coalesce, default), none (skip), "
                        "or one per slot (all)")
    p.add_argument("--misfire-max", metavar="N", help="with --misfire all: at most N missed runs (1-100, "
                                                      "default 10)")


def _add_schedules(subparsers: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    sub = _group(subparsers, "schedules", "inspect and manage cron schedules of a running daemon", parents)
    _leaf(sub, "list", parents, cmd_schedules_list, "list schedules")
    _leaf(sub, "get", parents, cmd_schedules_get, "show one schedule").add_argument("id", metavar="ID")
    p = _leaf(sub, "create", parents, cmd_schedules_create, "create a schedule")
    p.add_argument("--name", required=True)
    p.add_argument("--job-type", required=True, metavar="TYPE")
    _schedule_fields(p, cron_required=True)
    p = _leaf(sub, "update", parents, cmd_schedules_update, "change the given fields of a schedule")
    p.add_argument("id", metavar="ID")
    _schedule_fields(p)
    for name, func, text in (
        ("enable", cmd_schedules_enable, "enable a schedule"),
        ("disable", cmd_schedules_disable, "disable a schedule"),
        ("delete", cmd_schedules_delete, "delete a schedule"),
        ("trigger", cmd_schedules_trigger, "enqueue one run of a schedule now"),
        ("history", cmd_schedules_history, "the schedule's fire decisions, newest first"),
    ):
        _leaf(sub, name, parents, func, text).add_argument("id", metavar="ID")
    p = _leaf(sub, "preview", parents, cmd_schedules_preview, "next fire times of a cron expression")
    p.add_argument("expr", metavar="EXPR")
    p.add_argument("--timezone", metavar="TZ", help="IANA timezone the expression is read in (default UTC); "
                                                    "times are shown in UTC and in this zone")
    p.add_argument("--count", metavar="N", help="how many times (1-50, default 5)")
    p.add_argument("--after", metavar="ISO", help="start after this time, e.g. 2026-01-01T00:00:00Z "
                                                  "(default now)")


# --- argument checks (exit 2, before any request) ------------------------------------------------------


def parse_uuid(text: str, what: str) -> str:
    try:
        return str(UUID(text))
    except ValueError:
        raise InvalidInput(f"invalid {what} id '{text}': must be a UUID") from None


def parse_int(text: str | None, flag: str, low: int, high: int | None = None) -> int | None:
    if text is None:
        return None
    try:
        value = int(text.strip())
    except ValueError:
        raise InvalidInput(f"{flag} must be an integer, got '{text}'") from None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f">= {low}"
        raise InvalidInput(f"{flag} must be {bounds}, got {value}")
    return value


def parse_payload(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"--payload is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"--payload must be a JSON object, got {type(value).__name__}: {text}")
    return value


def _reject_constant(name: str) -> float:
    raise InvalidInput(f"--payload is not valid JSON: {name} is not allowed")


def parse_bool(text: str | None, flag: str) -> bool | None:
    if text is None:
        return None
    lowered = text.strip().lower()
    if lowered not in ("true", "false", "1", "0"):
        raise InvalidInput(f"{flag} must be true or false, got '{text}'")
    return lowered in ("true", "1")


def parse_time(text: str | None, flag: str) -> str | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"{flag} must be an ISO 8601 time like 2026-01-01T00:00:00Z, got '{text}'"
        ) from None
    if value.tzinfo is None:
        raise InvalidInput(f"{flag} must include a timezone, e.g. 2026-01-01T00:00:00Z or +02:00")
    return value.isoformat()


def parse_cron(text: str | None) -> str | None:
    return None if text is None else cron.validate_cron(text)


def parse_timezone(text: str | None) -> str | None:
    if text is not None:
        cron.validate_timezone(text)
    return text


QUEUE_NAME_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


def parse_queue(text: str | None, flag: str = "--queue") -> str | None:
    if text is not None and not QUEUE_NAME_RE.match(text):
        raise InvalidInput(f"{flag} must be 1-100 of [A-Za-z0-9_.:-], got '{text}'")
    return text


def parse_priority(text: str | None) -> int | None:
    return parse_int(text, "--priority", -100, 100)


def parse_state(text: str | None) -> str | None:
    if text is not None and text not in set(JobState):
        raise InvalidInput(f"--state must be one of {', '.join(JobState)}, got '{text}'")
    return text


# --- output -----------------------------------------------------------------------------------------


def _client(args: argparse.Namespace) -> AdminClient:
    return connect(option(args, "url"), option(args, "admin_token"), option(args, "config"))


def _call(args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> Any:
    with _client(args) as client:
        return client.call(method, path, **kwargs)


def _emit(args: argparse.Namespace, data: Any, text: Callable[[Any], str]) -> int:
    print(json.dumps(data, indent=2) if option(args, "json") else text(data))
    return 0


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(c) for c in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def _short(text: str | None, width: int = ERROR_WIDTH) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _job_rows(jobs: list[dict[str, Any]]) -> str:
    rows = [
        (
            j["id"],
            j["type"],
            j["state"],
            j.get("queue", ""),
            j.get("priority", ""),
            f"{j['attempts']}/{j['maxAttempts']}",
            j["runAt"],
            j["createdAt"],
            _short(j.get("lastError")),
        )
        for j in jobs
    ]
    headers = ("ID", "TYPE", "STATE", "QUEUE", "PRIO", "ATTEMPTS", "RUN AT", "CREATED", "LAST ERROR")
    return table(headers, rows)


def _details(obj: dict[str, Any]) -> str:
    rows = []
    for key, value in obj.items():
        if key == "errors":
            continue
        rows.append((f"{key}:", json.dumps(value) if isinstance(value, dict | list | bool) else value))
    text = table(("", ""), rows).split("\n", 1)[1]
    for err in obj.get("errors") or []:
        text += f"\nerror (attempt {err.get('attempt')}, {err.get('at')}): {_short(err.get('error'), 200)}"
    return text


def _schedule_line(verb: str) -> Callable[[dict[str, Any]], str]:
    def line(s: dict[str, Any]) -> str:
        nxt = f"next run {s['nextRunAt']}" if s.get("nextRunAt") else "disabled, no next run"
        return f"{verb} schedule {s['name']} ({s['id']}): {s['cronExpr']} {s['timezone']}, {nxt}"

    return line


# --- jobs -------------------------------------------------------------------------------------------


def cmd_jobs_list(args: argparse.Namespace) -> int:
    params = {
        "state": parse_state(args.state),
        "type": args.job_type,
        "queue": parse_queue(args.queue),
        "limit": parse_int(args.limit, "--limit", 1, 500),
        "offset": parse_int(args.offset, "--offset", 0),
    }
    data = _call(args, "GET", "/jobs", params=params)
    return _emit(args, data, lambda d: f"{_job_rows(d['items'])}\n{d['count']} of {d['total']} jobs")


def cmd_jobs_get(args: argparse.Namespace) -> int:
    data = _call(args, "GET", f"/jobs/{parse_uuid(args.id, 'job')}")
    return _emit(args, data, _details)


def cmd_jobs_explain(args: argparse.Namespace) -> int:
    data = _call(args, "GET", f"/jobs/{parse_uuid(args.id, 'job')}/explain")

    def text(d: dict[str, Any]) -> str:
        lines = [f"job {d['id']}: {d['state']}"]
        lines += [f"  {r['code']}: {r['message']}" for r in d["reasons"]]
        return "\n".join(lines)

    return _emit(args, data, text)


def cmd_jobs_enqueue(args: argparse.Namespace) -> int:
    body = {
        "type": args.job_type,
        "payload": parse_payload(args.payload),
        "runAt": parse_time(args.run_at, "--run-at"),
        "maxAttempts": parse_int(args.max_attempts, "--max-attempts", 1, 100),
        "idempotencyKey": args.idempotency_key,
        "uniqueKey": args.unique_key,
        "queue": parse_queue(args.queue),
        "priority": parse_priority(args.priority),
    }
    data = _call(args, "POST", "/jobs", body={k: v for k, v in body.items() if v is not None})

    def text(j: dict[str, Any]) -> str:
        if j.get("deduplicated"):
            return (f"job {j['id']} ({j['type']}) holding unique key '{j['uniqueKey']}' is already "
                    f"{j['state']}; nothing enqueued")
        return (f"enqueued job {j['id']} ({j['type']}) in queue {j['queue']} with priority "
                f"{j['priority']}, runs at {j['runAt']}")

    return _emit(args, data, text)


def cmd_jobs_retry(args: argparse.Namespace) -> int:
    data = _call(args, "POST", f"/jobs/{parse_uuid(args.id, 'job')}/retry")
    return _emit(args, data, lambda j: f"job {j['id']} ({j['type']}) queued again")


def cmd_jobs_cancel(args: argparse.Namespace) -> int:
    data = _call(args, "POST", f"/jobs/{parse_uuid(args.id, 'job')}/cancel")

    def text(j: dict[str, Any]) -> str:
        if j["state"] == "running":
            return f"job {j['id']} ({j['type']}) is running: cancel requested, its daemon stops it shortly"
        return f"job {j['id']} ({j['type']}) canceled"

    return _emit(args, data, text)


def cmd_jobs_delete(args: argparse.Namespace) -> int:
    job_id = parse_uuid(args.id, "job")
    _call(args, "DELETE", f"/jobs/{job_id}")
    return _emit(args, {"id": job_id, "deleted": True}, lambda _d: f"deleted job {job_id}")


BULK_ACTIONS = ("retry", "cancel", "delete")


def cmd_jobs_bulk(args: argparse.Namespace) -> int:
    if args.action not in BULK_ACTIONS:
        raise InvalidInput(f"ACTION must be one of {', '.join(BULK_ACTIONS)}, got '{args.action}'")
    ids = [parse_uuid(i.strip(), "job") for i in args.ids.split(",") if i.strip()] if args.ids else None
    where = {
        "state": parse_state(args.state),
        "type": args.job_type,
        "queue": parse_queue(args.queue),
        "ids": ids,
        "errorContains": args.error_contains,
        "createdBefore": parse_time(args.created_before, "--created-before"),
    }
    where = {k: v for k, v in where.items() if v is not None}
    if not where:
        raise InvalidInput("give at least one filter: --state, --type, --queue, --ids, --error-contains "
                           "or --created-before (a bulk action never applies to every job)")
    data = _call(args, "POST", "/jobs/bulk", body={"action": args.action, "filter": where,
                                                   "dryRun": args.dry_run})
    verb = {"retry": "retried", "cancel": "canceled", "delete": "deleted"}[args.action]

    def text(d: dict[str, Any]) -> str:
        if d["dryRun"]:
            return f"dry run: {d['matched']} jobs match, {d['changed']} would be {verb}; nothing changed"
        return f"{d['matched']} jobs matched, {d['changed']} {verb}"

    return _emit(args, data, text)


def cmd_jobs_stats(args: argparse.Namespace) -> int:
    data = _call(args, "GET", "/jobs/stats")

    def text(d: dict[str, Any]) -> str:
        age = d["oldestQueuedAgeSec"]
        rows = [(k, d[k]) for k in ("queued", "scheduled", "running", "completed", "failed", "canceled")]
        text = table(("STATE", "JOBS"), rows) + f"\noldest due job waiting: {_age(age)}"
        for title, counts in (("QUEUE", d.get("byQueue") or {}), ("TYPE", d.get("byType") or {})):
            if counts:
                live = [(name, c["queued"], c["scheduled"], c["running"]) for name, c in counts.items()]
                text += "\n\n" + table((title, "QUEUED", "SCHEDULED", "RUNNING"), live)
        return text

    return _emit(args, data, text)


def cmd_jobs_types(args: argparse.Namespace) -> int:
    data = _call(args, "GET", "/job-types")

    def text(d: dict[str, Any]) -> str:
        rows = [(t["type"], "built-in" if t["builtin"] else "custom", t.get("description") or "")
                for t in d["items"]]
        return f"{table(('TYPE', 'KIND', 'DESCRIPTION'), rows)}\n{len(rows)} job types"

    return _emit(args, data, text)


def _age(seconds: float) -> str:
    seconds = max(0, math.floor(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return (
        f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
    )


# --- schedules --------------------------------------------------------------------------------------


def cmd_schedules_list(args: argparse.Namespace) -> int:
    data = _call(args, "GET", "/schedules")

    def text(d: dict[str, Any]) -> str:
        rows = [
            (
                s["id"],
                s["name"],
                s["jobType"],
                s["cronExpr"],
                s["timezone"],
                s.get("queue") or "(type's)",
                "yes" if s["enabled"] else "no",
                s.get("nextRunAt", "-"),
                s.get("lastRunAt", "-"),
            )
            for s in d["items"]
        ]
        headers = ("ID", "NAME", "JOB TYPE", "CRON", "TIMEZONE", "QUEUE", "ENABLED", "NEXT RUN", "LAST RUN")
        return f"{table(headers, rows)}\n{d['count']} schedules"

    return _emit(args, data, text)


def cmd_schedules_get(args: argparse.Namespace) -> int:
    return _emit(args, _call(args, "GET", f"/schedules/{parse_uuid(args.id, 'schedule')}"), _details)


def _schedule_body(args: argparse.Namespace) -> dict[str, Any]:
    body = {
        "cronExpr": parse_cron(args.cron),
        "timezone": parse_timezone(args.timezone),
        "payload": parse_payload(args.payload),
        "enabled": parse_bool(args.enabled, "--enabled"),
        "maxAttempts": parse_int(args.max_attempts, "--max-attempts", 1, 100),
        "overlap": parse_choice(args.overlap, "--overlap", ("allow", "skip")),
        "misfire": parse_choice(args.misfire, "--misfire", ("coalesce", "skip", "all")),
        "misfireMax": parse_int(args.misfire_max, "--misfire-max", 1, 100),
    }
    body = {k: v for k, v in body.items() if v is not None}
    # 'none' is an explicit null: the schedule's jobs follow the job type's policy again.
    if args.queue is not None:
        body["queue"] = None if args.queue == "none" else parse_queue(args.queue)
    if args.priority is not None:
        body["priority"] = None if args.priority == "none" else parse_priority(args.priority)
    return body


def parse_choice(text: str | None, flag: str, choices: Sequence[str]) -> str | None:
    if text is not None and text not in choices:
        raise InvalidInput(f"{flag} must be one of {', '.join(choices)}, got '{text}'")
    return text


def cmd_schedules_create(args: argparse.Namespace) -> int:
    body = {"name": args.name, "jobType": args.job_type, **_schedule_body(args)}
    return _emit(args, _call(args, "POST", "/schedules", body=body), _schedule_line("created"))


def cmd_schedules_update(args: argparse.Namespace) -> int:
    sid = parse_uuid(args.id, "schedule")
    body = _schedule_body(args)
    if not body:
        raise InvalidInput(
            "nothing to update: pass --cron, --timezone, --payload, --enabled, --max-attempts, --overlap, "
            "--misfire, --misfire-max, --queue or --priority"
        )
    return _emit(args, _call(args, "PUT", f"/schedules/{sid}", body=body), _schedule_line("updated"))


def cmd_schedules_enable(args: argparse.Namespace) -> int:
    data = _call(args, "POST", f"/schedules/{parse_uuid(args.id, 'schedule')}/enable")
    return _emit(args, data, _schedule_line("enabled"))


def cmd_schedules_disable(args: argparse.Namespace) -> int:
    data = _call(args, "POST", f"/schedules/{parse_uuid(args.id, 'schedule')}/disable")
    return _emit(args, data, _schedule_line("disabled"))


def cmd_schedules_delete(args: argparse.Namespace) -> int:
    sid = parse_uuid(args.id, "schedule")
    _call(args, "DELETE", f"/schedules/{sid}")
    return _emit(args, {"id": sid, "deleted": True}, lambda _d: f"deleted schedule {sid}")


def cmd_schedules_trigger(args: argparse.Namespace) -> int:
    sid = parse_uuid(args.id, "schedule")
    data = _call(args, "POST", f"/schedules/{sid}/trigger")
    return _emit(args, data, lambda j: f"triggered schedule {sid}: job {j['id']} ({j['type']}) queued")


def cmd_schedules_history(args: argparse.Namespace) -> int:
    sid = parse_uuid(args.id, "schedule")
    data = _call(args, "GET", f"/schedules/{sid}/history")

    def text(d: dict[str, Any]) -> str:
        rows = [(f["slotAt"], f["outcome"], f.get("jobId") or "-", f.get("jobState") or "-", f["decidedAt"])
                for f in d["items"]]
        return f"{table(('SLOT', 'OUTCOME', 'JOB', 'JOB STATE', 'DECIDED'), rows)}\n{len(rows)} decisions"

    return _emit(args, data, text)


def cmd_schedules_preview(args: argparse.Namespace) -> int:
    params = {
        "expr": parse_cron(args.expr),
        "timezone": parse_timezone(args.timezone),
        "count": parse_int(args.count, "--count", 1, 50),
        "after": parse_time(args.after, "--after"),
    }
    data = _call(args, "GET", "/cron/preview", params=params)
    zone = args.timezone if args.timezone and args.timezone.upper() != "UTC" else None
    return _emit(args, data, lambda d: _preview_text(d["times"], zone))


def _preview_text(times: list[str], zone: str | None) -> str:
    """One time per line; with a timezone, a table of UTC beside the local time and its offset,
    so a DST change shows as a changed offset."""
    if zone is None:
        return "\n".join(times)
    tz = ZoneInfo(zone)
    rows = []
    for text in times:
        local = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(tz)
        offset = local.strftime("%z")
        rows.append((text, f"{local:%Y-%m-%d %H:%M:%S}{offset[:3]}:{offset[3:]} {local.tzname()}"))
    return table(("UTC", f"LOCAL ({zone})"), rows)
