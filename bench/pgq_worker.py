"""pgqueuer's side of bench/compare.py: the factory its own worker command runs.

    BENCH_PGQ_DSN=... BENCH_CRON_SCHEDULES=0 python bench/pgq_worker.py --batch-size N

This is pgqueuer's documented way to run a consumer (`pgq run module:factory`): one process, one
asyncpg connection (its AsyncpgDriver), the batch size given on the command line. `bench_noop`
does nothing, like ayb-jobs' benchmark handler. With BENCH_CRON_SCHEDULES=K it also registers K
`* * * * *` schedules, each recording the database time at which it was picked (the schedule
row's `updated`, set by the statement that fires it) in `bench_cron_fired`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from pgqueuer import PgQueuer
from pgqueuer.db import AsyncpgDriver
from pgqueuer.models import Job, Schedule

JOB_TYPE = "bench_noop"
CRON_TABLE = "bench_cron_fired"


@asynccontextmanager
async def create() -> AsyncIterator[PgQueuer]:
    dsn = os.environ["BENCH_PGQ_DSN"]
    conn = await asyncpg.connect(dsn)
    pgq = PgQueuer(AsyncpgDriver(conn))

    @pgq.entrypoint(JOB_TYPE)
    async def noop(job: Job) -> None:
        return None

    schedules = int(os.environ.get("BENCH_CRON_SCHEDULES", "0"))
    recorder = await asyncpg.create_pool(dsn, min_size=1, max_size=4) if schedules else None
    for i in range(schedules):
        register_cron(pgq, recorder, f"bench_cron_{i}")
    try:
        yield pgq
    finally:
        if recorder is not None:
            await recorder.close()
        await conn.close()


def register_cron(pgq: PgQueuer, recorder: asyncpg.Pool, name: str) -> None:
    @pgq.schedule(name, "* * * * *")
    async def fired(schedule: Schedule) -> None:
        await recorder.execute(f"INSERT INTO {CRON_TABLE} (name, at) VALUES ($1, $2)", name,
                               schedule.updated)


def main() -> None:
    """What `pgq run pgq_worker:create --batch-size N` does (pgqueuer's own runner), minus the CLI:
    pgqueuer 1.6.0's `--log-level` option fails to parse (AttributeError) before the worker starts."""
    import argparse

    from pgqueuer import run
    from pgqueuer.adapters.cli.cli import asyncio_run  # uvloop when installed, as `pgq run`
    from pgqueuer.core.logconfig import LogLevel, setup_fancy_logger

    p = argparse.ArgumentParser()
    p.add_argument("--batch-size", type=int, default=10)
    args = p.parse_args()
    setup_fancy_logger(LogLevel.WARNING)
    asyncio_run(run("pgq_worker:create", batch_size=args.batch_size))


if __name__ == "__main__":
    main()
