"""Fixtures for the daemon end-to-end tests; the harness itself is in e2e_harness.py."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from e2e_harness import (
    SUPPORT_TABLES,
    DaemonProcess,
    base_env,
    insert_job,
    poll_until,
    wait_job_state,
)

__all__ = ["SUPPORT_TABLES", "DaemonProcess", "base_env", "insert_job", "poll_until", "wait_job_state"]

ADMIN_URL = os.environ.get("AYB_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
MINUTE_TEST = "test_every_minute_schedule_fires_within_2s_of_the_minute"


@pytest.fixture
def daemons() -> Iterator[list[DaemonProcess]]:
    """Processes to kill at teardown; tests append through `start_daemon`."""
    started: list[DaemonProcess] = []
    yield started
    for d in started:
        d.kill()


@pytest.fixture
def start_daemon(daemons: list[DaemonProcess], db_url: str) -> Callable[..., DaemonProcess]:
    """start_daemon(name=..., url=..., **AYB_env_overrides) -> a started DaemonProcess."""

    def start(name: str = "daemon", url: str | None = None, **overrides: str) -> DaemonProcess:
        d = DaemonProcess(base_env(url or db_url, **overrides), name=name)
        daemons.append(d)
        return d.start()

    return start


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    """The test's database with the support tables and without the default schedules (they would
    fire at the top of an hour and add jobs a test does not expect)."""
    p = await asyncpg.create_pool(db_url, min_size=1, max_size=4)
    try:
        await p.execute(SUPPORT_TABLES)
        await p.execute("DELETE FROM _ayb_job_schedules")
        yield p
    finally:
        await p.close()


# --- the minute-boundary test's daemon, started early ------------------------------------------------

class Minutely:
    """A daemon with one `* * * * *` schedule in its own database, running in the background."""

    def __init__(self, url: str, daemon: DaemonProcess, schedule_id: uuid.UUID) -> None:
        self.url, self.daemon, self.schedule_id = url, daemon, schedule_id


@pytest.fixture(scope="session", autouse=True)
async def minutely(request: pytest.FixtureRequest, template_db: str) -> AsyncIterator[Minutely | None]:
    """Waiting for a minute boundary takes up to 60 s: start that test's daemon at the first e2e test
    so the wait overlaps the other tests. Nothing starts unless that test is selected."""
    if not any(item.name == MINUTE_TEST for item in request.session.items):
        yield None
        return
    name = f"ayb_t_minute_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    url = urlunsplit(urlsplit(ADMIN_URL)._replace(path="/" + name))
    daemon = None
    try:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(SUPPORT_TABLES + "DELETE FROM _ayb_job_schedules;")
            # next_run_at NULL: the daemon gives it the next minute at start.
            schedule_id = await conn.fetchval(
                "INSERT INTO _ayb_job_schedules (name, job_type, cron_expr) "
                "VALUES ('minutely', 'record', '* * * * *') RETURNING id")
        finally:
            await conn.close()
        daemon = DaemonProcess(base_env(url), name="minutely").start()
        yield Minutely(url, daemon, schedule_id)
    finally:
        if daemon is not None:
            daemon.kill()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
