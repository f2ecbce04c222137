"""The built-in maintenance jobs (docs/cron.md): bounded batch deletes of expired AYB rows.

Each handler deletes in batches of BATCH rows per statement so it never holds long locks, and
completes with {"skipped": "<table> not found"} on a database that is not an AYB database.
"""

from __future__ import annotations

from typing import Any

from ayb_jobs.db import queries
from ayb_jobs.errors import InvalidPayload
from ayb_jobs.handlers import JobContext, Registry

BATCH = 5000
# The legacy pruner's fixed retention (jobs.enabled = false), as in AYB.
LEGACY_WEBHOOK_RETENTION_HOURS = 168
# Admin audit rows are kept 90 days unless job_prune's payload says otherwise.
AUDIT_RETENTION_HOURS = 2160


def _hours(payload: dict[str, Any], key: str, default: int) -> int:
    value = payload.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidPayload(f"payload field '{key}' must be an integer >= 1 (hours), got {value!r}")
    return value


def _no_unknown_keys(payload: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(payload) - allowed)
    if unknown:
        raise InvalidPayload(
            f"unknown payload field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed)) or 'none'}"
        )


async def delete_in_batches(db: Any, query: str, *args: Any) -> int:
    """Repeat one bounded delete until a batch comes back short; returns rows deleted."""
    total = 0
    while True:
        n = await queries.delete_batch(db, query, *args)
        total += n
        if n < BATCH:
            return total


async def _missing(ctx: JobContext, *tables: str) -> dict[str, Any] | None:
    for table in tables:
        if not await queries.table_exists(ctx.pool, table):
            ctx.log.warning("cleanup_table_missing", table=table)
            return {"skipped": f"{table} not found"}
    return None


async def stale_session_cleanup(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    _no_unknown_keys(payload, set())
    if skipped := await _missing(ctx, "_ayb_sessions"):
        return skipped
    return {"deleted": await delete_in_batches(ctx.pool, "delete_expired_sessions", BATCH)}


async def webhook_delivery_prune(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    _no_unknown_keys(payload, {"retention_hours"})
    hours = _hours(payload, "retention_hours", 168)
    if skipped := await _missing(ctx, "_ayb_webhook_deliveries"):
        return skipped
    return {"deleted": await delete_in_batches(ctx.pool, "delete_old_webhook_deliveries", hours, BATCH)}


async def expired_oauth_cleanup(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    _no_unknown_keys(payload, {"revoked_retention_hours"})
    hours = _hours(payload, "revoked_retention_hours", 720)
    if skipped := await _missing(ctx, "_ayb_oauth_tokens", "_ayb_oauth_authorization_codes"):
        return skipped
    tokens = await delete_in_batches(ctx.pool, "delete_expired_oauth_tokens", hours, BATCH)
    codes = await delete_in_batches(ctx.pool, "delete_expired_oauth_codes", BATCH)
    return {"tokens_deleted": tokens, "codes_deleted": codes}


async def expired_auth_cleanup(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    _no_unknown_keys(payload, set())
    if skipped := await _missing(ctx, "_ayb_magic_links", "_ayb_password_resets"):
        return skipped
    links = await delete_in_batches(ctx.pool, "delete_expired_magic_links", BATCH)
    resets = await delete_in_batches(ctx.pool, "delete_expired_password_resets", BATCH)
    return {"magic_links_deleted": links, "password_resets_deleted": resets}


async def job_prune(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    _no_unknown_keys(payload, {"completed_retention_hours", "failed_retention_hours",
                               "audit_retention_hours"})
    done_h = _hours(payload, "completed_retention_hours", 168)
    failed_h = _hours(payload, "failed_retention_hours", 720)
    audit_h = _hours(payload, "audit_retention_hours", AUDIT_RETENTION_HOURS)
    total = 0
    while True:
        n = await queries.prune_jobs(ctx.pool, completed_retention_h=done_h, failed_retention_h=failed_h,
                                     batch=BATCH)
        total += n
        if n < BATCH:
            break
    audit = await delete_in_batches(ctx.pool, "delete_old_audit_entries", audit_h, BATCH)
    return {"deleted": total, "audit_deleted": audit}


def register_builtins(registry: Registry) -> None:
    registry.add("stale_session_cleanup", stale_session_cleanup,
                 description="Delete expired sessions (_ayb_sessions)")
    registry.add("webhook_delivery_prune", webhook_delivery_prune,
                 description="Delete webhook deliveries older than retention_hours (default 168)")
    registry.add("expired_oauth_cleanup", expired_oauth_cleanup,
                 description="Delete expired/revoked OAuth tokens and used/expired authorization codes")
    registry.add("expired_auth_cleanup", expired_auth_cleanup,
                 description="Delete expired magic links and password resets")
    registry.add("job_prune", job_prune,
                 description="Delete finished jobs past their retention (completed 168 h, failed 720 h) "
                             "and admin audit entries (2160 h)")
