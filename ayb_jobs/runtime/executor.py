"""Runs claimed jobs: one task per job, bounded by worker_concurrency, each under a timeout.

A job holds its slot from claim until its outcome is written (see outcomes.py). How a handler
ends decides the outcome:
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
confused. This class alone owns that state (`running`); the heartbeat and the daemon's drain go
through its methods.
"""

from __future__ import annotations

import asyncio
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
from ayb_jobs.models import Job
from ayb_jobs.results import encode_result
from ayb_jobs.runtime.dbwatch import DatabaseWatch, connection_like
from ayb_jobs.runtime.outcomes import Outcome, OutcomeWriter, Settled

MAX_ERROR_BYTES = 4096
# A type's own backoff is trusted up to a day (what a Snooze allows too).
MAX_BACKOFF_S = 86400.0
StopReason = Literal["shutdown", "lease_lost", "superseded", "lease_unconfirmed", "canceled"]
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
    job: Job
    claimed: Claimed
    task: asyncio.Task[None] | None = None
    stop_reason: StopReason | None = None
    started: float = field(default_factory=time.monotonic)
    # Monotonic time until which the lease is known to hold: from when the claim (or the last
    # heartbeat that extended it) was sent, plus the lease. The database set it later than that.
    lease_known_until: float = float("inf")


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
        self._metrics = metrics
        self.worker_id = worker_id
        self.concurrency = concurrency
        self._job_timeout_s = job_timeout_s
        self._rand = rand
        # A concrete logger for the per-job hot path (the module's lazy proxy rebinds on every call).
        self._log = log.bind()
        self.running: dict[Claimed, Running] = {}
        # How outcomes settled, for the drain's report (and anyone counting).
        self.settled: Counter[Settled] = Counter()
        self.slot_freed = asyncio.Event()
        self.idle = asyncio.Event()
        self.idle.set()

    def free_slots(self) -> int:
        return self.concurrency - len(self.running)

    def start(self, jobs: list[Job], *, claim_sent: float | None = None) -> None:
        """Run freshly claimed jobs; `claim_sent` is the monotonic time the claim was sent."""
        sent = time.monotonic() if claim_sent is None else claim_sent
        known_until = sent + self.lease_s if self.lease_s is not None else float("inf")
        for job in jobs:
            claimed = Claimed.of(job)
            self._stop_stale_runs(claimed)
            entry = Running(job, claimed, lease_known_until=known_until)
            self.running[claimed] = entry
            entry.task = asyncio.create_task(self._run(entry), name=f"job-{job.id}")
            self._metrics.claimed(job.type)
            self._log.debug("job_claimed", **self._fields(entry))
        if self.running:
            self.idle.clear()
        self._metrics.set_in_flight(len(self.running))

    def _stop_stale_runs(self, claimed: Claimed) -> None:
        """A new claim of a job means any older run of it here lost its lease (it was recovered,
        then retried by an admin, and claimed by us again): stop it, it must write nothing."""
        for other in [c for c in self.running if c.id == claimed.id and c.seq < claimed.seq]:
            self.stop_job(other, "superseded")

    def stop_job(self, claimed: Claimed, reason: StopReason) -> None:
        """Cancel a running handler; its outcome follows from the reason."""
        entry = self.running.get(claimed)
        if entry is not None and self.in_handler(claimed):
            entry.stop_reason = reason
            entry.task.cancel()

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
        return entry is not None and entry.task is not None and not entry.task.done()

    def claimed(self) -> list[Claimed]:
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
        return min((e.lease_known_until - margin_s for c, e in self.running.items() if self.in_handler(c)),
                   default=float("inf"))

    def stop_unconfirmed(self, now: float, margin_s: float) -> int:
        """Stop the handlers whose lease may end within `margin_s`; returns how many."""
        late = [c for c, e in self.running.items()
                if self.in_handler(c) and e.lease_known_until - margin_s <= now]
        for claimed in late:
            self.stop_job(claimed, "lease_unconfirmed")
        return len(late)

    def _fields(self, entry: Running) -> dict[str, Any]:
        return {"job_id": str(entry.job.id), "job_type": entry.job.type, "attempt": entry.job.attempts,
                "claim_seq": entry.claimed.seq, "worker_id": self.worker_id}

    async def _run(self, entry: Running) -> None:
        if entry.job.cancel_requested_at is not None:
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
        try:
            await self._attempt(entry, job_type.handler)
        except asyncio.CancelledError:  # also while judging an error (the probe awaits)
            self._after_cancel(entry)
            raise

    async def _attempt(self, entry: Running, handler: Any) -> None:
        job = entry.job
        ctx = JobContext(job.id, job.type, job.attempts, job.max_attempts, self.worker_id, self._pool,
                         self._log.bind(**self._fields(entry)))
        faults_before = self._watch.faults
        try:
            async with asyncio.timeout(self._timeout_s(job.type)) as deadline:
                result = await handler(job.payload, ctx)
        except TimeoutError as exc:
            if deadline.expired() and entry.stop_reason != "canceled":
                self._timed_out(entry)
            else:
                await self._ended(entry, exc, faults_before)
        except Exception as exc:
            await self._ended(entry, exc, faults_before)
        else:
            if entry.stop_reason == "canceled":  # it swallowed the cancellation: no veto
                self._canceled(entry)
            else:
                self._complete(entry, result)

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
        else:
            self._settle(entry, Outcome("release", entry.claimed, entry.job.type))

    def _canceled(self, entry: Running) -> None:
        self._settle(entry, Outcome("cancel", entry.claimed, entry.job.type, error=CANCELED_BY_ADMIN))

    def _timeout_s(self, job_type: str) -> float:
        """The type's timeout_s when it has one, else jobs.job_timeout_s."""
        found = self._registry.get(job_type)
        return found.timeout_s if found is not None and found.timeout_s is not None else self._job_timeout_s

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

    def _timed_out(self, entry: Running) -> None:
        timeout_s = self._timeout_s(entry.job.type)
        self._log.warning("job_timed_out", timeout_s=timeout_s, **self._fields(entry))
        self._fail(entry, f"timed out after {timeout_s:g}s")

    def _complete(self, entry: Running, result: Any) -> None:
        self._settle(entry, Outcome("complete", entry.claimed, entry.job.type, result=encode_result(result)),
                     result=result)

    def _fail(self, entry: Running, error: str, *, retryable: bool = True) -> None:
        delay = self._backoff_s(entry.job.type, entry.job.attempts)
        self._settle(entry, Outcome("fail", entry.claimed, entry.job.type, error=error, backoff_s=delay,
                                    retryable=retryable))

    def _settle(self, entry: Running, outcome: Outcome, result: Any = None) -> None:
        duration = time.monotonic() - entry.started

        def settled(how: Settled) -> None:
            self.settled[how] += 1
            self._report(entry, outcome, how, duration, result)
            self._free(entry)

        outcome.on_settled = settled
        self._writer.put(outcome)

    def _report(self, entry: Running, outcome: Outcome, how: Settled, duration: float,
                result: Any) -> None:
        fields = {**self._fields(entry), "duration_ms": round(duration * 1000, 1)}
        job_type = entry.job.type
        if how is Settled.UNCONFIRMED:
            self._log.warning("job_outcome_unconfirmed", outcome=outcome.kind,
                              reason="the write was retried after a database error and matched no row, "
                                     "and the job's row could not tell whether the first try committed",
                              **fields)
        elif how is Settled.LEASE_LOST:
            self._metrics.lease_lost(job_type)
            self._log.warning("job_lease_lost", reason=f"{outcome.kind} found the job re-claimed or gone",
                              **fields)
        elif how is Settled.COMPLETED:
            self._metrics.completed(job_type, duration)
            self._log.info("job_completed", result=result, **fields)
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

    def _free(self, entry: Running) -> None:
        if self.running.pop(entry.claimed, None) is not None:
            self.slot_freed.set()
            self._metrics.set_in_flight(len(self.running))
            if not self.running:
                self.idle.set()
