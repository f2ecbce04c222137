"""supervise, the loop every background task runs: repeat a step until stopped, survive failures
with a counted `db_error` line and a growing delay, reset on success; FailureDelay itself."""

from __future__ import annotations

import asyncio
import time

import pytest

from ayb_jobs.runtime.loops import FailureDelay, Pause, supervise


class RecordingLog:
    def __init__(self) -> None:
        self.warnings: list[tuple[str, dict]] = []

    def warning(self, event: str, **fields) -> None:
        self.warnings.append((event, fields))


class Steps:
    """A step that plays a script: a number is returned, an exception raised; then the loop stops."""

    def __init__(self, stop: asyncio.Event, *script) -> None:
        self.stop, self.script, self.calls = stop, list(script), 0

    async def __call__(self):
        self.calls += 1
        if not self.script:
            self.stop.set()
            return 0
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


class Delay(FailureDelay):
    """A FailureDelay that says what it handed out and when it was reset."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.events: list[str | float] = []

    def next(self) -> float:
        value = super().next()
        self.events.append(value)
        return value

    def reset(self) -> None:
        super().reset()
        self.events.append("reset")


async def test_a_failing_step_is_counted_logged_and_retried_after_a_growing_delay() -> None:
    stop, log, counted = asyncio.Event(), RecordingLog(), []
    step = Steps(stop, ConnectionError("refused"), OSError("down"), 0, TimeoutError())
    delay = Delay(first=0.001, cap=0.002, spread=0)
    await asyncio.wait_for(supervise("scheduler", step, stop=stop, log=log, on_db_error=counted.append,
                                     delay=delay), 5)
    assert counted == ["scheduler"] * 3
    assert log.warnings == [
        ("db_error", {"component": "scheduler", "error": "ConnectionError: refused"}),
        ("db_error", {"component": "scheduler", "error": "OSError: down"}),
        ("db_error", {"component": "scheduler", "error": "TimeoutError: "}),
    ]
    # Doubles while failing, capped, back to the first delay after the success in between.
    assert delay.events == [0.001, 0.002, "reset", 0.001, "reset"]
    assert step.calls == 5


async def test_without_a_counter_the_failure_is_only_logged() -> None:
    stop, log = asyncio.Event(), RecordingLog()
    await asyncio.wait_for(supervise("supervision", Steps(stop, RuntimeError("x")), stop=stop, log=log,
                                     on_db_error=None, delay=FailureDelay(0.001, 0.001)), 5)
    assert log.warnings == [("db_error", {"component": "supervision", "error": "RuntimeError: x"})]


async def test_the_step_decides_its_sleep_and_stop_ends_it() -> None:
    stop, calls = asyncio.Event(), []

    async def step() -> float:
        calls.append(time.monotonic())
        return 3600.0

    task = asyncio.create_task(supervise("maintenance", step, stop=stop, log=RecordingLog(),
                                         on_db_error=None, delay=FailureDelay()))
    await asyncio.sleep(0.05)
    assert len(calls) == 1  # sleeping its hour
    stop.set()
    await asyncio.wait_for(task, 1)
    assert len(calls) == 1


async def test_stop_ends_the_failure_delay_too() -> None:
    stop = asyncio.Event()

    async def step() -> float:
        raise ConnectionError("down")

    task = asyncio.create_task(supervise("listener", step, stop=stop, log=RecordingLog(), on_db_error=None,
                                         delay=FailureDelay(first=3600.0, cap=3600.0)))
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 1)


@pytest.mark.parametrize("fail", [False, True], ids=["after a success", "after a failure"])
async def test_wake_on_ends_the_wait(fail: bool) -> None:
    stop, wake, calls = asyncio.Event(), asyncio.Event(), []

    async def step() -> float:
        calls.append(1)
        wake.clear()
        if len(calls) == 2:
            stop.set()
        if fail:
            raise ConnectionError("down")
        return 3600.0

    task = asyncio.create_task(supervise("scheduler", step, stop=stop, log=RecordingLog(), on_db_error=None,
                                         delay=FailureDelay(first=3600.0, cap=3600.0), wake_on=(wake,)))
    await asyncio.sleep(0.05)
    assert len(calls) == 1
    wake.set()
    await asyncio.wait_for(task, 1)
    assert len(calls) == 2


async def test_a_pause_names_its_own_events_and_zero_means_at_once() -> None:
    stop, wake, slot_freed, calls = asyncio.Event(), asyncio.Event(), asyncio.Event(), []

    async def step():
        calls.append(1)
        if len(calls) == 1:
            return 0  # a full batch: again at once
        if len(calls) == 2:
            return Pause(None, (slot_freed,))  # only slot_freed (or stop) ends this one
        stop.set()
        return 0

    task = asyncio.create_task(supervise("poller", step, stop=stop, log=RecordingLog(), on_db_error=None,
                                         delay=FailureDelay(), wake_on=(wake,)))
    await asyncio.sleep(0.05)
    assert len(calls) == 2
    wake.set()  # not one of the pause's events
    await asyncio.sleep(0.05)
    assert len(calls) == 2
    slot_freed.set()
    await asyncio.wait_for(task, 1)
    assert len(calls) == 3


async def test_cancellation_ends_the_loop() -> None:
    async def step() -> float:
        await asyncio.sleep(3600)
        return 0

    task = asyncio.create_task(supervise("workers", step, stop=asyncio.Event(), log=RecordingLog(),
                                         on_db_error=None, delay=FailureDelay()))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_failure_delay_doubles_to_its_cap_with_jitter_and_resets() -> None:
    d = FailureDelay(first=1.0, cap=4.0)
    values = [d.next() for _ in range(4)]
    for got, base in zip(values, [1.0, 2.0, 4.0, 4.0], strict=True):
        assert base * 0.9 <= got <= base * 1.1
    d.reset()
    assert 0.9 <= d.next() <= 1.1
    fixed = FailureDelay(first=5.0, cap=5.0, spread=0)
    assert [fixed.next() for _ in range(3)] == [5.0, 5.0, 5.0]
