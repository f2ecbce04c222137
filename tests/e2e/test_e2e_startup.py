"""Stop signals during start-up: the start is abandoned cleanly, nothing left behind, exit 0."""

from __future__ import annotations

import asyncpg
from e2e_harness import poll_until

from ayb_jobs.db.migrate import MIGRATION_LOCK_KEY


async def test_sigterm_while_start_up_waits_for_the_migration_lock_exits_0(start_daemon, db, db_url) -> None:
    """1. another process holds the migration lock, so the daemon's start-up waits in `migrate`;
    2. SIGTERM arrives meanwhile;
    3. the daemon abandons the start (`start_interrupted`), never reports started, exits 0."""
    holder = await asyncpg.connect(db_url)
    try:
        async with holder.transaction():
            await holder.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
            d = start_daemon()

            async def waiting_for_lock() -> bool:
                return bool(await db.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"))

            await poll_until(waiting_for_lock, timeout=20, what="the daemon to wait for the migration lock")
            d.signal()
            await d.event("start_interrupted")
            await d.expect_exit(0)
        assert d.events("daemon_started") == []
    finally:
        await holder.close()
