"""Test databases: one migrated template per run, a fresh copy per test.

AYB_TEST_DATABASE_URL names the server and a database to connect to for admin work (default: the
local Postgres). Nothing depends on leftovers: every database is created here and dropped after.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from pg_account import ensure_pg_test_account

from ayb_jobs.db.migrate import migrate

ADMIN_URL = os.environ.get("AYB_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def url_for(dbname: str) -> str:
    parts = urlsplit(ADMIN_URL)
    return urlunsplit(parts._replace(path="/" + dbname))


async def _admin() -> asyncpg.Connection:
    return await asyncpg.connect(ADMIN_URL)


@pytest.fixture(scope="session")
async def template_db() -> AsyncIterator[str]:
    name = f"ayb_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = await _admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        conn = await asyncpg.connect(url_for(name))
        try:
            await migrate(conn)
        finally:
            await conn.close()
        yield name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def create_db(template: str | None) -> str:
    name = f"ayb_t_{uuid.uuid4().hex[:12]}"
    admin = await _admin()
    try:
        clause = f' TEMPLATE "{template}"' if template else ""
        # FILE_COPY (PG 15+) makes the later DROP cheap; WAL_LOG copies cost ~1 s per drop here.
        if int(await admin.fetchval("SHOW server_version_num")) >= 150000:
            clause += " STRATEGY FILE_COPY"
        await admin.execute(f'CREATE DATABASE "{name}"{clause}')
    finally:
        await admin.close()
    return name


async def drop_db(name: str) -> None:
    admin = await _admin()
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def db_url(template_db: str) -> AsyncIterator[str]:
    """A fresh, migrated database for this test (with the default schedules)."""
    name = await create_db(template_db)
    try:
        yield url_for(name)
    finally:
        await drop_db(name)


@pytest.fixture
async def empty_db_url() -> AsyncIterator[str]:
    """A fresh database with no schema at all (for migration tests)."""
    name = await create_db(None)
    try:
        yield url_for(name)
    finally:
        await drop_db(name)


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(db_url, min_size=1, max_size=8)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
def anyio_backend() -> Iterator[str]:
    yield "asyncio"


@pytest.fixture(scope="session")
def run_as() -> str:
    """The account embedded/private Postgres servers run as in tests (ignored when not root)."""
    return ensure_pg_test_account()
