"""Who is making an admin change, for the audit log.

The admin API sets the acting caller for the duration of each request (`acting_as`); the service
reads it (`current_actor`) when it writes the audit row in the transaction of the change. A change
made outside a request (a test, an embedding application) is recorded with no actor.

The actor is a fingerprint of the bearer token, never the token itself: the first 12 hex digits of
its SHA-256, enough to tell tokens apart after a rotation and useless for logging in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum

FINGERPRINT_HEX = 12


class AuditAction(StrEnum):
    JOB_ENQUEUE = "job.enqueue"
    JOB_RETRY = "job.retry"
    JOB_CANCEL = "job.cancel"
    JOB_DELETE = "job.delete"
    JOB_BULK_RETRY = "job.bulk_retry"
    JOB_BULK_CANCEL = "job.bulk_cancel"
    JOB_BULK_DELETE = "job.bulk_delete"
    SCHEDULE_CREATE = "schedule.create"
    SCHEDULE_UPDATE = "schedule.update"
    SCHEDULE_DELETE = "schedule.delete"
    SCHEDULE_ENABLE = "schedule.enable"
    SCHEDULE_DISABLE = "schedule.disable"
    SCHEDULE_TRIGGER = "schedule.trigger"
    QUEUE_UPDATE = "queue.update"
    QUEUE_PAUSE = "queue.pause"
    QUEUE_RESUME = "queue.resume"


@dataclass(frozen=True, slots=True)
class Actor:
    fingerprint: str | None
    remote_addr: str | None


NOBODY = Actor(None, None)
_current: ContextVar[Actor] = ContextVar("ayb_jobs_audit_actor", default=NOBODY)


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:FINGERPRINT_HEX]


def current_actor() -> Actor:
    return _current.get()


@contextmanager
def acting_as(actor: Actor) -> Iterator[None]:
    reset = _current.set(actor)
    try:
        yield
    finally:
        _current.reset(reset)
