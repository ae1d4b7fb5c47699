"""Cloud Run's pending queue without processes: the wait limit from the average start, oldest-first hand
over of freed slots, the limit's 429 path, and draining replicas taking nothing new."""

from __future__ import annotations

import asyncio

import pytest

from emulators.clock import Clock
from emulators.frontdoor import PendingQueue
from emulators.replica import Replica


def ready(name: str) -> Replica:
    r = Replica(name)
    r.state = "ready"
    return r


def test_limit_is_the_floor_until_starts_are_known_then_3_5_times_their_average() -> None:
    """max(3.5 x average startup, 10 s) (R10, R12): 10 s before any start, 10 s for fast starts, 14 s at 4 s."""
    q = PendingQueue(Clock(None), concurrency=1, floor_s=10.0, startup_factor=3.5)
    assert q.limit_s() == 10.0 and q.average_startup_s is None
    q.note_startup(0.2)
    assert q.limit_s() == 10.0
    q.note_startup(7.8)  # average 4 s
    assert q.average_startup_s == pytest.approx(4.0) and q.limit_s() == pytest.approx(14.0)


def test_freed_slots_go_to_the_oldest_waiting_request_of_any_replica() -> None:
    """Two replicas, three waiting requests: each slot freed, on either replica, goes to the oldest one."""
    async def run() -> list[str]:
        q = PendingQueue(Clock(None), concurrency=1, floor_s=10.0, startup_factor=3.5)
        a, b = ready("a"), ready("b")
        for r in (a, b):
            r.hand_over = q.hand_over
            r.take_slot()
        futs = [q.join() for _ in range(3)]
        b.release(b.generation)  # b frees first: the first request takes it
        a.release(a.generation)
        got = [await q.wait(f, 1.0) for f in futs[:2]]
        assert len(q) == 1 and a.running == b.running == 1  # handed over, never freed
        return [g[0].name for g in got if g is not None]

    assert asyncio.run(run()) == ["b", "a"]


def test_a_request_nobody_takes_stops_waiting_at_its_limit_and_leaves_the_queue() -> None:
    """On the virtual clock a wait with no slot ends after exactly its limit; once it leaves, the queue
    forgets it."""
    async def run() -> tuple[object, float, int]:
        clock = Clock(None)
        q = PendingQueue(clock, concurrency=1, floor_s=10.0, startup_factor=3.5)
        t0 = clock.now()
        async with clock.caller():  # a caller waits: idle time may jump
            fut = q.join()
            got = await q.wait(fut, q.limit_s())
        assert len(q) == 1 and q.leave(fut) is None
        return got, clock.now() - t0, len(q)

    got, waited, left = asyncio.run(run())
    assert got is None and waited == pytest.approx(10.0, abs=0.05) and left == 0


def test_a_draining_replica_frees_its_slot_instead_of_taking_a_waiting_request() -> None:
    """Only ready replicas serve the queue: a draining one finishes what it holds and takes nothing new."""
    async def run() -> tuple[int, int]:
        q = PendingQueue(Clock(None), concurrency=1, floor_s=10.0, startup_factor=3.5)
        r = ready("a")
        r.hand_over = q.hand_over
        r.take_slot()
        q.join()
        r.state = "draining"
        r.release(r.generation)
        return r.running, len(q)

    assert asyncio.run(run()) == (0, 1)
