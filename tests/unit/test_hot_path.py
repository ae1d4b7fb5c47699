"""Pieces of the warm path made cheaper: invocation ids, the instance CPU and peak-memory readers, the
daemon worker's inbox. Each must give what the slower code it replaced gave."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid

import pytest

from emulators.pattern import new_ids
from emulators.runtime import limits
from emulators.supervisor import Inbox

linux = pytest.mark.skipif(not os.path.exists("/proc/self/schedstat"), reason="needs Linux /proc")


def test_new_ids_are_uuid4_text_and_32_hex_digits() -> None:
    """The invocation id parses as an RFC 4122 version-4 UUID in canonical text; the trace id is 32 hex digits."""
    seen = set()
    for _ in range(2000):
        inv, trace = new_ids()
        u = uuid.UUID(inv)
        assert (u.version, u.variant, str(u)) == (4, uuid.RFC_4122, inv)
        assert len(trace) == 32 and int(trace, 16) >= 0
        seen.add(inv)
    assert len(seen) == 2000


@linux
def test_cpu_clock_follows_threads_as_they_come_and_go() -> None:
    """CpuClock equals the per-thread schedstat sum (cpu_seconds) with extra threads running and after they end."""
    clock = limits.CpuClock(os.getpid(), limits.MemoryCap(128, None))
    stop = threading.Event()

    def burn() -> None:
        t = time.thread_time()
        while time.thread_time() - t < 0.05:
            pass
        stop.wait()

    before = clock()
    threads = [threading.Thread(target=burn) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    during, reference = clock(), limits.cpu_seconds(os.getpid())
    assert during - before >= 0.1  # the new threads' CPU is counted
    assert during == pytest.approx(reference, abs=0.02)
    stop.set()
    for t in threads:
        t.join()
    assert clock() == pytest.approx(limits.cpu_seconds(os.getpid()), abs=0.02)  # ended threads dropped, no error
    clock.close()


@linux
def test_peak_memory_resets_and_sees_a_new_peak() -> None:
    """PeakMemory.mb reads VmHWM as peak_rss_mb does; after reset, an allocation raises it again."""
    peak = limits.PeakMemory()
    assert peak.mb() == pytest.approx(limits.peak_rss_mb(), abs=1.0)
    peak.reset()
    low = peak.mb()
    blob = bytearray(64 * 1024 * 1024)
    blob[::4096] = b"x" * len(blob[::4096])  # touch every page
    assert peak.mb() >= low + 50
    del blob


def test_inbox_hands_over_items_and_wakes_on_death() -> None:
    """Inbox.wait returns True for an item put later, and False when the watched future ends first."""
    async def main() -> tuple[bool, object, bool]:
        loop = asyncio.get_running_loop()
        inbox: Inbox[str] = Inbox()
        alive: asyncio.Future[None] = loop.create_future()
        loop.call_later(0.01, inbox.put_nowait, "task")
        got = await inbox.wait(alive)
        item = inbox.get_nowait()
        died: asyncio.Future[None] = loop.create_future()
        loop.call_later(0.01, died.set_result, None)
        return got, item, await inbox.wait(died)

    assert asyncio.run(main()) == (True, "task", False)
