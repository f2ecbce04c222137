"""Apply the numbered SQL files of `migrations/` (installed as `ayb_jobs.migrations`) in order, each once.

Each file runs in its own transaction together with its `_ayb_migrations` row, under a
transaction-level advisory lock, so daemons starting together serialise here and each file is
applied exactly once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from ayb_jobs.db.pool import connect
from ayb_jobs.errors import SchemaBehind, StartupError

# Arbitrary constant shared by every ayb-jobs process: the migration lock's key.
MIGRATION_LOCK_KEY = 7_342_990_231
# NNN_name.sql, or NNNx_name.sql for a further file of the same number (030b follows 030).
_FILE = re.compile(r"^(\d{3}[a-z]?)_[a-z0-9_]+\.sql$")

_HISTORY = """
CREATE TABLE IF NOT EXISTS _ayb_migrations (
    id serial PRIMARY KEY,
    name text UNIQUE NOT NULL,
    applied_at timestamptz DEFAULT now()
)"""


@dataclass(frozen=True, slots=True)
class Migration:
    name: str
    sql: str


_REINSTALL = "reinstall ayb-jobs (in a checkout: run scripts/setup.sh)"


def available() -> list[Migration]:
    try:
        folder = resources.files("ayb_jobs.migrations")
    except ModuleNotFoundError:  # an editable install made before the files moved to migrations/
        raise StartupError(f"the schema migrations are not installed; {_REINSTALL}") from None
    names = sorted(p.name for p in folder.iterdir() if _FILE.match(p.name))
    if not names:
        # A leftover ayb_jobs/migrations/ folder (their old place) shadows the installed package.
        raise StartupError(
            f"no migration files found in {folder}; remove a leftover ayb_jobs/migrations/ folder, "
            f"or {_REINSTALL}"
        )
    return [Migration(n, folder.joinpath(n).read_text("utf-8")) for n in names]


async def _applied(conn: asyncpg.Connection) -> set[str]:
    exists = await conn.fetchval("SELECT to_regclass('_ayb_migrations') IS NOT NULL")
    if not exists:
        return set()
    return {r["name"] for r in await conn.fetch("SELECT name FROM _ayb_migrations")}


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply pending migrations; returns the names applied (empty when up to date)."""
    applied_now: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
        await conn.execute(_HISTORY)
    for m in available():
        async with conn.transaction():
            # Re-checked under the lock: another process may have applied it meanwhile.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
            if m.name in await _applied(conn):
                continue
            await conn.execute(m.sql)
            await conn.execute("INSERT INTO _ayb_migrations (name) VALUES ($1)", m.name)
            applied_now.append(m.name)
    return applied_now


async def pending(conn: asyncpg.Connection) -> list[str]:
    done = await _applied(conn)
    return [m.name for m in available() if m.name not in done]


async def check_current(conn: asyncpg.Connection) -> None:
    """Refuse to run on a schema that is behind (used when auto_migrate is off)."""
    missing = await pending(conn)
    if missing:
        raise SchemaBehind(
            f"the database schema is behind: {len(missing)} migration(s) pending "
            f"({', '.join(missing)}); run `ayb-jobs migrate`"
        )


async def migrate_dsn(dsn: str) -> list[str]:
    conn = await connect(dsn)
    try:
        return await migrate(conn)
    finally:
        await conn.close()
