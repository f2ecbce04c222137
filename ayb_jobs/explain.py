"""Why a job is (not) running: every reason that applies, from facts read in one snapshot.

Pure: the service reads the facts (the job row, the live workers, how many due jobs are ahead of
it, whether another transaction holds its row) and this module turns them into reasons, each a
stable `code` and a message that says what is going on and what to do about it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ayb_jobs.models import iso

DEFAULT_QUEUE = "default"


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    message: str

    def to_api(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class WorkerFacts:
    worker_id: str
    alive: bool
    last_seen_at: datetime
    queues: Sequence[str]  # empty or "*": the daemon serves every queue
    types: Sequence[str]
    concurrency: int
    in_flight: int

    def serves(self, queue: str) -> bool:
        return not self.queues or "*" in self.queues or queue in self.queues


@dataclass(frozen=True, slots=True)
class LockHolder:
    """The session whose open transaction holds the job's row (None fields: it could not be named,
    e.g. several sessions share the lock)."""

    pid: int | None = None
    application: str | None = None
    state: str | None = None
    xact_start: datetime | None = None
    query: str | None = None


@dataclass(frozen=True, slots=True)
class QueueFacts:
    """The job's queue, where queues can be paused or limited."""

    name: str
    paused_at: datetime | None = None
    limit: int | None = None
    running: int = 0


@dataclass(frozen=True, slots=True)
class JobFacts:
    id: str
    type: str
    state: str
    run_at: datetime
    attempts: int
    max_attempts: int
    now: datetime
    last_error: str | None = None
    worker_id: str | None = None
    lease_until: datetime | None = None
    completed_at: datetime | None = None
    canceled_at: datetime | None = None
    cancel_requested_at: datetime | None = None
    updated_at: datetime | None = None
    due_ahead: int = 0  # due queued jobs before it in claim order (capped by the reader)
    due_ahead_capped: bool = False
    workers: Sequence[WorkerFacts] = field(default_factory=tuple)
    lock: LockHolder | None = None  # set when another transaction holds the row
    queue: QueueFacts | None = None


def explain(f: JobFacts) -> list[Reason]:
    """Every reason that applies to the job, most decisive first."""
    reasons: list[Reason] = []
    if f.cancel_requested_at is not None and f.state in ("queued", "running"):
        reasons.append(Reason("cancel_requested", f"cancel was requested at {_at(f.cancel_requested_at)}; "
                                                  "the handler is asked to stop and the job ends canceled"))
    if f.state == "queued":
        reasons += [r for r in _queued(f) if not (r.code == "due" and f.lock is not None)]
    elif f.state == "running":
        reasons += _running(f)
    else:
        reasons.append(_finished(f))
    if f.lock is not None:
        reasons.append(_locked(f.id, f.lock))
    return reasons


# --- queued ----------------------------------------------------------------------------------------

def _queued(f: JobFacts) -> list[Reason]:
    reasons: list[Reason] = []
    if f.run_at > f.now:
        reasons.append(_not_yet_due(f))
    reasons += _queue_state(f)
    reasons += _capacity(f)
    if f.run_at <= f.now and f.due_ahead:
        ahead = f"{f.due_ahead}+" if f.due_ahead_capped else str(f.due_ahead)
        reasons.append(Reason("waiting_behind", f"{ahead} due jobs are ahead of it in its queue (claimed by "
                                                "priority, then oldest run_at); it is claimed after them"))
    if not reasons:
        reasons.append(Reason("due", f"due since {_at(f.run_at)}; a live daemon claims it at its next poll "
                                     "(at once when woken by NOTIFY)"))
    return reasons


def _not_yet_due(f: JobFacts) -> Reason:
    left = _duration((f.run_at - f.now).total_seconds())
    if f.attempts > 0:
        error = f": {_short(f.last_error)}" if f.last_error else ""
        return Reason("retry_backoff", f"attempt {f.attempts} of {f.max_attempts} failed{error}; the next "
                                       f"try is at {_at(f.run_at)} (in {left}); to stop it: "
                                       f"`ayb-jobs jobs cancel {f.id}`")
    return Reason("scheduled_in_future", f"it is due at {_at(f.run_at)} (in {left}); nothing runs it before "
                                         f"then; to drop it: `ayb-jobs jobs cancel {f.id}`")


def _queue_state(f: JobFacts) -> list[Reason]:
    q = f.queue
    if q is None:
        return []
    reasons = []
    if q.paused_at is not None:
        reasons.append(Reason("queue_paused", f"queue '{q.name}' is paused since {_at(q.paused_at)}: "
                                              f"`ayb-jobs queues resume {q.name}`"))
    if q.limit is not None and q.running >= q.limit:
        reasons.append(Reason("queue_at_limit", f"queue '{q.name}' runs {q.running} / {q.limit} jobs, its "
                                                "limit; the job waits for one of them to finish, or raise "
                                                f"the limit: `ayb-jobs queues set {q.name} --concurrency N`"))
    return reasons


def _capacity(f: JobFacts) -> list[Reason]:
    queue = f.queue.name if f.queue else DEFAULT_QUEUE
    alive = [w for w in f.workers if w.alive]
    serving = [w for w in alive if w.serves(queue)]
    if not serving:
        who = "no daemon is alive" if not alive else f"{len(alive)} live daemon(s), none serving it"
        return [Reason("no_live_worker_for_queue", f"no live daemon takes jobs from queue '{queue}' ({who}); "
                                                   "start one: `ayb-jobs run` with jobs.enabled = true "
                                                   "(see `ayb-jobs workers list`)")]
    able = [w for w in serving if f.type in w.types]
    if not able:
        return [Reason("no_live_worker_with_handler", f"none of the {len(serving)} live daemon(s) has a "
                                                      f"handler for type '{f.type}'; start a daemon whose "
                                                      "jobs.handlers registers it (`ayb-jobs jobs types` "
                                                      "lists a daemon's types)")]
    if f.run_at <= f.now and all(w.in_flight >= w.concurrency for w in able):
        slots = sum(w.concurrency for w in able)
        return [Reason("all_workers_busy", f"all {slots} slots of the {len(able)} live daemon(s) that can "
                                           "run it are busy; it starts when one frees up; for more at once "
                                           "raise jobs.worker_concurrency or start another daemon")]
    return []


# --- running ---------------------------------------------------------------------------------------

def _running(f: JobFacts) -> list[Reason]:
    worker = next((w for w in f.workers if w.worker_id == f.worker_id), None)
    attempt = f"attempt {f.attempts} of {f.max_attempts}"
    lease = _at(f.lease_until)
    if f.lease_until is not None and f.lease_until < f.now:
        return [Reason("lease_expired_awaiting_recovery",
                       f"{attempt} on worker {f.worker_id}: its lease expired at {lease}; the next "
                       "recovery pass of any live daemon (every jobs.recovery_interval_s) queues it again "
                       "or fails it; if none runs, start one: `ayb-jobs run`")]
    if worker is not None and worker.alive:
        return [Reason("running", f"running on worker {f.worker_id} (alive, {attempt}), lease until {lease}")]
    seen = (f"last seen {_duration((f.now - worker.last_seen_at).total_seconds())} ago" if worker is not None
            else "no longer registered")
    return [Reason("running", f"running on worker {f.worker_id}, which is gone ({seen}); {attempt}: when "
                              f"its lease ends at {lease} a live daemon's recovery queues it again — nothing "
                              "to do but wait (the lease length is jobs.lease_duration_s)")]


# --- finished --------------------------------------------------------------------------------------

def _finished(f: JobFacts) -> Reason:
    if f.state == "completed":
        return Reason("completed", f"completed at {_at(f.completed_at)} after {f.attempts} attempt(s)")
    if f.state == "canceled":
        return Reason("canceled", f"canceled at {_at(f.canceled_at)}; to run it again: "
                                  f"`ayb-jobs jobs retry {f.id}`")
    return Reason("failed", f"failed after {f.attempts} of {f.max_attempts} attempts: "
                            f"{_short(f.last_error) or 'no error recorded'}; fix the cause, then "
                            f"`ayb-jobs jobs retry {f.id}`")


def _locked(job_id: str, h: LockHolder) -> Reason:
    if h.pid is None:
        return Reason("locked_by_transaction", "its row is locked by an open transaction that could not be "
                                               "named (several sessions share the lock); look for long open "
                                               "transactions in pg_stat_activity and end them")
    since = f", open since {_at(h.xact_start)}" if h.xact_start else ""
    query = f", last query: {_short(h.query, 200)}" if h.query else ""
    return Reason("locked_by_transaction",
                  f"its row is locked by the open transaction of pid {h.pid} (application "
                  f"'{h.application or ''}', {h.state or 'unknown state'}{since}{query}); no daemon can "
                  f"claim or update the job until it ends: commit or roll it back, or "
                  f"`SELECT pg_terminate_backend({h.pid})`")


# --- wording ---------------------------------------------------------------------------------------

def _at(t: datetime | None) -> str:
    text = iso(t)
    return text if text is not None else "an unknown time"


def _duration(seconds: float) -> str:
    s = max(0, int(seconds))
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {s}s" if minutes else f"{s}s"


def _short(text: str | None, limit: int = 300) -> str:
    if not text:
        return ""
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[:limit - 1] + "…"


def to_api(f: JobFacts, reasons: Sequence[Reason]) -> dict[str, Any]:
    return {"id": f.id, "state": f.state, "reasons": [r.to_api() for r in reasons]}
