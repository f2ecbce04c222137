"""Metrics: counters, histogram and gauges in Prometheus text exposition format."""

from __future__ import annotations

import re

from ayb_jobs.metrics import DURATION_BUCKETS, Metrics, escape_label
from ayb_jobs.models import JobStats

SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_]\w*="(\\.|[^"\\])*",?)*\})? -?[0-9.e+Inf]+$')


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_every_family_has_help_and_type_even_when_empty() -> None:
    text = Metrics().render(None)
    for name in ("claimed", "completed", "failed", "retried", "recovered", "released", "lease_lost"):
        assert f"# TYPE ayb_jobs_{name}_total counter" in text
    for name, kind in (
        ("ayb_jobs_schedule_fires_total", "counter"),
        ("ayb_jobs_db_errors_total", "counter"),
        ("ayb_jobs_job_duration_seconds", "histogram"),
        ("ayb_jobs_queue_depth", "gauge"),
        ("ayb_jobs_oldest_due_age_seconds", "gauge"),
        ("ayb_jobs_in_flight", "gauge"),
    ):
        assert f"# TYPE {name} {kind}" in text
    assert _lines(text) == ["ayb_jobs_in_flight 0"]
    assert text.endswith("\n")


def test_counters_by_label() -> None:
    m = Metrics()
    m.claimed("a", 3)
    m.claimed("a")
    m.retried("a", 0.1)
    m.recovered("b")
    m.released("b")
    m.lease_lost("b")
    m.schedule_fired("nightly")
    m.db_error("poller")
    m.db_error("poller")
    lines = _lines(m.render(None))
    for expected in (
        'ayb_jobs_claimed_total{type="a"} 4',
        'ayb_jobs_retried_total{type="a"} 1',
        'ayb_jobs_recovered_total{type="b"} 1',
        'ayb_jobs_released_total{type="b"} 1',
        'ayb_jobs_lease_lost_total{type="b"} 1',
        'ayb_jobs_schedule_fires_total{schedule="nightly"} 1',
        'ayb_jobs_db_errors_total{component="poller"} 2',
    ):
        assert expected in lines
    assert all(SAMPLE.match(line) for line in lines), lines


def test_histogram_buckets_are_cumulative_with_sum_and_count() -> None:
    m = Metrics()
    m.completed("t", 0.004)
    m.completed("t", 0.25)  # on a bound: counted in that bucket (le)
    m.failed("t", 1000.0)  # beyond the last bound: only +Inf
    lines = _lines(m.render(None))
    buckets = [line for line in lines if line.startswith("ayb_jobs_job_duration_seconds_bucket")]
    assert len(buckets) == len(DURATION_BUCKETS) + 1
    counts = [int(line.rsplit(" ", 1)[1]) for line in buckets]
    assert counts == sorted(counts) and counts[0] == 1 and counts[-1] == 3
    assert 'ayb_jobs_job_duration_seconds_bucket{type="t",le="0.25"} 2' in lines
    assert 'ayb_jobs_job_duration_seconds_bucket{type="t",le="600"} 2' in lines
    assert 'ayb_jobs_job_duration_seconds_bucket{type="t",le="+Inf"} 3' in lines
    assert 'ayb_jobs_job_duration_seconds_count{type="t"} 3' in lines
    assert 'ayb_jobs_job_duration_seconds_sum{type="t"} 1000.254' in lines


def test_queue_gauges_come_from_stats() -> None:
    m = Metrics()
    m.set_in_flight(2)
    stats = JobStats(
        queued=5, running=2, completed=10, failed=1, canceled=0, scheduled=3, oldest_queued_age_sec=12.5
    )
    lines = _lines(m.render(stats))
    assert 'ayb_jobs_queue_depth{state="queued"} 5' in lines
    assert 'ayb_jobs_queue_depth{state="completed"} 10' in lines
    assert "ayb_jobs_oldest_due_age_seconds 12.5" in lines
    assert "ayb_jobs_in_flight 2" in lines


def test_label_values_are_escaped() -> None:
    assert escape_label('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    m = Metrics()
    m.schedule_fired('x"y\nz')
    assert 'ayb_jobs_schedule_fires_total{schedule="x\\"y\\nz"} 1' in m.render(None)
