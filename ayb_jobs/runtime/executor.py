"""Runs claimed jobs: one task per job, bounded by worker_concurrency, each under a timeout.

A job holds a worker slot while its handler runs. When the handler ends its outcome goes to the
writer (outcomes.py) and the slot is free for the next claim at once, so claims overlap outcome
writes; the job stays in flight, its lease still extended by the heartbeat, until the outcome is
written. Claims pause while too many outcomes wait to be written (MAX_UNWRITTEN_FACTOR), so a
database that stops taking writes cannot pile up finished jobs. How a handler ends decides the
outcome:
- returns                      -> complete
- raises InvalidPayload        -> fail, no retry (also when the stored payload cannot be decoded)
- raises another Exception     -> fail, retried with backoff while attempts remain
- exceeds jobs.job_timeout_s   -> fail "timed out after Ns"
- cancelled by shutdown        -> release (queued again, attempt not counted)
- cancelled after a lost lease -> nothing is written (another worker owns the job now); also a
                                   stale run of a job this daemon has claimed again
- raises Snooze(seconds)       -> snooze: queued again at now() + seconds, attempt not counted
- cancelled by an operator     -> cancel: `canceled`, attempt counted (the handler may clean up on
                                  CancelledError, but whatever it does then, the job ends canceled)
- raises because our database   -> release after a backoff, attempt not counted: not the handler's
  failed under it                  failure (decided by runtime/dbwatch.py from our pool's state and a
                                   probe, not from the exception's class)

In-flight runs are keyed by their claim (job id and claim_seq), not by job id: after an admin
retry the same daemon can claim a job whose earlier run it still holds, and the two must not be
confused. This class alone owns that state (`running`); the poller, the heartbeat, the writer and
the daemon's drain go through its methods.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID

import structlog

from ayb_jobs.backoff import backoff_seconds
from ayb_jobs.db.queries import Claimed
from ayb_jobs.errors import InvalidPayload, Snooze
from ayb_jobs.handlers import JobContext, Registry
from ayb_jobs.metrics import Metrics
from ayb_jobs.models import ClaimedJob
from ayb_jobs.results import encode_result
from ayb_jobs.runtime.dbwatch import DatabaseWatch, connection_like
from ayb_jobs.runtime.deadlines import Deadlines
from ayb_jobs.runtime.outcomes import Outcome, OutcomeWriter, Settled

MAX_ERROR_BYTES = 4096
# A type's own backoff is trusted up to a day (what a Snooze allows too).
MAX_BACKOFF_S = 86400.0
StopReason = Literal["shutdown", "lease_lost", "superseded", "lease_unconfirmed", "canceled", "timed_out"]
# In flight at most this many times worker_concurrency: handlers running plus outcomes not written.
MAX_UNWRITTEN_FACTOR = 2
CANCELED_BY_ADMIN = "canceled by admin"
# Why a run stopped without writing anything (each counts as a lost lease).
_LOST_REASONS: dict[str, str] = {
    "lease_lost": "the heartbeat found the claim gone (the lease expired and the job was recovered)",
    "superseded": "this daemon claimed the job again (recovered and retried meanwhile), so this run "
                  "is stale",
    "lease_unconfirmed": "the heartbeat could not confirm the lease (database unreachable or slow) and "
                         "it ends soon: stopped before it expires, since another daemon may then run "
                         "the job; nothing was written, the job is recovered after its lease",
}

log = structlog.get_logger("ayb_jobs.executor")


def _enabled(logger: Any, level: int) -> bool:
    """Whether the logger writes this level (the per-job lines build their fields only then)."""
    check = getattr(logger, "is_enabled_for", None)
    return True if check is None else bool(check(level))


def truncate_error(text: str) -> str:
    data = text.encode("utf-8")
    if len(data) <= MAX_ERROR_BYTES:
        return text
    return data[: MAX_ERROR_BYTES - 3].decode("utf-8", "ignore") + "..."


def describe(exc: BaseException) -> str:
    message = str(exc)
    return truncate_error(f"{type(exc).__name__}: {message}" if message else type(exc).__name__)


@dataclass(slots=True)
class Running:
    job: ClaimedJob
    claimed: Claimed
    task: asyncio.Task[None] | None = None
    stop_reason: StopReason | None = None
    started: float = field(default_factory=time.monotonic)
    # Monotonic time until which the lease is known to hold: from when the claim (or the last
    # heartbeat that extended it) was sent, plus the lease. The database set it later than that.
    lease_known_until: float = float("inf")
    # Set when the handler has ended and its outcome is with the writer: the slot is free.
    handed_over: bool = False
    began: bool = False  # its task has taken its first step
    timeout_s: float = 0.0
    duration_s: float = 0.0
    result: Any = None  # the handler's return value, for the job_completed log line


class Executor:
    def __init__(self, *, pool: Any, registry: Registry, writer: OutcomeWriter, metrics: Metrics,
                 worker_id: str, concurrency: int, job_timeout_s: float,
                 rand: Callable[[], float] = random.random, watch: DatabaseWatch | None = None,
                 lease_s: float | None = None) -> None:
        self._pool = pool
        self.lease_s = lease_s
        self._watch = watch or DatabaseWatch()
        self._registry = registry
        self._writer = writer
        writer.report_to(self)
        self._metrics = metrics
        self.worker_id = worker_id
        self.concurrency = concurrency
        self._max_in_flight = concurrency * MAX_UNWRITTEN_FACTOR
        self._job_timeout_s = job_timeout_s
        self._rand = rand
        self._deadlines = Deadlines(self._deadline_passed)
        # A concrete logger for the per-job hot path (the module's lazy proxy rebinds on every call).
        self._log = log.bind()
        self._info = _enabled(self._log, logging.INFO)
        self._debug = _enabled(self._log, logging.DEBUG)
        self.running: dict[Claimed, Running] = {}
        self._latest_claim: dict[UUID, Claimed] = {}  # job id -> its newest claim in `running`
        self._in_handlers = 0  # entries of `running` not handed over yet: the slots in use
        # How outcomes settled, for the drain's report (and anyone counting).
        self.settled: Counter[Settled] = Counter()
        self.slot_freed = asyncio.Event()
        self.idle = asyncio.Event()
        self.idle.set()

    def free_slots(self) -> int:
        """Slots for a claim: free worker slots, fewer while outcomes wait to be written."""
        return min(self.concurrency - self._in_handlers, self._max_in_flight - len(self.running))

    def start(self, jobs: list[ClaimedJob], *, claim_sent: float | None = None) -> None:
        """Run freshly claimed jobs; `claim_sent` is the monotonic time the claim was sent."""
        sent = time.monotonic() if claim_sent is None else claim_sent
        known_until = sent + self.lease_s if self.lease_s is not None else float("inf")
        loop = asyncio.get_running_loop()
        for job in jobs:
            claimed = Claimed(job.id, job.attempts, job.claim_seq)
            earlier = self._latest_claim.get(job.id)
            if earlier is not None:
                self._stop_stale_run(earlier, claimed)
            self._latest_claim[job.id] = claimed
            entry = Running(job, claimed, lease_known_until=known_until)
            self.running[claimed] = entry
            self._in_handlers += 1
            entry.task = loop.create_task(self._run(entry))
            self._metrics.claimed(job.type)
            if self._debug:
                self._log.debug("job_claimed", **self._fields(entry))
        if self.running:
            self.idle.clear()
        self._metrics.set_in_flight(len(self.running))

    def _stop_stale_run(self, earlier: Claimed, claimed: Claimed) -> None:
        """A new claim of a job means an older run of it here lost its lease (it was recovered,
        then retried by an admin, and claimed by us again): stop it, it must write nothing."""
        if earlier.seq < claimed.seq:
            self.stop_job(earlier, "superseded")

    def stop_job(self, claimed: Claimed, reason: StopReason) -> None:
        """Cancel a running handler; its outcome follows from the reason."""
        entry = self.running.get(claimed)
        if entry is not None and not entry.handed_over:
            entry.stop_reason = reason
            if entry.began:
                entry.task.cancel()
            # else: a task cancelled before its first step never runs its body (nor its except
            # clauses), so the run would stay in flight; _run reads the reason when it starts.

    def cancel_requested(self, job_id: UUID) -> bool:
        """An operator canceled this job: stop its handler if it runs here (True if it does)."""
        runs = [(c, e) for c, e in self.running.items() if c.id == job_id]
        for claimed, entry in runs:
            if entry.stop_reason is None:  # asked again (heartbeat after the notification): let it clean up
                self.stop_job(claimed, "canceled")
        return bool(runs)

    def stop_all(self, reason: StopReason) -> None:
        for claimed in list(self.running):
            self.stop_job(claimed, reason)

    def in_handler(self, claimed: Claimed) -> bool:
        """Whether the run is still in its handler (not waiting for its outcome to be written)."""
        entry = self.running.get(claimed)
        return entry is not None and not entry.handed_over

    def in_handlers(self) -> int:
        """How many runs are in their handlers (the worker slots in use)."""
        return self._in_handlers

    def claimed(self) -> list[Claimed]:
        """Every claim in flight, in a handler or waiting for its outcome: the leases to extend."""
        return list(self.running)

    def leases_confirmed(self, claims: Collection[Claimed], *, sent: float) -> None:
        """A heartbeat sent at `sent` (monotonic) extended these claims' leases."""
        if self.lease_s is None:
            return
        for claimed in claims:
            entry = self.running.get(claimed)
            if entry is not None:
                entry.lease_known_until = max(entry.lease_known_until, sent + self.lease_s)

    def lease_deadline(self, margin_s: float) -> float:
        """The earliest time (monotonic) a run in its handler must stop if no heartbeat confirms it."""
        return min((e.lease_known_until - margin_s for e in self.running.values() if not e.handed_over),
                   default=float("inf"))

    def stop_unconfirmed(self, now: float, margin_s: float) -> int:
        """Stop the handlers whose lease may end within `margin_s`; returns how many."""
        late = [c for c, e in self.running.items()
                if not e.handed_over and e.lease_known_until - margin_s <= now]
        for claimed in late:
            self.stop_job(claimed, "lease_unconfirmed")
        return len(late)

    def _fields(self, entry: Running) -> dict[str, Any]:
        return {"job_id": str(entry.job.id), "job_type": entry.job.type, "attempt": entry.job.attempts,
                "claim_seq": entry.claimed.seq, "worker_id": self.worker_id}

    async def _run(self, entry: Running) -> None:
        entry.began = True
        if entry.stop_reason is not None:  # stopped before it started
            self._after_cancel(entry)
            return
        if entry.job.cancel_requested:
            # Canceled while it was not running here (requested, then released at a shutdown or
            # recovered from a dead daemon): honour the request instead of starting it again.
            self._canceled(entry)
            return
        job_type = self._registry.get(entry.job.type)
        if job_type is None:
            self._fail(entry, f"no handler registered for job type '{entry.job.type}'", retryable=True)
            return
        if entry.job.payload_error is not None:  # no retry can make the stored payload readable
            self._fail(entry, f"{entry.job.payload_error}; the job cannot run", retryable=False)
            return
        timeout_s = entry.timeout_s = (job_type.timeout_s if job_type.timeout_s is not None
                                       else self._job_timeout_s)
        self._deadlines.add(entry.claimed, timeout_s)
        try:
            await self._attempt(entry, job_type.handler, timeout_s)
        except asyncio.CancelledError:  # also while judging an error (the probe awaits)
            self._after_cancel(entry)
            raise
        finally:
            self._deadlines.discard(entry.claimed, timeout_s)

    async def _attempt(self, entry: Running, handler: Any, timeout_s: float) -> None:
        job = entry.job
        ctx = JobContext(job.id, job.type, job.attempts, job.max_attempts, self.worker_id, self._pool,
                         self._log, log_fields=lambda: self._fields(entry))
        faults_before = self._watch.faults
        try:
            result = await handler(job.payload, ctx)
        except asyncio.CancelledError:
            if entry.stop_reason != "timed_out":
                raise
            entry.task.uncancel()  # our own deadline, not a cancellation of the run
            self._timed_out(entry, timeout_s)
        except Exception as exc:
            if entry.stop_reason == "timed_out":  # it turned the timeout's cancellation into an error
                self._timed_out(entry, timeout_s)
            else:
                await self._ended(entry, exc, faults_before)
        else:
            if entry.stop_reason == "canceled":  # it swallowed the cancellation: no veto
                self._canceled(entry)
            elif entry.stop_reason == "timed_out":  # it swallowed the timeout's cancellation
                self._timed_out(entry, timeout_s)
            else:
                self._complete(entry, result)

    def _deadline_passed(self, claimed: Any) -> None:
        """A handler ran past its timeout: cancel it (unless it is being stopped already)."""
        entry = self.running.get(claimed)
        if entry is not None and not entry.handed_over and entry.stop_reason is None:
            entry.stop_reason = "timed_out"
            entry.task.cancel()

    async def _ended(self, entry: Running, exc: Exception, faults_before: int) -> None:
        """The handler raised (other than a timeout of its own run)."""
        if entry.stop_reason == "canceled":  # it turned the cancellation into an error: no veto
            self._canceled(entry)
        elif isinstance(exc, Snooze):
            self._settle(entry, Outcome("snooze", entry.claimed, entry.job.type, backoff_s=exc.seconds))
        elif isinstance(exc, InvalidPayload):
            self._fail(entry, describe(exc), retryable=False)
        else:
            await self._raised(entry, exc, faults_before)

    async def _raised(self, entry: Running, exc: Exception, faults_before: int) -> None:
        """The handler raised: its failure, unless our own database failed under it."""
        if connection_like(exc) and await self._watch.fault_since(self._pool, faults_before):
            error = truncate_error(f"our database connection failed during the job: {describe(exc)}")
            self._settle(entry, Outcome("release", entry.claimed, entry.job.type, error=error,
                                        backoff_s=backoff_seconds(entry.job.attempts, self._rand)))
        else:
            self._fail(entry, describe(exc))

    def _after_cancel(self, entry: Running) -> None:
        if entry.stop_reason in _LOST_REASONS:
            self._metrics.lease_lost(entry.job.type)
            self._log.warning("job_lease_lost", reason=_LOST_REASONS[entry.stop_reason],
                              **self._fields(entry))
            self._free(entry)
        elif entry.stop_reason == "canceled":
            self._canceled(entry)
        elif entry.stop_reason == "timed_out":  # the deadline passed while an error was being judged
            self._timed_out(entry, entry.timeout_s)
        else:
            self._settle(entry, Outcome("release", entry.claimed, entry.job.type))

    def _canceled(self, entry: Running) -> None:
        self._settle(entry, Outcome("cancel", entry.claimed, entry.job.type, error=CANCELED_BY_ADMIN))

    def _backoff_s(self, job_type: str, attempt: int) -> float:
        """The type's backoff(attempt) when it has one (a broken one falls back to the default)."""
        found = self._registry.get(job_type)
        if found is not None and found.backoff is not None:
            try:
                delay = float(found.backoff(attempt))
            except Exception as exc:
                self._log.warning("job_backoff_failed", job_type=job_type, error=describe(exc))
            else:
                if math.isfinite(delay) and delay >= 0:
                    return min(delay, MAX_BACKOFF_S)
                self._log.warning("job_backoff_failed", job_type=job_type, error=f"returned {delay!r}")
        return backoff_seconds(attempt, self._rand)

    def _timed_out(self, entry: Running, timeout_s: float) -> None:
        self._log.warning("job_timed_out", timeout_s=timeout_s, **self._fields(entry))
        self._fail(entry, f"timed out after {timeout_s:g}s")

    def _complete(self, entry: Running, result: Any) -> None:
        entry.result = result
        self._settle(entry, Outcome("complete", entry.claimed, entry.job.type, result=encode_result(result)))

    def _fail(self, entry: Running, error: str, *, retryable: bool = True) -> None:
        delay = self._backoff_s(entry.job.type, entry.job.attempts)
        self._settle(entry, Outcome("fail", entry.claimed, entry.job.type, error=error, backoff_s=delay,
                                    retryable=retryable))

    def _settle(self, entry: Running, outcome: Outcome) -> None:
        """The handler has ended: hand its outcome to the writer and free its slot (the run stays
        in flight, its lease extended, until outcome_written)."""
        entry.duration_s = time.monotonic() - entry.started
        entry.handed_over = True
        self._in_handlers -= 1
        self._writer.put(outcome)
        self.slot_freed.set()

    def outcome_written(self, outcome: Outcome, how: Settled) -> None:
        """The writer settled an outcome: report it and end the run."""
        entry = self.running.get(outcome.claimed)
        if entry is None:
            return
        self.settled[how] += 1
        self._report(entry, outcome, how)
        self._free(entry)

    def _report(self, entry: Running, outcome: Outcome, how: Settled) -> None:
        job_type, duration = entry.job.type, entry.duration_s
        if how is Settled.COMPLETED:  # the hot path first: no log fields are built below info
            self._metrics.completed(job_type, duration)
            if self._info:
                self._log.info("job_completed", result=entry.result, **self._outcome_fields(entry))
            return
        fields = self._outcome_fields(entry)
        if how is Settled.UNCONFIRMED:
            self._log.warning("job_outcome_unconfirmed", outcome=outcome.kind,
                              reason="the write was retried after a database error and matched no row, "
                                     "and the job's row could not tell whether the first try committed",
                              **fields)
        elif how is Settled.LEASE_LOST:
            self._metrics.lease_lost(job_type)
            self._log.warning("job_lease_lost", reason=f"{outcome.kind} found the job re-claimed or gone",
                              **fields)
        elif how is Settled.QUEUED:
            self._metrics.retried(job_type, duration)
            self._log.warning("job_retry_scheduled", error=outcome.error,
                              retry_in_s=round(outcome.backoff_s, 3), **fields)
        elif how is Settled.FAILED:
            self._metrics.failed(job_type, duration)
            self._log.error("job_failed", error=outcome.error, **fields)
        elif how is Settled.SNOOZED:
            self._metrics.snoozed(job_type)
            self._log.info("job_snoozed", snooze_s=outcome.backoff_s, **fields)
        elif how is Settled.CANCELED:
            self._metrics.canceled(job_type, duration)
            self._log.info("job_canceled", reason=outcome.error or CANCELED_BY_ADMIN, **fields)
        else:
            self._metrics.released(job_type)
            self._log.info("job_released", reason=outcome.error or "interrupted by shutdown", **fields)

    def _outcome_fields(self, entry: Running) -> dict[str, Any]:
        return {**self._fields(entry), "duration_ms": round(entry.duration_s * 1000, 1)}

    def _free(self, entry: Running) -> None:
        """End a run: its outcome is written, or nothing will be (its lease was lost)."""
        if self.running.pop(entry.claimed, None) is None:
            return
        if not entry.handed_over:  # stopped without an outcome: its slot frees now
            entry.handed_over = True
            self._in_handlers -= 1
        if self._latest_claim.get(entry.claimed.id) == entry.claimed:
            del self._latest_claim[entry.claimed.id]
        self.slot_freed.set()
        self._metrics.set_in_flight(len(self.running))
        if not self.running:
            self.idle.set()

    def close(self) -> None:
        """Stop the timeout timer (the loop is ending)."""
        self._deadlines.close()
