"""Platform time of one phase (init or an invocation), computed the same way in the instance and outside.

Platform time = real time outside emulated waits (less the time the process sat in the host's run queue
waiting for a core: on the platform its vCPU share is its own, so host contention must not count), with
CPU-bound time stretched by the profile's CPU factor
(Lambda at 128 MB: 13.8x) + the platform length of the emulated waits the harness injected. The instance
uses it for ``ctx.remaining_time_ms()``; the control process mirrors it from wait notifications and the
process's CPU counters to enforce time limits from outside the agent.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["PlatformTimer"]


class PlatformTimer:
    """Accumulates real, CPU-stretched and emulated-wait time since ``start``."""

    __slots__ = ("_cpu", "_queued", "_wall", "cpu_factor", "last_queued", "start_cpu", "start_queued", "start_wall",
                 "time_scale", "wait_began", "wait_len", "wait_platform", "wait_wall")

    def __init__(self, *, cpu_factor: float, time_scale: float, cpu: Callable[[], float],
                 wall: Callable[[], float] = time.monotonic, queued: Callable[[], float] | None = None,
                 start_queued: float | None = None) -> None:
        """``start_queued``: the run-queue clock's reading to start from, when the caller knows it (no read)."""
        self.cpu_factor = cpu_factor
        self.time_scale = time_scale
        self._cpu = cpu
        self._wall = wall
        self._queued = queued
        self.start_wall = wall()
        self.start_cpu = cpu()
        if start_queued is None:
            start_queued = queued() if queued is not None else 0.0
        self.start_queued = start_queued
        self.last_queued = start_queued  # the run-queue clock as ``elapsed`` last read it
        self.wait_wall = 0.0  # wall seconds spent in completed emulated waits
        self.wait_platform = 0.0  # their platform length
        self.wait_began: float | None = None
        self.wait_len: float | None = None  # platform length of the wait in progress, when announced

    def begin_wait(self, platform_s: float | None = None) -> None:
        """An emulated wait of ``platform_s`` platform seconds (if known) starts now."""
        self.wait_began = self._wall()
        self.wait_len = platform_s

    def end_wait(self, platform_s: float) -> None:
        """The current emulated wait ended; it stands for ``platform_s`` platform seconds."""
        if self.wait_began is None:
            return
        self.wait_wall += self._wall() - self.wait_began
        self.wait_platform += platform_s
        self.wait_began = None
        self.wait_len = None

    @property
    def waiting(self) -> bool:
        """Whether an emulated wait is in progress."""
        return self.wait_began is not None

    def elapsed(self, cpu_now: float | None = None, queued_now: float | None = None) -> float:
        """Platform seconds since start (an in-progress wait counts at its scaled rate)."""
        now = self._wall()
        cpu = self._cpu() if cpu_now is None else cpu_now
        if queued_now is None:
            queued_now = self._queued() if self._queued is not None else self.start_queued
        self.last_queued = queued_now
        current = now - self.wait_began if self.wait_began is not None else 0.0
        real = now - self.start_wall - self.wait_wall - current - max(0.0, queued_now - self.start_queued)
        stretched = max(0.0, cpu - self.start_cpu) * (self.cpu_factor - 1.0)
        return max(0.0, real) + stretched + self.wait_platform + self.waited(current)

    def waited(self, current_wall: float) -> float:
        """Platform seconds the wait in progress stands for after ``current_wall`` wall seconds.

        Never more than the wait's announced length: the end of a wait may reach the control process
        late (a busy loop, a loaded host), and that delay must not count at the scaled rate.
        """
        platform = current_wall / self.time_scale
        return platform if self.wait_len is None else min(platform, self.wait_len)

    def wait_left(self) -> float | None:
        """Platform seconds the wait in progress can still add (None: no wait, or its length unknown)."""
        if self.wait_began is None or self.wait_len is None:
            return None
        return max(0.0, self.wait_len - self.waited(self._wall() - self.wait_began))

    def wall_elapsed(self) -> float:
        """Real seconds since start."""
        return self._wall() - self.start_wall
