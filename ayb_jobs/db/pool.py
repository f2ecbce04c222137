"""Connections: the daemon's pool and the dedicated LISTEN connection."""

from __future__ import annotations

import asyncpg

from ayb_jobs.errors import DatabaseUnavailable

CHANNEL = "ayb_jobs"
APPLICATION_NAME = "ayb-jobs"


async def create_pool(dsn: str, *, max_size: int = 10, statement_cache_size: int = 100,
                      connect_timeout: float = 10.0) -> asyncpg.Pool:
    """Open the pool and prove the database answers with one real round trip."""
    try:
        pool = await asyncpg.create_pool(
            dsn, min_size=1, max_size=max_size, statement_cache_size=statement_cache_size,
            timeout=connect_timeout, server_settings={"application_name": APPLICATION_NAME},
        )
        await pool.fetchval("SELECT 1", timeout=connect_timeout)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        raise DatabaseUnavailable(
            f"cannot connect to the database: {type(exc).__name__}: {exc}; check database.url "
            "(AYB_DATABASE_URL) and that PostgreSQL is running and reachable"
        ) from exc
    return pool


async def connect(dsn: str, *, statement_cache_size: int = 100, timeout: float = 10.0,
                  ) -> asyncpg.Connection:
    return await asyncpg.connect(dsn, statement_cache_size=statement_cache_size, timeout=timeout,
                                 server_settings={"application_name": APPLICATION_NAME})
