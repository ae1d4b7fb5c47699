"""The sync facade's engine thread: results, errors, cancellation and Ctrl-C cross the thread boundary."""

from __future__ import annotations

import asyncio
import concurrent.futures
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from harness._loop import LoopThread

pytestmark = pytest.mark.both_loops  # the channel / engine thread on either loop


@pytest.fixture
def engine() -> Iterator[LoopThread]:
    """A running engine thread, stopped after the test."""
    lt = LoopThread(name="test-engine")
    yield lt
    lt.stop()


def test_returns_the_coroutines_result(engine: LoopThread) -> None:
    """call() gives back what the coroutine returned, run on the engine's thread."""
    async def where(x: int) -> tuple[int, str]:
        return x + 1, threading.current_thread().name

    assert engine.call(where, 41) == (42, "test-engine")


def test_raises_the_coroutines_error(engine: LoopThread) -> None:
    """An exception in the coroutine, or in a callable that is not one, is raised in the caller."""
    async def boom() -> None:
        raise ValueError("inside")

    def not_a_coroutine() -> None:
        raise KeyError("sync")

    with pytest.raises(ValueError, match="inside"):
        engine.call(boom)
    with pytest.raises(KeyError):
        engine.call(not_a_coroutine)  # type: ignore[arg-type]


def test_a_cancelled_call_raises_concurrent_cancelled(engine: LoopThread) -> None:
    """A task cancelled on the loop ends the call with concurrent.futures.CancelledError."""
    async def cancelled() -> None:
        me = asyncio.current_task()
        assert me is not None
        me.cancel()
        await asyncio.sleep(1)

    with pytest.raises(concurrent.futures.CancelledError):
        engine.call(cancelled)


def test_ctrl_c_while_waiting_cancels_the_call(engine: LoopThread) -> None:
    """KeyboardInterrupt in the waiting thread propagates and the coroutine on the loop is cancelled."""
    started, ended = threading.Event(), threading.Event()

    async def long() -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            ended.set()
            raise

    main = threading.main_thread().ident
    assert main is not None

    def press_ctrl_c() -> None:
        started.wait(5)
        signal.pthread_kill(main, signal.SIGINT)  # a real signal: it interrupts the blocked lock wait

    threading.Thread(target=press_ctrl_c).start()
    with pytest.raises(KeyboardInterrupt):
        engine.call(long)
    assert ended.wait(5)
    assert engine.call(asyncio.sleep, 0) is None  # the engine still serves calls


def test_ctrl_c_between_scheduling_and_waiting_still_cancels(engine: LoopThread,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ctrl-C that lands just after the call was scheduled, before the wait began, cancels it too."""
    async def long() -> None:
        await asyncio.sleep(30)

    real = engine.loop.call_soon_threadsafe
    interrupted: list[bool] = []

    def schedule_then_interrupt(callback: Any, *args: Any) -> Any:
        handle = real(callback, *args)
        if not interrupted:
            interrupted.append(True)
            raise KeyboardInterrupt  # as the signal handler would, right after the call was queued
        return handle

    monkeypatch.setattr(engine.loop, "call_soon_threadsafe", schedule_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        engine.call(long)
    monkeypatch.undo()

    async def others() -> int:
        return len(asyncio.all_tasks()) - 1

    deadline = time.monotonic() + 5
    while engine.call(others) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert engine.call(others) == 0  # nothing of the interrupted call is left running on the engine
