"""The one clock of a deployment: every emulated duration is a deadline in platform seconds on it.

Two modes (DESIGN.md, "One timeline"):

- **virtual** (``time_scale=None``, the default of closed-world runs): platform time runs 1:1 with real time
  while anything real is in flight (an instance running agent code or its import, a call to a real
  backend, the engine's own ready work) and **jumps** to the earliest emulated deadline when everything in
  flight waits on one and a caller is waiting on the deployment. So the harness's own milliseconds count
  as milliseconds, waits cost no wall time, and two runs of an agent whose time is all emulated waits give
  the same figures on any host. What is real holds a busy token (``busy()`` / ``hold()``); callers of the
  deployment hold a caller token (``caller()``): with no caller waiting, nothing jumps and time runs 1:1
  (a script's own ``time.sleep(1)`` between two calls is one platform second; ``advance`` passes idle
  platform time on purpose).
- **scaled** (``time_scale`` a number: wall seconds per platform second): for open-world runs whose callers
  live in real time (``harness serve``, Locust, remote workers). Emulated waits take ``time_scale`` wall
  seconds per platform second and ``now()`` is wall time over ``time_scale``; per-call figures still count
  the harness's own work 1:1 (they are computed, see ``PlatformTimer``).

Both modes share one interface: ``now``, ``sleep``, ``call_later``, ``busy``/``hold``, ``caller``, ``advance``.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .errors import ConfigError

__all__ = ["Clock", "TimerHandle", "cpu_factor"]

T = TypeVar("T")


class TimerHandle:
    """A platform-time timer; ``cancel()`` it to drop it (safe to call twice, or after it fired)."""

    __slots__ = ("_clock", "_handle", "callback", "cancelled", "deadline")

    def __init__(self, clock: Clock | None, deadline: float, callback: Callable[[], Any],
                 handle: asyncio.TimerHandle | None = None) -> None:
        self._clock = clock
        self.deadline = deadline
        self.callback = callback
        self.cancelled = False
        self._handle = handle

    def cancel(self) -> None:
        """Drop the timer."""
        if not self.cancelled:
            self.cancelled = True
            if self._handle is not None:
                self._handle.cancel()
            elif self._clock is not None:
                self._clock._dropped(self)


@dataclass(order=True)
class _Entry:
    deadline: float
    seq: int
    timer: TimerHandle = field(compare=False)


class Clock:
    """Platform time of one deployment: virtual (``time_scale=None``) or scaled (a number)."""

    def __init__(self, time_scale: float | None = 1.0) -> None:
        if time_scale is not None and (isinstance(time_scale, bool) or not (time_scale > 0)):
            raise ConfigError(
                f"time_scale must be a positive number of wall seconds per platform second, or None for "
                f"virtual time, got {time_scale!r}; use e.g. None (virtual), 1.0 (real time) or 0.01 (100x faster)"
            )
        self.time_scale = time_scale
        self.virtual = time_scale is None
        self._origin = time.monotonic()
        self._skipped = 0.0  # platform seconds jumped over (virtual)
        self._heap: list[_Entry] = []
        self._seq = itertools.count()
        self._dead = 0  # cancelled entries still in the heap
        self._busy = 0
        self._callers = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._due: asyncio.TimerHandle | None = None  # real-time timer of the earliest deadline
        self._due_at = 0.0
        self._check_queued = False
        self._quiet = 0
        self._probes: list[Callable[[], bool]] = []
        self.jumps = 0  # how many times time jumped (tests, diagnostics)
        # The latest an emulated timer fired past its platform deadline. On a scaled clock a host stall
        # stretches fleet-level periods (an autoscaler's sync, an idle expiry) by this much; reports show it.
        self.late_max_s = 0.0

    def __repr__(self) -> str:
        return "Clock(virtual)" if self.virtual else f"Clock(time_scale={self.time_scale!r})"

    # ---- conversions (scaled mode; virtual mode counts emulated waits 1:1 where a wall time is needed) -----

    @property
    def scale(self) -> float:
        """Wall seconds per platform second of an emulated wait: ``time_scale``, or 1.0 in virtual mode.

        Only for what must still be handed a wall duration (a real broker's visibility timeout, a poll
        period); in virtual mode such waits are real and count 1:1.
        """
        return 1.0 if self.time_scale is None else self.time_scale

    def to_wall(self, platform_s: float) -> float:
        """Wall seconds that an emulated wait of ``platform_s`` takes when slept in real time."""
        return platform_s * self.scale

    def to_platform(self, wall_s: float) -> float:
        """Platform seconds that ``wall_s`` wall seconds of emulated waiting stand for (scaled mode)."""
        return wall_s / self.scale

    # ---- time --------------------------------------------------------------------------------------------

    def now(self) -> float:
        """Platform seconds since the clock was made."""
        if self.time_scale is None:
            return time.monotonic() - self._origin + self._skipped
        return (time.monotonic() - self._origin) / self.time_scale

    def call_later(self, platform_s: float, callback: Callable[[], Any]) -> TimerHandle:
        """Call ``callback`` once ``platform_s`` platform seconds have passed (on the running loop)."""
        loop = asyncio.get_running_loop()
        if self.time_scale is not None:
            deadline = self.now() + platform_s

            def fire() -> None:
                self._late(deadline)
                callback()

            return TimerHandle(None, deadline, callback, loop.call_later(max(0.0, platform_s) * self.time_scale,
                                                                         fire))
        self._loop = loop
        timer = TimerHandle(self, self.now() + max(0.0, platform_s), callback)
        entry = _Entry(timer.deadline, next(self._seq), timer)
        heapq.heappush(self._heap, entry)
        if self._heap[0] is entry:
            self._arm()
        if not self._busy:  # while busy, the release that ends it looks for a jump
            self._kick()
        return timer

    async def sleep(self, platform_s: float) -> None:
        """Wait ``platform_s`` platform seconds."""
        if platform_s <= 0:
            return
        if self.time_scale is not None:
            deadline = self.now() + platform_s
            await asyncio.sleep(platform_s * self.time_scale)
            self._late(deadline)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        timer = self.call_later(platform_s, lambda: _resolve(fut))
        try:
            await fut
        finally:
            timer.cancel()

    async def wait(self, aw: Awaitable[T], timeout_s: float | None) -> T:
        """``await aw`` with a timeout of ``timeout_s`` platform seconds (None: none); TimeoutError past it."""
        if timeout_s is None:
            return await aw
        if self.time_scale is not None:
            return await asyncio.wait_for(aw, max(0.0, timeout_s) * self.time_scale)
        task = asyncio.ensure_future(aw)
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        timer = self.call_later(max(0.0, timeout_s), expire)
        try:
            return await task
        except asyncio.CancelledError:
            if expired and task.cancelled():
                raise TimeoutError from None
            raise
        finally:
            timer.cancel()

    async def advance(self, platform_s: float) -> None:
        """Let ``platform_s`` platform seconds of idle time pass (idle expiry, scale-down, back-offs...)."""
        if platform_s < 0:
            raise ConfigError(f"advance() takes a number of platform seconds >= 0, got {platform_s!r}")
        async with self.caller():
            await self.sleep(platform_s)

    # ---- what is in flight (virtual mode) -----------------------------------------------------------------

    def hold(self) -> None:
        """Something real is now in flight: time may not jump until it is ``release``d."""
        self._busy += 1

    def release(self) -> None:
        """What ``hold`` announced is over (or now waits on an emulated deadline)."""
        self._busy -= 1
        if self._busy == 0 and self.time_scale is None:
            self._kick()

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """Hold a busy token for the block (real I/O, a process start)."""
        self.hold()
        try:
            yield
        finally:
            self.release()

    def caller(self) -> _Caller:
        """``async with``: a caller waits on the deployment; while one does, idle time may be jumped over."""
        return _Caller(self)

    def _caller_in(self) -> None:
        self._callers += 1
        if self.time_scale is None:
            self._loop = asyncio.get_running_loop()
            self._kick()

    def _late(self, deadline: float) -> None:
        late = self.now() - deadline
        if late > self.late_max_s:
            self.late_max_s = late

    def probe(self, still_busy: Callable[[], bool]) -> None:
        """Before a jump, ask ``still_busy()``: True holds time (asked again shortly), False drops the probe.

        For real work the engine cannot see begin and end of, only poll (an instance process still on a CPU).
        """
        self._probes.append(still_busy)

    # ---- the jump (virtual mode) --------------------------------------------------------------------------

    def _dropped(self, timer: TimerHandle) -> None:
        self._dead += 1
        if self._dead > 64 and self._dead > len(self._heap) // 2:
            self._heap = [e for e in self._heap if not e.timer.cancelled]
            heapq.heapify(self._heap)
            self._dead = 0
        if self._heap and self._heap[0].timer is timer:
            self._arm()

    def _earliest(self) -> _Entry | None:
        heap = self._heap
        while heap and heap[0].timer.cancelled:
            heapq.heappop(heap)
            self._dead = max(0, self._dead - 1)
        return heap[0] if heap else None

    def _arm(self) -> None:
        """A real-time timer for the earliest deadline: while busy, time reaches it 1:1."""
        first = self._earliest()
        loop = self._loop
        if first is None or loop is None:
            if self._due is not None:
                self._due.cancel()
                self._due = None
            return
        delay = max(0.0, first.deadline - self.now())
        at = loop.time() + delay
        if self._due is not None:
            if abs(self._due_at - at) < 1e-4:
                return
            self._due.cancel()
        self._due_at = at
        self._due = loop.call_at(at, self._fire_due)

    def _fire_due(self) -> None:
        self._due = None
        self._fire(self.now())
        self._arm()

    def _fire(self, now: float) -> None:
        heap = self._heap
        while heap:
            first = heap[0]
            if first.timer.cancelled:
                heapq.heappop(heap)
                self._dead = max(0, self._dead - 1)
                continue
            if first.deadline > now + 1e-9:
                break
            heapq.heappop(heap)
            first.timer.cancelled = True  # fired: a later cancel() is a no-op
            self._late(first.deadline)
            first.timer.callback()

    def _kick(self) -> None:
        """Look, once the loop has settled, whether time can jump."""
        if self._check_queued or self._loop is None:
            return
        self._check_queued = True
        self._loop.call_soon(self._check)

    def _check(self) -> None:
        self._check_queued = False
        if not self._callers or self._busy or self._earliest() is None:
            self._quiet = 0
            return
        loop = self._loop
        assert loop is not None
        ready = getattr(loop, "_ready", None)
        if ready is None:  # uvloop keeps its ready queue out of sight: look at the tasks instead
            ready = _tasks_ready(loop)
        if ready or self._quiet < 1:
            # Ready callbacks (a frame just read, a future just resolved) are real work in flight; and one
            # more loop turn polls the sockets, so a message already on its way is seen before any jump.
            self._quiet = 0 if ready else self._quiet + 1
            self._check_queued = True
            loop.call_soon(self._check)
            return
        self._quiet = 0
        if self._probes:
            self._probes = [p for p in self._probes if p()]
            if self._probes:
                self._check_queued = True
                loop.call_soon(self._check)
                return
        first = self._earliest()
        assert first is not None
        gap = first.deadline - self.now()
        if gap > 0:
            self._skipped += gap
            self.jumps += 1
        self._fire(first.deadline)
        self._arm()
        self._kick()


def _tasks_ready(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether a task of ``loop`` is scheduled to run (it waits on nothing, or on a future already done).

    asyncio's loop shows its ready queue (``_ready``); uvloop's does not, and a jump taken while a task's
    wake-up is still queued would move time past work that is due now (a request's pending limit firing
    five seconds late, at the autoscaler's next tick). ``check`` runs as a plain callback, so no task is
    running while it looks.
    """
    for task in asyncio.all_tasks(loop):
        waiter = getattr(task, "_fut_waiter", None)
        if waiter is None or waiter.done():
            return True
    return False


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def cpu_factor(memory_mb: float, mb_per_vcpu: float | None, max_vcpus: float | None = None) -> float:
    """How many platform seconds one real CPU second of single-threaded work takes.

    Platforms that tie CPU to memory (Lambda: 1,769 MB = 1 vCPU) give a function a fraction of a core below
    that size, so CPU-bound work runs proportionally slower. Above one vCPU a single thread gets no faster,
    so the factor never drops below 1 (multi-threaded speed-up is not modelled).
    """
    if not mb_per_vcpu:
        return 1.0
    vcpus = memory_mb / mb_per_vcpu
    if max_vcpus:
        vcpus = min(vcpus, max_vcpus)
    return max(1.0, 1.0 / vcpus)


class _Caller:
    """``Clock.caller()``'s context: a class, not an ``asynccontextmanager`` (every call's path enters one)."""

    __slots__ = ("_clock",)

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    async def __aenter__(self) -> None:
        self._clock._caller_in()

    async def __aexit__(self, *exc: object) -> None:
        self._clock._callers -= 1
