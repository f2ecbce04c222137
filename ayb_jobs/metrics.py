"""Process metrics and their Prometheus text exposition (format 0.0.4), without prometheus_client.

The daemon calls the recording methods from its single event loop; `render()` reads them together
with a queue snapshot (`JobStats`, or None when the database did not answer, in which case only the
process's own counters are written).

Why not prometheus_client (0.26 checked): it writes bucket bounds as `le="1.0"` where this writes
`le="1"`, and Prometheus 2 keys series by that text, so every histogram series would change name on
upgrade; it adds a `_created` series per counter unless a process-global switch turns them off; and
the queue gauges (read from the database, absent when it does not answer) and the health checks'
lines would still need custom collectors. What it would bring (OpenMetrics, exemplars, a
multi-process mode) is worth the switch once a multi-process mode exists.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import structlog

from ayb_jobs.models import JobState, JobStats

log = structlog.get_logger("ayb_jobs.metrics")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Jobs range from milliseconds (cleanup of an empty table) to the 600 s default timeout.
DURATION_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
)

_JOB_COUNTERS = {
    "claimed": "Jobs claimed by this daemon.",
    "completed": "Jobs completed.",
    "failed": "Jobs that failed for good (attempts exhausted or invalid payload).",
    "retried": "Failed attempts that were scheduled for a retry.",
    "recovered": "Jobs with an expired lease put back in the queue (or failed) by recovery.",
    "released": "Jobs released at shutdown without counting the attempt.",
    "lease_lost": "Outcomes discarded because the job's lease was lost.",
    "snoozed": "Attempts whose handler asked to run later (ayb_jobs.Snooze); not counted as attempts.",
    "canceled": "Running jobs stopped because an operator canceled them.",
}


def escape_label(value: str) -> str:
    """Label values escape backslash, double quote and newline (exposition format rules)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: dict[str, str]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{escape_label(v)}"' for k, v in pairs.items()) + "}"


def _num(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * len(DURATION_BUCKETS))
    total: int = 0
    sum: float = 0.0

    def observe(self, value: float) -> None:
        index = bisect_left(DURATION_BUCKETS, value)  # le-buckets: value == bound belongs to bound
        if index < len(self.counts):
            self.counts[index] += 1
        self.total += 1
        self.sum += value


class Metrics:
    """Counters, a duration histogram and the in-flight gauge of one daemon process."""

    def __init__(self) -> None:
        self._jobs: dict[str, defaultdict[str, int]] = {name: defaultdict(int) for name in _JOB_COUNTERS}
        self._schedule_fires: defaultdict[str, int] = defaultdict(int)
        self._schedule_decisions: defaultdict[str, int] = defaultdict(int)
        self._db_errors: defaultdict[str, int] = defaultdict(int)
        self._durations: defaultdict[str, _Histogram] = defaultdict(_Histogram)
        self._in_flight = 0
        self._collectors: list[Callable[[], Iterable[str]]] = []

    def add_collector(self, collect: Callable[[], Iterable[str]]) -> None:
        """Add exposition lines of another module (its own `# HELP`/`# TYPE` lines and samples) to
        every render. `collect` runs inside the scrape: it must return at once from values it keeps
        (no I/O); one that raises is logged and left out of that scrape."""
        self._collectors.append(collect)

    # --- recording (called by the daemon) -----------------------------------------------------------

    def claimed(self, job_type: str, n: int = 1) -> None:
        self._jobs["claimed"][job_type] += n

    def completed(self, job_type: str, duration_s: float) -> None:
        self._jobs["completed"][job_type] += 1
        self._durations[job_type].observe(duration_s)

    def failed(self, job_type: str, duration_s: float) -> None:
        self._jobs["failed"][job_type] += 1
        self._durations[job_type].observe(duration_s)

    def retried(self, job_type: str, duration_s: float) -> None:
        self._jobs["retried"][job_type] += 1
        self._durations[job_type].observe(duration_s)

    def recovered(self, job_type: str) -> None:
        self._jobs["recovered"][job_type] += 1

    def released(self, job_type: str) -> None:
        self._jobs["released"][job_type] += 1

    def lease_lost(self, job_type: str) -> None:
        self._jobs["lease_lost"][job_type] += 1

    def snoozed(self, job_type: str) -> None:
        self._jobs["snoozed"][job_type] += 1

    def canceled(self, job_type: str, duration_s: float) -> None:
        self._jobs["canceled"][job_type] += 1
        self._durations[job_type].observe(duration_s)

    def totals(self) -> dict[str, int]:
        """Every job counter summed over the types, e.g. {"completed": 3, "failed": 0, ...}."""
        return {name: sum(per_type.values()) for name, per_type in self._jobs.items()}

    def schedule_fired(self, schedule_name: str) -> None:
        self._schedule_fires[schedule_name] += 1

    def schedule_decided(self, outcome: str) -> None:
        self._schedule_decisions[outcome] += 1

    def db_error(self, component: str) -> None:
        self._db_errors[component] += 1

    def set_in_flight(self, n: int) -> None:
        self._in_flight = n

    # --- exposition ---------------------------------------------------------------------------------

    def render(self, stats: JobStats | None) -> str:
        out: list[str] = []
        for name, help_text in _JOB_COUNTERS.items():
            _family(
                out,
                f"ayb_jobs_{name}_total",
                "counter",
                help_text,
                [({"type": t}, v) for t, v in sorted(self._jobs[name].items())],
            )
        _family(
            out,
            "ayb_jobs_schedule_fires_total",
            "counter",
            "Jobs enqueued by schedules.",
            [({"schedule": s}, v) for s, v in sorted(self._schedule_fires.items())],
        )
        _family(
            out,
            "ayb_jobs_schedule_decisions_total",
            "counter",
            "Schedule slots decided by this daemon, by outcome (enqueued, skipped_overlap, skipped_misfire).",
            [({"outcome": o}, v) for o, v in sorted(self._schedule_decisions.items())],
        )
        _family(
            out,
            "ayb_jobs_db_errors_total",
            "counter",
            "Database errors seen, by component.",
            [({"component": c}, v) for c, v in sorted(self._db_errors.items())],
        )
        self._render_histogram(out)
        _family(
            out,
            "ayb_jobs_queue_depth",
            "gauge",
            "Jobs in the database by state.",
            [({"state": str(s)}, getattr(stats, s.value)) for s in JobState] if stats else [],
        )
        _family(
            out,
            "ayb_jobs_scheduled_jobs",
            "gauge",
            "Queued jobs whose run_at is in the future.",
            [({}, stats.scheduled)] if stats else [],
        )
        _family(
            out,
            "ayb_jobs_oldest_due_age_seconds",
            "gauge",
            "Age of the oldest due queued job.",
            [({}, stats.oldest_queued_age_sec)] if stats else [],
        )
        _family(
            out, "ayb_jobs_in_flight", "gauge", "Jobs running in this daemon now.", [({}, self._in_flight)]
        )
        for collect in self._collectors:
            try:
                lines = [line.rstrip("\n") for line in collect()]
            except Exception as exc:
                log.warning("metrics_collector_failed", collector=getattr(collect, "__qualname__", "?"),
                            error=f"{type(exc).__name__}: {exc}")
                continue
            out.extend(lines)
        return "\n".join(out) + "\n"

    def _render_histogram(self, out: list[str]) -> None:
        name = "ayb_jobs_job_duration_seconds"
        out.append(f"# HELP {name} Run time of finished attempts, by job type.")
        out.append(f"# TYPE {name} histogram")
        for job_type, hist in sorted(self._durations.items()):
            cumulative = 0
            for bound, count in zip(DURATION_BUCKETS, hist.counts, strict=True):
                cumulative += count
                out.append(f"{name}_bucket{_labels({'type': job_type, 'le': _num(bound)})} {cumulative}")
            out.append(f"{name}_bucket{_labels({'type': job_type, 'le': '+Inf'})} {hist.total}")
            out.append(f"{name}_sum{_labels({'type': job_type})} {_num(hist.sum)}")
            out.append(f"{name}_count{_labels({'type': job_type})} {hist.total}")


def _family(
    out: list[str], name: str, kind: str, help_text: str, samples: list[tuple[dict[str, str], float]]
) -> None:
    out.append(f"# HELP {name} {help_text}")
    out.append(f"# TYPE {name} {kind}")
    out.extend(f"{name}{_labels(labels)} {_num(value)}" for labels, value in samples)
