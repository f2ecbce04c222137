"""Publishing this daemon's job types and their policies to _ayb_job_types at start.

Enqueue through the admin API, the CLI, the Python client and schedules fills a job's queue,
priority and max_attempts from that table when the caller leaves them out, so every producer
follows the policies of the code that runs the jobs. timeout_s and backoff stay in the daemon:
they are applied by the executor that runs the job.
"""

from __future__ import annotations

from typing import Any

from ayb_jobs.db.queue_queries import TypePolicy
from ayb_jobs.db.queue_queries import publish_job_types as _publish
from ayb_jobs.handlers import JobType, Registry


def policy_row(t: JobType) -> TypePolicy:
    return TypePolicy(t.name, t.queue, t.priority, t.max_attempts, t.timeout_s, t.backoff is not None,
                      t.description, t.builtin)


async def publish_job_types(pool: Any, registry: Registry) -> None:
    await _publish(pool, [policy_row(t) for t in registry.types()])
