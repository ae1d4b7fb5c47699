"""The sync facade's engine thread: one asyncio loop in a daemon thread, called with run_coroutine_threadsafe.

anyio's BlockingPortal does the same job, but its task-group bookkeeping cost about 40 us per call on
these machines (measured: 150 us vs 110 us for a no-op round trip) and the warm-path budget of the whole
harness is 500 us. ``asyncio.run_coroutine_threadsafe`` is leaner but still chains an asyncio future to a
``concurrent.futures.Future`` (a Condition, notify_all, state copying): a no-op round trip took 58-62 us
p50 with it and 31-33 us with what ``call`` does instead: the task signals the waiting thread by releasing
a plain lock, the cheapest cross-thread wake-up CPython has.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from emulators.loops import new_event_loop

__all__ = ["LoopThread"]

T = TypeVar("T")

_SIGNAL_CHECK_S = 0.2  # longest a Ctrl-C can wait to be seen while a call runs (see ``call``)


class LoopThread:
    """An event loop running in a background thread until ``stop``."""

    def __init__(self, name: str = "harness-engine") -> None:
        self.loop = new_event_loop()  # uvloop where installed (emulators.loops: HARNESS_LOOP)
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.call_soon(ready.set)
            self.loop.run_forever()

        self._thread = threading.Thread(target=run, name=name, daemon=True)
        self._thread.start()
        ready.wait()

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``fn(*args)`` on the loop and wait for its result; Ctrl-C while waiting cancels it.

        A cancelled call raises ``concurrent.futures.CancelledError``, as ``run_coroutine_threadsafe`` did.
        """
        done = threading.Lock()
        done.acquire()
        box: list[asyncio.Task[T]] = []
        abandoned = False

        def start() -> None:
            if abandoned:
                return
            task = _new_task(self.loop, _await(fn, *args))
            box.append(task)
            if task.done():  # an eager task that never had to wait
                done.release()
            else:
                task.add_done_callback(lambda _: done.release())

        try:
            self.loop.call_soon_threadsafe(start)
            # A bounded wait, repeated: a Ctrl-C whose signal lands after the last check for signals but
            # before the lock wait begins does not interrupt that wait (CPython checks on EINTR only), and
            # would otherwise be seen only when the call ends. Each timeout returns to Python, which raises
            # it. Seen under uvloop, whose C-level wake-up starts the call sooner (issue 23).
            while not done.acquire(timeout=_SIGNAL_CHECK_S):
                pass
        except BaseException:  # Ctrl-C (lock waits are interruptible): the call ends with its caller

            def cancel() -> None:
                nonlocal abandoned
                abandoned = True
                for task in box:
                    task.cancel()

            if not self.loop.is_closed():  # a closed loop (the error being raised) has nothing left to cancel
                self.loop.call_soon_threadsafe(cancel)
            raise
        task = box[0]
        if task.cancelled():
            raise concurrent.futures.CancelledError()
        return task.result()

    def stop(self) -> None:
        """Cancel what is left on the loop, stop it and join the thread."""
        if not self._thread.is_alive():
            return

        async def _cancel_rest() -> None:
            me = asyncio.current_task()
            rest = [t for t in asyncio.all_tasks() if t is not me]
            for t in rest:
                t.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(_cancel_rest(), self.loop).result(timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
            if not self._thread.is_alive():
                self.loop.close()


async def _await(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    return await fn(*args)


if sys.version_info >= (3, 12):
    def _new_task(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        # The call's first step runs in the callback that starts it, not one loop turn later: a no-op
        # round trip measured 66-84 us eager vs 90-116 us lazy on 3.12 and 3.13 (one host, same minutes).
        return asyncio.Task(coro, loop=loop, eager_start=True)
else:
    def _new_task(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        return loop.create_task(coro)
