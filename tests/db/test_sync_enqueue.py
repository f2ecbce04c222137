"""ayb_jobs.sync.enqueue on a plain DB-API 2 connection (psycopg 3), inside the caller's transaction."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import psycopg
import pytest

from ayb_jobs import sync
from ayb_jobs.errors import DuplicateJob, InvalidInput


@pytest.fixture
def pg(db_url: str):
    with psycopg.connect(db_url) as conn:  # not autocommit: a transaction opens at the first statement
        yield conn


async def job_count(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM _ayb_jobs")


async def test_an_enqueue_that_commits_leaves_the_job_with_its_options(pg, pool) -> None:
    at = datetime(2030, 1, 1, tzinfo=UTC)
    job_id = sync.enqueue(pg, "send_receipt", {"order": 42}, run_at=at, max_attempts=5,
                          idempotency_key="order-42", unique_key="receipt:42")
    assert isinstance(job_id, UUID)
    assert await job_count(pool) == 0  # not visible before the caller commits
    pg.commit()
    row = await pool.fetchrow("SELECT * FROM _ayb_jobs WHERE id = $1", job_id)
    assert (row["type"], row["state"], row["run_at"], row["max_attempts"]) == ("send_receipt", "queued",
                                                                              at, 5)
    assert (row["idempotency_key"], row["unique_key"]) == ("order-42", "receipt:42")
    assert row["payload"] == '{"order": 42}'


async def test_an_enqueue_in_a_transaction_that_rolls_back_leaves_no_job(pg, pool) -> None:
    pg.execute("SELECT 1")  # the caller's own work
    sync.enqueue(pg, "send_receipt", {"order": 1})
    pg.rollback()
    assert await job_count(pool) == 0


async def test_the_wake_up_notify_arrives_at_commit_not_before(pg, db_url) -> None:
    listener = await asyncpg.connect(db_url)
    woke = asyncio.Event()
    await listener.add_listener("ayb_jobs", lambda *_: woke.set())
    try:
        sync.enqueue(pg, "send_receipt")
        await asyncio.sleep(0.2)  # would a NOTIFY sent before COMMIT arrive? (it must not)
        assert not woke.is_set()
        pg.commit()
        await asyncio.wait_for(woke.wait(), 5)
    finally:
        await listener.close()


async def test_a_unique_key_held_by_an_active_job_returns_that_job_and_inserts_nothing(pg, pool) -> None:
    first = sync.enqueue(pg, "report", unique_key="daily")
    assert sync.enqueue(pg, "report", unique_key="daily") == first  # same transaction
    pg.commit()
    assert sync.enqueue(pg, "report", unique_key="daily") == first
    pg.commit()
    await pool.execute("UPDATE _ayb_jobs SET state = 'completed' WHERE id = $1", first)
    assert sync.enqueue(pg, "report", unique_key="daily") != first
    pg.commit()
    assert await job_count(pool) == 2


async def test_a_taken_idempotency_key_raises_and_the_transaction_stays_usable(pg, pool) -> None:
    first = sync.enqueue(pg, "charge", idempotency_key="pay-1")
    pg.commit()
    with pytest.raises(DuplicateJob) as caught:
        sync.enqueue(pg, "charge", idempotency_key="pay-1")
    assert caught.value.existing_job_id == str(first)
    later = sync.enqueue(pg, "charge", idempotency_key="pay-2")  # no "transaction is aborted"
    pg.commit()
    assert await pool.fetchval("SELECT count(*) FROM _ayb_jobs WHERE id = $1", later) == 1


async def test_it_works_on_an_autocommit_connection_too(db_url, pool) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        job_id = sync.enqueue(conn, "ping", run_at=datetime.now(UTC) + timedelta(hours=1))
    assert await pool.fetchval("SELECT state FROM _ayb_jobs WHERE id = $1", job_id) == "queued"


async def test_bad_arguments_are_refused_before_any_statement(pg) -> None:
    with pytest.raises(InvalidInput, match="invalid job type"):
        sync.enqueue(pg, "no spaces allowed")
    with pytest.raises(InvalidInput, match="run_at must be timezone-aware"):
        sync.enqueue(pg, "ok", run_at=datetime(2030, 1, 1))
    with pytest.raises(InvalidInput, match="unique_key"):
        sync.enqueue(pg, "ok", unique_key="")
    assert pg.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_the_shared_statement_is_rewritten_to_the_format_style_with_its_parameters_in_order() -> None:
    text, order = sync._format_style("-- $9 in a comment is not a parameter\nSELECT $2::int, '%', $1, $2")
    assert text == "SELECT %s::int, '%%', %s, %s" and order == [1, 0, 1]


def test_arrays_in_postgres_text_form_are_read_for_drivers_that_do_not_parse_them() -> None:
    job_id = "0190b1a2-7c3d-7e4f-8a5b-6c7d8e9f0a1b"
    assert sync._uuids(f"{{{job_id}}}") == [UUID(job_id)]
    assert sync._texts("{NULL,key}") == [None, "key"] and sync._texts("{}") == []


async def test_queue_and_priority_are_taken_as_given_or_from_the_types_policy(pg, pool) -> None:
    await pool.execute("INSERT INTO _ayb_job_types (type, queue, priority, max_attempts) "
                       "VALUES ('mailer', 'mail', -5, 7)")
    given = sync.enqueue(pg, "mailer", queue="urgent", priority=-50)
    policy = sync.enqueue(pg, "mailer")
    plain = sync.enqueue(pg, "other")
    pg.commit()
    rows = {r["id"]: r for r in await pool.fetch("SELECT id, queue, priority, max_attempts FROM _ayb_jobs")}
    assert (rows[given]["queue"], rows[given]["priority"], rows[given]["max_attempts"]) == ("urgent", -50, 7)
    assert (rows[policy]["queue"], rows[policy]["priority"], rows[policy]["max_attempts"]) == ("mail", -5, 7)
    assert (rows[plain]["queue"], rows[plain]["priority"], rows[plain]["max_attempts"]) == ("default", 0, 3)
