"""The reasons of explain as a pure function of the facts: each code, and its message's advice."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from ayb_jobs.explain import JobFacts, LockHolder, QueueFacts, WorkerFacts, explain

NOW = datetime(2030, 1, 7, 10, 0, tzinfo=UTC)
ID = "00000000-0000-0000-0000-000000000001"


def worker(wid: str = "w1", *, alive: bool = True, types=("mail",), concurrency: int = 4, in_flight: int = 0,
           queues=(), seen: timedelta = timedelta(seconds=2)) -> WorkerFacts:
    return WorkerFacts(wid, alive, NOW - seen, queues, types, concurrency, in_flight)


def job(**kw) -> JobFacts:
    base = dict(id=ID, type="mail", state="queued", run_at=NOW - timedelta(seconds=1), attempts=0,
                max_attempts=3, now=NOW, workers=(worker(),))
    return JobFacts(**{**base, **kw})


def codes(f: JobFacts) -> list[str]:
    return [r.code for r in explain(f)]


def message(f: JobFacts, code: str) -> str:
    return next(r.message for r in explain(f) if r.code == code)


def test_a_due_job_with_a_free_worker_is_simply_due() -> None:
    assert codes(job()) == ["due"]


def test_due_in_an_hour_says_when_and_how_long() -> None:
    f = job(run_at=NOW + timedelta(hours=1))
    assert codes(f) == ["scheduled_in_future"]
    assert "2030-01-07T11:00:00Z (in 1h 0m)" in message(f, "scheduled_in_future")


def test_a_failed_attempt_waiting_for_its_retry_is_backoff_with_the_error() -> None:
    f = job(run_at=NOW + timedelta(seconds=30), attempts=1, last_error="SMTP 451 try later")
    assert codes(f) == ["retry_backoff"]
    assert "attempt 1 of 3 failed: SMTP 451 try later" in message(f, "retry_backoff")


def test_no_live_daemon_at_all() -> None:
    f = job(workers=(worker(alive=False),))
    assert codes(f) == ["no_live_worker_for_queue"]
    assert "no daemon is alive" in message(f, "no_live_worker_for_queue")
    assert "ayb-jobs run" in message(f, "no_live_worker_for_queue")


def test_no_live_daemon_serving_the_queue() -> None:
    f = job(workers=(worker(queues=("reports",)),))
    assert codes(f) == ["no_live_worker_for_queue"]
    assert codes(job(workers=(worker(queues=("*",)),))) == ["due"]  # "*": every queue


def test_no_live_daemon_has_the_handler() -> None:
    f = job(type="pdf", workers=(worker(types=("mail",)), worker("w2", alive=False, types=("pdf",))))
    assert codes(f) == ["no_live_worker_with_handler"]
    assert "type 'pdf'" in message(f, "no_live_worker_with_handler")


def test_all_slots_of_the_able_daemons_busy() -> None:
    f = job(workers=(worker(concurrency=2, in_flight=2), worker("w2", types=("pdf",), in_flight=0)))
    assert codes(f) == ["all_workers_busy"]
    assert "all 2 slots of the 1 live daemon(s)" in message(f, "all_workers_busy")
    assert codes(job(workers=(worker(concurrency=2, in_flight=1),))) == ["due"]


def test_waiting_behind_counts_the_due_jobs_ahead() -> None:
    assert "12 due jobs" in message(job(due_ahead=12), "waiting_behind")
    assert "10000+ due jobs" in message(job(due_ahead=10000, due_ahead_capped=True), "waiting_behind")


def test_a_locked_row_names_the_session_and_how_to_end_it() -> None:
    holder = LockHolder(4242, "psql", "idle in transaction", NOW - timedelta(minutes=5),
                        "SELECT ... FOR UPDATE")
    f = job(lock=holder)
    assert codes(f) == ["locked_by_transaction"]  # not "due": no daemon can claim it
    text = message(f, "locked_by_transaction")
    assert "pid 4242" in text and "'psql'" in text and "idle in transaction" in text
    assert "pg_terminate_backend(4242)" in text
    assert "could not be named" in message(job(lock=LockHolder()), "locked_by_transaction")


def test_running_on_a_live_worker() -> None:
    f = job(state="running", attempts=1, worker_id="w1", lease_until=NOW + timedelta(minutes=4))
    assert codes(f) == ["running"] and "(alive, attempt 1 of 3)" in message(f, "running")


def test_running_on_a_gone_worker_whose_lease_has_not_expired() -> None:
    f = job(state="running", attempts=1, worker_id="w1", lease_until=NOW + timedelta(minutes=4),
            workers=(worker(alive=False, seen=timedelta(seconds=45)),))
    text = message(f, "running")
    assert "which is gone (last seen 45s ago)" in text and "2030-01-07T10:04:00Z" in text
    unknown = replace(f, worker_id="w9")
    assert "no longer registered" in message(unknown, "running")


def test_an_expired_lease_waits_for_recovery() -> None:
    f = job(state="running", attempts=1, worker_id="w1", lease_until=NOW - timedelta(seconds=5))
    assert codes(f) == ["lease_expired_awaiting_recovery"]


def test_finished_states() -> None:
    failed = job(state="failed", attempts=3, last_error="ValueError: bad address\n  at line 3")
    assert codes(failed) == ["failed"]
    assert "failed after 3 of 3 attempts: ValueError: bad address at line 3" in message(failed, "failed")
    assert f"ayb-jobs jobs retry {ID}" in message(failed, "failed")
    assert codes(job(state="completed", completed_at=NOW)) == ["completed"]
    assert codes(job(state="canceled", canceled_at=NOW)) == ["canceled"]


def test_cancel_requested_comes_first() -> None:
    f = job(state="running", worker_id="w1", attempts=1, lease_until=NOW + timedelta(minutes=1),
            cancel_requested_at=NOW)
    assert codes(f) == ["cancel_requested", "running"]


def test_queue_paused_and_at_limit() -> None:
    f = job(queue=QueueFacts("email", paused_at=NOW - timedelta(minutes=3), limit=2, running=2))
    assert codes(f)[:2] == ["queue_paused", "queue_at_limit"]
    assert "ayb-jobs queues resume email" in message(f, "queue_paused")
    assert "2 / 2" in message(f, "queue_at_limit")
