"""Live workers: this daemon's row in `_ayb_job_workers`, refreshed every few seconds.

Readers count a row not refreshed for `gone_after_s` (30 s) as a daemon that is gone; this loop also
deletes rows nobody has refreshed for `forget_after_s` (1 h), so the table keeps only recent history
without another maintenance job. On a clean stop the loop deletes its own row.

What is running comes from a callable the daemon passes in (`running() -> collection of job ids`), so
this module needs nothing from the executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
from collections.abc import Callable, Collection, Sequence
from typing import Any

import structlog

from ayb_jobs import __version__
from ayb_jobs.db import ops_queries as ops
from ayb_jobs.runtime.loops import FailureDelay, supervise

log = structlog.get_logger("ayb_jobs.workers")
BEAT_S = 5.0
FORGET_AFTER_S = 3600.0
WRITE_TIMEOUT_S = 5.0


class WorkerPresence:
    def __init__(self, *, pool: Any, worker_id: str, types: Sequence[str], concurrency: int,
                 running: Callable[[], Collection[Any]], queues: Sequence[str] = (),
                 beat_s: float = BEAT_S, forget_after_s: float = FORGET_AFTER_S,
                 on_db_error: Callable[[str], None] | None = None) -> None:
        self._pool = pool
        self._running = running
        self._beat = ops.WorkerBeat(worker_id, socket.gethostname(), os.getpid(), __version__, tuple(queues),
                                    tuple(types), concurrency, 0)
        self.beat_s = beat_s
        self.forget_after_s = forget_after_s
        self._on_db_error = on_db_error
        self.stop = asyncio.Event()

    @property
    def worker_id(self) -> str:
        return self._beat.worker_id

    async def run_once(self) -> int:
        """Refresh this daemon's row; returns how many long-gone rows were deleted."""
        beat = dataclasses.replace(self._beat, in_flight=len(self._running()))
        await ops.upsert_worker(self._pool, beat, timeout=WRITE_TIMEOUT_S)
        forgotten = await ops.delete_gone_workers(self._pool, unseen_s=self.forget_after_s)
        if forgotten:
            log.info("workers_forgotten", count=forgotten, unseen_s=self.forget_after_s)
        return forgotten

    async def step(self) -> float:
        await self.run_once()
        return self.beat_s

    async def run(self) -> None:
        try:
            # A failed beat is retried at the next beat, not sooner: the row only has to be refreshed
            # within gone_after_s (30 s) for readers to count this daemon alive.
            await supervise("workers", self.step, stop=self.stop, log=log, on_db_error=self._on_db_error,
                            delay=FailureDelay(first=self.beat_s, cap=self.beat_s, spread=0))
        finally:
            if self.stop.is_set():  # a clean stop (not a cancelled start-up): say goodbye
                await self._leave()

    async def _leave(self) -> None:
        with contextlib.suppress(Exception):  # the row then just ages out
            await ops.delete_worker(self._pool, self.worker_id, timeout=WRITE_TIMEOUT_S)
