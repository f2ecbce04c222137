"""Rows the dashboard tests seed straight into the database, and small page helpers."""

from __future__ import annotations

import json
from uuid import UUID

# The admin token the dashboard tests sign in with (a module of its own name, not `conftest`, so
# that importing it does not depend on which conftest pytest loaded first).
TOKEN = "dashboard-test-token-0123456789"


async def insert_job(pool, *, state: str = "queued", job_type: str = "job_prune", payload: dict | None = None,
                     attempts: int = 0, last_error: str | None = None, errors: list | None = None,
                     run_in_s: float = 3600, schedule_id: UUID | None = None) -> UUID:
    """A job as the daemon would have left it; queued jobs run in an hour unless `run_in_s` says."""
    return await pool.fetchval(
        """INSERT INTO _ayb_jobs (type, payload, state, attempts, max_attempts, last_error, errors, run_at,
                                  schedule_id)
           VALUES ($1, $2::jsonb, $3, $4, 3, $5, $6::jsonb, now() + make_interval(secs => $7), $8)
           RETURNING id""",
        job_type, json.dumps(payload or {}), state, attempts, last_error, json.dumps(errors or []),
        float(run_in_s), schedule_id)


async def insert_schedule(pool, name: str, *, timezone: str = "UTC", cron: str = "30 2 * * *") -> UUID:
    return await pool.fetchval(
        """INSERT INTO _ayb_job_schedules (name, job_type, cron_expr, timezone, next_run_at)
           VALUES ($1, 'job_prune', $2, $3, now() + interval '1 day') RETURNING id""", name, cron, timezone)


async def focused_key(page) -> str | None:
    """The data-key of the focused element ("<body>" when focus fell to the page)."""
    return await page.evaluate(
        "document.activeElement === document.body ? '<body>' : document.activeElement?.dataset?.key ?? null")
