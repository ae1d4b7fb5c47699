"""The virtual clock: 1:1 while something real is in flight, a jump to the next deadline when all wait."""

from __future__ import annotations

import asyncio
import time

import pytest

from emulators.clock import Clock
from emulators.errors import ConfigError


def _run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_time_scale_none_is_virtual() -> None:
    """Clock(None) is the virtual mode; a bool or a non-positive scale is still a ConfigError."""
    assert Clock(None).virtual and not Clock(0.01).virtual
    with pytest.raises(ConfigError, match="None for virtual time"):
        Clock(True)  # type: ignore[arg-type]


def test_a_caller_waiting_on_a_timer_jumps_to_it() -> None:
    """An hour of emulated waiting under a caller takes milliseconds of wall time and exactly an hour."""
    clock = Clock(None)

    async def main() -> tuple[float, float]:
        t0, w0 = clock.now(), time.monotonic()
        async with clock.caller():
            await clock.sleep(3600)
        return clock.now() - t0, time.monotonic() - w0

    platform, wall = _run(main())  # type: ignore[misc]
    assert 3600 <= platform < 3600.05
    assert wall < 0.5
    assert clock.jumps >= 1


def test_no_caller_no_jump() -> None:
    """With no caller waiting on the deployment, time runs 1:1 (a background timer is not skipped to)."""
    clock = Clock(None)

    async def main() -> float:
        t0 = clock.now()
        await asyncio.wait_for(clock.sleep(0.05), 5)
        return clock.now() - t0

    assert 0.05 <= _run(main()) < 1.0  # type: ignore[operator]
    assert clock.jumps == 0


def test_busy_work_runs_one_to_one() -> None:
    """While a busy token is held, a pending deadline is reached in real time, not jumped to."""
    clock = Clock(None)

    async def main() -> tuple[float, float]:
        t0 = clock.now()
        async with clock.caller():
            with clock.busy():
                timer = asyncio.ensure_future(clock.sleep(100))
                await asyncio.sleep(0.05)  # real work in flight: 50 ms pass as 50 ms
                mid = clock.now() - t0
            await timer  # nothing real left: jump to the deadline
        return mid, clock.now() - t0

    mid, end = _run(main())  # type: ignore[misc]
    # 0.049, not 0.05: uvloop's timers count whole milliseconds of a cached loop time, so a 50 ms sleep
    # can end up to 1 ms early on the monotonic clock.
    assert 0.049 <= mid < 1.0
    assert 100 <= end < 100.5


def test_timers_fire_in_deadline_order() -> None:
    """Several waiters wake in the order of their deadlines, each at its own platform time."""
    clock = Clock(None)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, s: float) -> None:
        await clock.sleep(s)
        woke.append((name, clock.now()))

    async def main() -> None:
        async with clock.caller():
            await asyncio.gather(sleeper("c", 30), sleeper("a", 10), sleeper("b", 20))

    _run(main())
    assert [n for n, _ in woke] == ["a", "b", "c"]
    assert [round(t) for _, t in woke] == [10, 20, 30]


def test_advance_passes_idle_time() -> None:
    """advance(600) passes 600 platform seconds, firing the timers inside the span at their times."""
    clock = Clock(None)
    fired: list[float] = []

    async def main() -> float:
        clock.call_later(100, lambda: fired.append(clock.now()))
        t0 = clock.now()
        await clock.advance(600)
        return clock.now() - t0

    assert 600 <= _run(main()) < 600.5  # type: ignore[operator]
    assert len(fired) == 1 and 100 <= fired[0] < 100.5


def test_cancelled_timer_does_not_fire_or_hold_time() -> None:
    """A cancelled timer never fires and is not jumped to."""
    clock = Clock(None)
    fired: list[str] = []

    async def main() -> float:
        t = clock.call_later(50, lambda: fired.append("x"))
        t.cancel()
        t.cancel()
        t0 = clock.now()
        await clock.advance(10)
        return clock.now() - t0

    assert 10 <= _run(main()) < 10.5  # type: ignore[operator]
    assert fired == []


def test_scaled_mode_call_later_and_advance() -> None:
    """In scaled mode call_later and advance take time_scale wall seconds per platform second."""
    clock = Clock(0.001)
    fired: list[float] = []

    async def main() -> float:
        w0 = time.monotonic()
        clock.call_later(10, lambda: fired.append(time.monotonic() - w0))
        await clock.advance(30)  # 30 ms of wall time
        return time.monotonic() - w0

    assert 0.025 <= _run(main()) < 1.0  # type: ignore[operator]
    assert fired and fired[0] >= 0.008


def test_a_stalled_loop_shows_as_timer_lateness_on_a_scaled_clock() -> None:
    """A 30 ms stall of the event loop at time_scale 0.001 makes the pending timer 30 platform s late; said so."""
    clock = Clock(0.001)

    async def main() -> None:
        sleeper = asyncio.ensure_future(clock.sleep(5))  # due 5 ms of wall time from now
        await asyncio.sleep(0)
        time.sleep(0.03)  # the host stalls the loop
        await sleeper

    _run(main())
    assert 20 <= clock.late_max_s < 1000


def test_the_virtual_clock_fires_timers_on_time() -> None:
    """On the virtual clock a timer jumped to fires at its deadline exactly: no lateness."""
    clock = Clock(None)

    async def main() -> None:
        async with clock.caller():
            await asyncio.gather(clock.sleep(10), clock.sleep(20))

    _run(main())
    assert clock.late_max_s < 0.01
