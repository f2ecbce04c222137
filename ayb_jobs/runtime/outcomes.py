"""The outcome writer: records what happened to claimed jobs, many per statement.

Workers hand their outcome over with a plain (non-async) `put`, so a cancellation that ends a
handler can never lose the outcome; this task writes them in batches (one fenced statement per
kind), retrying through database outages. A batch is written when MAX_BATCH outcomes wait, or
LINGER_S after the first of them: a short wait that turns a trickle of finishing jobs into one
statement instead of one each. The job's worker slot is free as soon as its handler ended; its
lease keeps being extended until its outcome is written, and then the executor hears of it
(`outcome_written`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, Protocol

import structlog

from ayb_jobs.db import queries
from ayb_jobs.db.pool import bounded
from ayb_jobs.db.queries import Claimed, Failure

Kind = Literal["complete", "fail", "release", "snooze", "cancel"]
# A fresh, short statement timeout for outcome writes: they touch a handful of rows by primary key.
WRITE_TIMEOUT_S = 10.0
MAX_BATCH = 500
# How long the first outcome of a batch waits for more (when fewer than LINGER_UNDER wait).
LINGER_S = 0.002
LINGER_UNDER = 32

log = structlog.get_logger("ayb_jobs.outcomes")


class Settled(StrEnum):
    """What writing an outcome found: the state the job ended in, or why nothing was written."""

    COMPLETED = "completed"
    QUEUED = "queued"  # a failed attempt, retried later
    FAILED = "failed"
    RELEASED = "released"
    SNOOZED = "snoozed"  # queued again later at the handler's request, the attempt not counted
    CANCELED = "canceled"  # stopped at an operator's request
    LEASE_LOST = "lease_lost"  # the fence found the claim gone (recovered, re-claimed)
    # A write retried after a database error found nothing to change: its first try most likely
    # committed before the connection broke.
    UNCONFIRMED = "unconfirmed"


@dataclass(slots=True)
class Outcome:
    kind: Kind
    claimed: Claimed
    job_type: str
    error: str | None = None
    backoff_s: float = 0.0
    retryable: bool = True
    # complete: the handler's return value as the JSON to store (results.encode_result), or None.
    result: str | None = None


class Settles(Protocol):
    """Who hears what became of each outcome (the executor)."""

    def outcome_written(self, outcome: Outcome, how: Settled) -> None: ...


class _Nobody:
    def outcome_written(self, outcome: Outcome, how: Settled) -> None:
        pass


def settled_by_earlier_try(o: Outcome, row: queries.ClaimRow | None) -> Settled:
    """What a retried write that matched nothing means, from the job's row as it is now.

    Our earlier try committed if the row holds exactly what it wrote and no claim came since
    (claim_seq unchanged; recovery never completes a job and writes its own last_error)."""
    if row is None or row.claim_seq != o.claimed.seq:
        return Settled.LEASE_LOST  # deleted, or claimed again since
    if o.kind == "complete" and row.state == "completed":
        return Settled.COMPLETED
    if o.kind == "fail" and row.state in ("queued", "failed") and row.last_error == o.error:
        return Settled(str(row.state))
    if (o.kind == "release" and row.state == "queued"
            and row.last_error == (o.error or queries.SHUTDOWN_REASON)):
        return Settled.RELEASED
    if o.kind == "cancel" and row.state == "canceled" and row.last_error == o.error:
        return Settled.CANCELED
    if row.state == "running" or (row.last_error or "").startswith("lease expired"):
        return Settled.LEASE_LOST  # recovered after the lease, maybe claimed again
    if o.kind == "snooze" and row.state in ("queued", "canceled"):  # a snooze leaves last_error alone
        return Settled.SNOOZED if row.state == "queued" else Settled.CANCELED
    return Settled.UNCONFIRMED


class OutcomeWriter:
    def __init__(self, pool: Any, worker_id: str, *, on_db_error: Callable[[], None] = lambda: None,
                 write_timeout_s: float = WRITE_TIMEOUT_S) -> None:
        self._pool = pool
        self._timeout_s = write_timeout_s
        self._worker_id = worker_id
        self._pending: list[Outcome] = []
        self._ready = asyncio.Event()
        self._closing = False
        self._on_db_error = on_db_error
        self._settles: Settles = _Nobody()

    def report_to(self, settles: Settles) -> None:
        self._settles = settles

    def put(self, outcome: Outcome) -> None:
        self._pending.append(outcome)
        self._ready.set()

    @property
    def backlog(self) -> int:
        return len(self._pending)

    def unwritten(self) -> list[Outcome]:
        """The outcomes not written yet (after a stop: those that never will be)."""
        return list(self._pending)

    async def run(self) -> None:
        """Write outcomes until close() is called and nothing is pending."""
        delay = 0.05
        retried: set[int] = set()
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._ready.clear()
                await self._ready.wait()
                if len(self._pending) < LINGER_UNDER and not self._closing:
                    await asyncio.sleep(LINGER_S)
                continue
            kind = self._pending[0].kind
            batch = [o for o in self._pending[:MAX_BATCH] if o.kind == kind]
            try:
                results = await self._write(kind, batch)
            except Exception as exc:  # retried: the outcome must not be lost
                retried.update(id(o) for o in batch)
                self._on_db_error()
                log.warning("db_error", component="outcomes", error=f"{type(exc).__name__}: {exc}",
                            retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)  # short: finished jobs hold their slots meanwhile
                continue
            delay = 0.05
            written = {id(o) for o in batch}
            self._pending = [o for o in self._pending if id(o) not in written]
            # A write retried after a lost connection may have committed the first time: then the
            # fence finds nothing, which by itself says nothing about the lease. Look at the rows.
            unsure = [o for o in batch if o.claimed not in results and id(o) in retried]
            results.update(await self._what_became_of(unsure))
            for o in batch:
                self._settles.outcome_written(o, results.get(o.claimed, Settled.LEASE_LOST))
            retried.difference_update(written)

    async def _what_became_of(self, unsure: list[Outcome]) -> dict[Claimed, Settled]:
        if not unsure:
            return {}
        try:
            rows = await bounded(queries.claim_rows(self._pool, [o.claimed.id for o in unsure],
                                                    timeout=self._timeout_s), self._timeout_s)
        except Exception:  # the database failed again: say we cannot tell
            return dict.fromkeys((o.claimed for o in unsure), Settled.UNCONFIRMED)
        return {o.claimed: settled_by_earlier_try(o, rows.get(o.claimed.id)) for o in unsure}

    def close(self) -> None:
        """Finish writing what is pending, then stop."""
        self._closing = True
        self._ready.set()

    async def _write(self, kind: Kind, batch: list[Outcome]) -> dict[Claimed, Settled]:
        """One fenced statement for a batch of one kind; what each claim written ended in."""
        claimed = [o.claimed for o in batch]
        if kind == "complete":
            done = await bounded(queries.complete_jobs(self._pool, claimed, worker_id=self._worker_id,
                                                       timeout=self._timeout_s,
                                                       results=[o.result for o in batch]), self._timeout_s)
            return dict.fromkeys(done, Settled.COMPLETED)
        if kind == "snooze":
            # Canceled: an operator canceled the job while its handler was deciding to snooze.
            snoozed = await bounded(queries.snooze_jobs(self._pool, claimed, worker_id=self._worker_id,
                                                        delays_s=[o.backoff_s for o in batch],
                                                        timeout=self._timeout_s), self._timeout_s)
            return {c: Settled.SNOOZED if state == "queued" else Settled.CANCELED
                    for c, state in snoozed.items()}
        if kind == "cancel":
            canceled = await bounded(queries.cancel_running_jobs(
                self._pool, claimed, worker_id=self._worker_id, reason=batch[0].error or "canceled by admin",
                timeout=self._timeout_s), self._timeout_s)
            return dict.fromkeys(canceled, Settled.CANCELED)
        if kind == "fail":
            failures = [Failure(o.claimed, o.error or "", o.backoff_s, o.retryable) for o in batch]
            states = await bounded(queries.fail_jobs(self._pool, failures, worker_id=self._worker_id,
                                                     timeout=self._timeout_s), self._timeout_s)
            return {c: Settled(str(state)) for c, state in states.items()}
        released = await bounded(queries.release_jobs(
            self._pool, claimed, worker_id=self._worker_id, timeout=self._timeout_s,
            reasons=[o.error or queries.SHUTDOWN_REASON for o in batch],
            delays_s=[o.backoff_s for o in batch]), self._timeout_s)
        return dict.fromkeys(released, Settled.RELEASED)
