"""LLM wait time shared with the instance, so ``ctx.remaining_time_ms()`` counts model latency at platform length.

The LLM endpoint runs in the control process and tells it when a call's emulated latency wait (or a 429
backoff) begins and ends; the agent only sees a slow HTTP response, which its own timer would count as
real time (10 ms of wall time for a 1 s answer at ``time_scale=0.01``). So the control process publishes
the running invocation's LLM-wait totals in a small memory-mapped file per instance, and the instance reads
them when the agent asks how much time is left. A sequence counter (odd while a write is in progress)
keeps a reader from seeing half a write; timestamps are CLOCK_MONOTONIC, which every process on the host
shares. With several invocations in flight on one instance, the totals are those of the latest one to wait.
"""

from __future__ import annotations

import mmap
import os
import struct
import time

__all__ = ["LLMTimeReader", "LLMTimeWriter", "with_llm_waits"]

_FMT = struct.Struct("<Qdddd")  # seq, wall_s, platform_s, group began (monotonic; 0: none), group length


class LLMTimeWriter:
    """The control process's side: publishes one instance's current LLM-wait totals."""

    def __init__(self, path: str) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, _FMT.size)
            self._map = mmap.mmap(fd, _FMT.size)
        finally:
            os.close(fd)
        self._seq = 0
        self._zero = True  # what is published is all zeros (nothing to reset)

    def publish(self, wall_s: float, platform_s: float, began: float | None, length: float) -> None:
        """Totals of the waits that ended, and the group in progress (``began`` None: none)."""
        if self._map.closed:
            return
        self._seq += 1  # odd: a write is in progress
        self._map[:8] = struct.pack("<Q", self._seq)
        _FMT.pack_into(self._map, 0, self._seq, wall_s, platform_s, began or 0.0, length)
        self._seq += 1
        self._map[:8] = struct.pack("<Q", self._seq)
        self._zero = not (wall_s or platform_s or began or length)

    def reset(self) -> None:
        """A new invocation starts with no LLM waits (no write when nothing was published since the last)."""
        if not self._zero:
            self.publish(0.0, 0.0, None, 0.0)

    def close(self) -> None:
        """Unmap the file."""
        if not self._map.closed:
            self._map.close()


class LLMTimeReader:
    """The instance's side: reads the totals (all zero while nothing was published)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._map: mmap.mmap | None = None

    def read(self) -> tuple[float, float, float, float]:
        """(wall_s, platform_s, group began, group length) as last published."""
        if self._map is None:
            try:
                fd = os.open(self._path, os.O_RDONLY)
            except OSError:
                return 0.0, 0.0, 0.0, 0.0
            try:
                self._map = mmap.mmap(fd, _FMT.size, prot=mmap.PROT_READ)
            finally:
                os.close(fd)
        for _ in range(100):
            seq, wall, platform, began, length = _FMT.unpack_from(self._map, 0)
            if seq % 2 == 0 and _FMT.unpack_from(self._map, 0)[0] == seq:
                return wall, platform, began, length
        return 0.0, 0.0, 0.0, 0.0


def with_llm_waits(elapsed_s: float, reader: LLMTimeReader | None, time_scale: float) -> float:
    """``elapsed_s`` (platform seconds as the instance's timer counts them) with LLM waits at platform length."""
    if reader is None:
        return elapsed_s
    wall, platform, began, length = reader.read()
    current = max(0.0, time.monotonic() - began) if began else 0.0
    return max(0.0, elapsed_s - wall - current + platform + min(current / time_scale, length))
