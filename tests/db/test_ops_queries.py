"""Every operator statement (audit log, live workers, health readings) prepares on the real schema."""

from __future__ import annotations

import pytest

from ayb_jobs.db.sql import SQL

OPERATOR_STATEMENTS = sorted(n for n in SQL if n.startswith(("audit_", "worker_", "workers_", "health_"))
                             or n == "delete_old_audit_entries")


@pytest.mark.parametrize("name", OPERATOR_STATEMENTS)
async def test_statement_prepares(pool, name: str) -> None:
    async with pool.acquire() as conn:
        await conn.prepare(SQL[name])
