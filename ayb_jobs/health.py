"""Postgres health guardrails: the conditions that take Postgres-backed queues down in production.

- a transaction (or replication slot, or prepared transaction) holding the xmin horizon back, so
  vacuum cannot remove the dead rows every job leaves behind and the queue tables bloat;
- dead tuples piling up in an `_ayb_*` table (autovacuum falling behind);
- the NOTIFY queue filling up (when full, every NOTIFY, and so every enqueue, fails).

One reading per `health.check_interval_s` for the whole cluster of daemons: each interval, the first
daemon to find the one-row `_ayb_health_snapshot` stale takes it (FOR UPDATE SKIP LOCKED, so nobody
waits), queries the statistics views and stores the raw values there; the others just read that row.
So every daemon serves the same /api/admin/health and gauges, only one queries pg_stat_activity and
friends, and a state change is logged (`pg_health_warning` / `pg_health_recovered`) once, by the
daemon that noticed it, with what to do. Each daemon judges the raw values against its own
thresholds.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from ayb_jobs.config import HealthSettings
from ayb_jobs.db import ops_queries as ops
from ayb_jobs.errors import DatabaseUnavailable
from ayb_jobs.metrics import escape_label
from ayb_jobs.models import iso

log = structlog.get_logger("ayb_jobs.health")
# A leader takes the snapshot when it is older than this share of the interval, so that jitter in
# the daemons' loops does not make an interval pass without a reading.
STALE_SHARE = 0.8
READ_TIMEOUT_S = 10.0
OK, WARNING = "ok", "warning"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: str
    value: float
    threshold: float
    message: str
    detail: dict[str, Any] | None = None

    def to_api(self) -> dict[str, Any]:
        out = {"name": self.name, "status": self.status, "value": self.value, "threshold": self.threshold,
               "message": self.message}
        if self.detail is not None:
            out["detail"] = self.detail
        return out


@dataclass(frozen=True, slots=True)
class HealthReport:
    checks: list[Check]
    checked_at: datetime | None
    checked_by: str | None = None

    @property
    def status(self) -> str:
        return WARNING if any(c.status == WARNING for c in self.checks) else OK

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "checks": [c.to_api() for c in self.checks]}
        if self.checked_at is not None:
            out["checkedAt"] = iso(self.checked_at)
        return out


# --- turning catalog rows into a stored reading (pure) ------------------------------------------


def build_reading(raw: dict[str, Any], previous: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The JSON stored in the snapshot: raw values plus since-when each slot has held its xmin."""
    return {
        "takenAt": iso(now),
        "backend": _jsonable(raw["backend"]),
        "prepared": _jsonable(raw["prepared"]),
        "slots": _track_slots(raw["slots"], previous.get("slots") or [], now),
        "tables": [_jsonable(t) for t in raw["tables"]],
        "notifyQueueUsage": raw["notify_queue_usage"],
    }


def _jsonable(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {k: iso(v) if isinstance(v, datetime) else v for k, v in row.items()}


def _track_slots(slots: list[dict[str, Any]], previous: list[dict[str, Any]],
                 now: datetime) -> list[dict[str, Any]]:
    # Postgres records no time for a slot's xmin, so its age is "since we first saw this xmin":
    # a lower bound that grows while the slot stays stuck and resets when it moves on.
    seen = {(p["slot_name"], p["xmin"]): p["since"] for p in previous}
    return [{**_jsonable(s), "since": seen.get((s["slot_name"], s["xmin"]), iso(now))} for s in slots]


# --- judging a reading (pure) ----------------------------------------------------------------------


def evaluate(reading: dict[str, Any], limits: HealthSettings) -> list[Check]:
    if not reading:
        return []
    taken = datetime.fromisoformat(reading["takenAt"])
    return [_xmin_check(reading, taken, limits), _dead_tuples_check(reading, limits),
            _notify_check(reading, limits)]


@dataclass(frozen=True, slots=True)
class _Holder:
    age_s: float
    describe: str
    remedy: str
    detail: dict[str, Any] = field(default_factory=dict)


def _holders(reading: dict[str, Any], taken: datetime) -> Iterator[_Holder]:
    if (b := reading.get("backend")) is not None:
        yield _Holder(b["age_s"], _describe_backend(b),
                      f"end that transaction (COMMIT or ROLLBACK in its session) or run "
                      f"`SELECT pg_terminate_backend({b['pid']})`",
                      {"kind": "backend", **{k: b[k] for k in ("pid", "application_name", "state", "since",
                                                               "query_start", "query", "xid_age")}})
    if (p := reading.get("prepared")) is not None:
        yield _Holder(p["age_s"], f"prepared transaction '{p['gid']}' (owner {p['owner']}, prepared "
                                  f"{p['since']})",
                      f"finish it with COMMIT PREPARED '{p['gid']}' or ROLLBACK PREPARED '{p['gid']}'",
                      {"kind": "prepared", "gid": p["gid"], "since": p["since"], "xid_age": p["xid_age"]})
    for s in reading.get("slots") or []:
        age = max(0.0, (taken - datetime.fromisoformat(s["since"])).total_seconds())
        state = "active" if s["active"] else "inactive"
        yield _Holder(age, f"{state} replication slot '{s['slot_name']}' (xmin {s['xmin']} unchanged since "
                           f"{s['since']})",
                      f"reconnect its consumer, or drop it with "
                      f"`SELECT pg_drop_replication_slot('{s['slot_name']}')`",
                      {"kind": "slot", "slot_name": s["slot_name"], "since": s["since"],
                       "xid_age": s["xid_age"]})


def _describe_backend(b: dict[str, Any]) -> str:
    query = " ".join((b.get("query") or "").split())
    return (f"pid {b['pid']} (application '{b['application_name'] or '(none)'}', state '{b['state']}', "
            f"transaction open {_duration(b['age_s'])} since {b['since']}, query started "
            f"{b['query_start']}: '{query}')")


def _xmin_check(reading: dict[str, Any], taken: datetime, limits: HealthSettings) -> Check:
    name, threshold = "xmin_horizon", float(limits.xmin_horizon_warn_s)
    oldest = max(_holders(reading, taken), key=lambda h: h.age_s, default=None)
    if oldest is None:
        return Check(name, OK, 0.0, threshold, "no transaction, replication slot or prepared transaction "
                                               "holds the xmin horizon back")
    age = round(oldest.age_s, 3)
    if age <= threshold:
        return Check(name, OK, age, threshold,
                     f"oldest horizon holder: {oldest.describe}, {_duration(age)} (warns above "
                     f"{_duration(threshold)})", oldest.detail)
    return Check(name, WARNING, age, threshold,
                 f"{oldest.describe} has held the xmin horizon back for {_duration(age)} (more than "
                 f"{_duration(threshold)}), so vacuum cannot remove dead rows and the queue tables "
                 f"bloat; {oldest.remedy}", oldest.detail)


def _dead_tuples_check(reading: dict[str, Any], limits: HealthSettings) -> Check:
    name, threshold = "dead_tuples", float(limits.dead_tuples_warn)
    tables = reading.get("tables") or []
    worst = max(tables, key=lambda t: t["dead_tuples"], default=None)
    if worst is None:
        return Check(name, OK, 0.0, threshold, "no _ayb_* tables found")
    dead = float(worst["dead_tuples"])
    vacuumed = _ago(worst.get("autovacuum_age_s"))
    if dead <= threshold:
        return Check(name, OK, dead, threshold,
                     f"most dead tuples: {worst['table_name']} with {int(dead)} (last autovacuum {vacuumed})")
    return Check(name, WARNING, dead, threshold,
                 f"{worst['table_name']} has {int(dead)} dead tuples (more than {int(threshold)}; last "
                 f"autovacuum {vacuumed}): autovacuum is falling behind or the xmin horizon is held back; "
                 f"check the xmin_horizon check, run `VACUUM (VERBOSE) {worst['table_name']}` and tune "
                 f"autovacuum for that table", {"table": worst["table_name"]})


def _notify_check(reading: dict[str, Any], limits: HealthSettings) -> Check:
    name, threshold = "notify_queue", float(limits.notify_queue_warn_ratio)
    usage = float(reading.get("notifyQueueUsage") or 0.0)
    shown = f"{usage:.1%}"
    if usage <= threshold:
        return Check(name, OK, usage, threshold, f"NOTIFY queue {shown} full")
    return Check(name, WARNING, usage, threshold,
                 f"NOTIFY queue {shown} full (more than {threshold:.0%}): a session that LISTENs but never "
                 f"reads (often one idle in a transaction) keeps it from draining; when it is full every "
                 f"enqueue fails; find and end that session (see pg_stat_activity)")


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _ago(seconds: float | None) -> str:
    return "never" if seconds is None else f"{_duration(seconds)} ago"


def changes(before: list[Check], after: list[Check]) -> list[Check]:
    """Checks of `after` whose status differs from `before` (a check absent before counts as ok)."""
    previous = {c.name: c.status for c in before}
    return [c for c in after if c.status != previous.get(c.name, OK)]


# --- gauges --------------------------------------------------------------------------------------

_GAUGES = {
    "ayb_jobs_pg_xmin_horizon_age_seconds": "Age of the oldest transaction, replication slot or prepared "
                                            "transaction holding the xmin horizon back.",
    "ayb_jobs_pg_dead_tuples": "Dead tuples per _ayb_* table.",
    "ayb_jobs_pg_last_autovacuum_age_seconds": "Seconds since the last autovacuum per _ayb_* table "
                                               "(absent when never autovacuumed).",
    "ayb_jobs_pg_notify_queue_usage_ratio": "Fraction of the NOTIFY queue in use (0-1).",
    "ayb_jobs_table_bytes": "Size of each _ayb_* table with its indexes and TOAST, in bytes.",
}


def health_metrics_lines(reading: dict[str, Any]) -> list[str]:
    """Prometheus text lines (format 0.0.4) of the gauges of one reading; families without samples
    when there is no reading yet."""
    samples: dict[str, list[tuple[dict[str, str], float]]] = {name: [] for name in _GAUGES}
    if reading:
        taken = datetime.fromisoformat(reading["takenAt"])
        ages = [h.age_s for h in _holders(reading, taken)]
        samples["ayb_jobs_pg_xmin_horizon_age_seconds"].append(({}, max(ages, default=0.0)))
        samples["ayb_jobs_pg_notify_queue_usage_ratio"].append(({}, float(reading["notifyQueueUsage"])))
        for t in reading.get("tables") or []:
            label = {"table": t["table_name"]}
            samples["ayb_jobs_pg_dead_tuples"].append((label, t["dead_tuples"]))
            samples["ayb_jobs_table_bytes"].append((label, t["bytes"]))
            if t.get("autovacuum_age_s") is not None:
                samples["ayb_jobs_pg_last_autovacuum_age_seconds"].append((label, t["autovacuum_age_s"]))
    lines: list[str] = []
    for name, help_text in _GAUGES.items():
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        lines += [f"{name}{_labels(labels)} {_number(value)}" for labels, value in samples[name]]
    return lines


def _labels(pairs: dict[str, str]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{escape_label(v)}"' for k, v in pairs.items()) + "}"


def _number(value: float) -> str:
    value = float(value)
    if not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
    return str(int(value)) if value.is_integer() else repr(round(value, 3))


# --- the monitor ---------------------------------------------------------------------------------


class HealthMonitor:
    """Takes or reads the cluster's health reading every interval; serves the last one."""

    def __init__(self, pool: Any, limits: HealthSettings | None = None, *, worker_id: str = "",
                 interval_s: float | None = None) -> None:
        self._pool = pool
        self.limits = limits or HealthSettings()
        self.worker_id = worker_id
        self.interval_s = float(interval_s if interval_s is not None else self.limits.check_interval_s)
        self.stop = asyncio.Event()
        self._reading: dict[str, Any] = {}
        self._taken_by: str | None = None
        self._fetched_at: float | None = None  # monotonic time of the last successful run_once

    async def run_once(self) -> HealthReport:
        """Take this interval's reading if nobody has, else read the stored one."""
        taken_by = None
        async with self._pool.acquire() as conn:
            async with conn.transaction():
                claimed = await ops.claim_health_reading(conn, min_age_s=self.interval_s * STALE_SHARE)
                if claimed is not None:
                    reading = build_reading(await ops.health_catalog(conn), claimed.reading, claimed.now)
                    await ops.store_health_reading(conn, taken_by=self.worker_id, reading=reading)
                    taken_by = self.worker_id
            if claimed is None:
                snapshot = await ops.health_snapshot(conn)
                reading = snapshot.reading
        self._reading, self._taken_by, self._fetched_at = reading, taken_by, time.monotonic()
        if claimed is not None:
            self._log_changes(claimed.reading, reading)
        return self.latest()

    def latest(self) -> HealthReport:
        taken = datetime.fromisoformat(self._reading["takenAt"]) if self._reading else None
        return HealthReport(evaluate(self._reading, self.limits), taken, self._taken_by)

    async def report(self) -> HealthReport:
        """The last reading; read now if there is none or it is stale (the loop is not running)."""
        fresh = self._fetched_at is not None and time.monotonic() - self._fetched_at < 2 * self.interval_s
        if fresh:
            return self.latest()
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                return await self.run_once()
        except TimeoutError:
            raise DatabaseUnavailable(f"the database did not answer the health reading within "
                                      f"{READ_TIMEOUT_S:.0f} s; check that Postgres is running") from None

    def metrics_lines(self) -> list[str]:
        return health_metrics_lines(self._reading)

    def _log_changes(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        for check in changes(evaluate(before, self.limits), evaluate(after, self.limits)):
            event = "pg_health_warning" if check.status == WARNING else "pg_health_recovered"
            emit = log.warning if check.status == WARNING else log.info
            emit(event, check=check.name, status=check.status, value=check.value, threshold=check.threshold,
                 message=check.message, **({"holder": check.detail} if check.detail else {}))

    async def run(self) -> None:
        while not self.stop.is_set():
            try:
                async with asyncio.timeout(READ_TIMEOUT_S):  # a hung server must not stall the loop
                    await self.run_once()
            except Exception as exc:  # an outage: keep the last reading, try again next interval
                log.warning("db_error", component="health", error=f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=self.interval_s)
