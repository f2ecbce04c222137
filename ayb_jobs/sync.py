"""Enqueue from synchronous code (Django, Flask, scripts) on the application's own connection.

    from ayb_jobs import sync

    with transaction.atomic():                       # Django; or any DB-API 2 connection
        order = Order.objects.create(...)
        sync.enqueue(connection, "send_receipt", {"order": order.id})   # exists iff this commits

`enqueue` runs the very statement the asyncio client runs (the INSERT and its wake-up NOTIFY, which
Postgres delivers at COMMIT) on the connection it is given, inside whatever transaction that
connection is in; it never commits or rolls back. No driver is imported here: anything with
`cursor()` and the `%s` parameter style works (psycopg 3, psycopg2, Django's `connection`, pg8000).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from uuid import UUID

from ayb_jobs.client import DEFAULT_MAX_ATTEMPTS, check_new_job
from ayb_jobs.db.queries import ENQUEUE_IDS, enqueue_args
from ayb_jobs.db.sql import SQL
from ayb_jobs.errors import Conflict, DuplicateJob
from ayb_jobs.models import NewJob

__all__ = ["enqueue"]

# A unique key's holder can finish between our skipped insert and our look-up; then insert again.
_DEDUP_TRIES = 5


def _format_style(statement: str) -> tuple[str, list[int]]:
    """queries.sql's `$n` placeholders as `%s`, and which parameter each stands for, in order."""
    code = "\n".join(line for line in statement.splitlines() if not line.lstrip().startswith("--"))
    order: list[int] = []

    def placeholder(match: re.Match[str]) -> str:
        order.append(int(match.group(1)) - 1)
        return "%s"

    return re.sub(r"\$(\d+)", placeholder, code.replace("%", "%%")), order


_ENQUEUE = _format_style(SQL["enqueue_jobs"])
_HOLDER = _format_style(SQL["active_jobs_by_unique_keys"])
_KEY_OWNER = _format_style(SQL["job_ids_by_keys"])


def enqueue(conn: Any, job_type: str, payload: dict[str, Any] | None = None, *,
            run_at: datetime | None = None, max_attempts: int | None = None,
            idempotency_key: str | None = None, unique_key: str | None = None,
            queue: str | None = None, priority: int | None = None,
            default_max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> UUID:
    """Insert a queued job in the connection's current transaction and return its id.

    With `unique_key` held by a queued or running job, nothing is inserted and that job's id is
    returned. A taken `idempotency_key` raises DuplicateJob (the transaction stays usable: the
    statement skips the row instead of failing). Queue, priority and max_attempts left out come from
    the type's policy in _ayb_job_types, as for every other enqueue.
    """
    job = NewJob(job_type, payload or {}, run_at, max_attempts, idempotency_key, unique_key=unique_key,
                 queue=queue, priority=priority)
    check_new_job(job)
    args = enqueue_args([job], default_max_attempts=default_max_attempts, notify=True)
    cursor = conn.cursor()
    try:
        for _ in range(_DEDUP_TRIES):
            row = _fetch(cursor, _ENQUEUE, args)
            if _texts(row["ids"]):  # the one job was inserted, under the id sent
                return args[ENQUEUE_IDS][0]
            if idempotency_key is not None:
                owner = _fetch(cursor, _KEY_OWNER, ([idempotency_key],))
                if owner is not None:
                    raise DuplicateJob(idempotency_key, str(owner["id"]))
            holder = _fetch(cursor, _HOLDER, ([unique_key],))
            if holder is not None:
                return _uuids([holder["id"]])[0]
        raise Conflict("the job holding this unique key kept changing during the enqueue; try again")
    finally:
        cursor.close()


def _fetch(cursor: Any, statement: tuple[str, list[int]], args: tuple[Any, ...]) -> dict[str, Any] | None:
    text, order = statement
    cursor.execute(text, [_param(args[i]) for i in order])
    row = cursor.fetchone()
    if row is None:
        return None
    return {d[0]: value for d, value in zip(cursor.description, row, strict=True)}


def _param(value: Any) -> Any:
    # UUIDs go as text (cast in the SQL): not every driver adapts uuid.UUID.
    if isinstance(value, list):
        return [str(v) if isinstance(v, UUID) else v for v in value]
    return value


def _uuids(value: Any) -> list[UUID]:
    return [v if isinstance(v, UUID) else UUID(str(v)) for v in _texts(value)]


def _texts(value: Any) -> list[Any]:
    """An array column: a list from drivers that parse arrays, or Postgres' text form `{a,NULL}`
    from those that do not know the element type (psycopg2 with uuid[])."""
    if isinstance(value, list):
        return value
    inner = str(value).strip("{}")
    return [None if item == "NULL" else item.strip('"') for item in inner.split(",")] if inner else []

