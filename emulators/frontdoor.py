"""Cloud Run's front door: one queue of pending requests per deployment, served by any replica that frees a slot.

Container platforms differ in where a request waits when no replica can run it now (platform-facts.md):

- ``front_door = "pod"`` (Kubernetes): ingress-nginx picks a pod for each request (round robin over the
  endpoints, K17) and kube-proxy binds a connection to a backend when it opens (K19). The request is the
  pod's from then on: it waits in that replica's own queue (``replica.py``), and replicas that start later
  help only later requests.
- ``front_door = "pending_queue"`` (Cloud Run, R10, R12): a request that finds no instance with a free slot
  waits in one queue per revision; any instance that finishes a request, or a new one that becomes ready,
  takes the oldest waiting request. A request waits at most ``max(pending_startup_factor x the average
  startup time of the service's instances, pending_timeout_s)`` (3.5 x, 10 s), then fails with 429.

``PendingQueue`` is that queue. It only hands out slots; the container pattern decides when a request
joins it and starts instances for the requests in it (Cloud Run's on-demand scale-out).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable

from .clock import Clock
from .replica import Replica

__all__ = ["PendingQueue"]

Grant = tuple[Replica, int]  # the replica and the generation of the slot taken on it


class PendingQueue:
    """Requests waiting for any replica's free slot, oldest first, and the wait limit of the platform."""

    def __init__(self, clock: Clock, concurrency: int, floor_s: float, startup_factor: float) -> None:
        self.clock = clock
        self.concurrency = concurrency
        self.floor_s = floor_s
        self.startup_factor = startup_factor
        self._waiters: deque[asyncio.Future[Grant | None]] = deque()
        self._starts = 0
        self._start_s = 0.0

    def __len__(self) -> int:
        # Every future in the deque is pending: a granted, closed or abandoned one is taken out at once.
        return len(self._waiters)

    # ---- the wait limit ---------------------------------------------------------------------------------

    def note_startup(self, platform_s: float) -> None:
        """A replica became ready after starting for ``platform_s`` platform seconds."""
        self._starts += 1
        self._start_s += platform_s

    @property
    def average_startup_s(self) -> float | None:
        """The average start of the deployment's replicas so far (None before the first is ready)."""
        return self._start_s / self._starts if self._starts else None

    def limit_s(self) -> float:
        """How long a request may wait: ``max(factor x average startup, floor)``; the floor before any start."""
        avg = self.average_startup_s
        return self.floor_s if avg is None else max(self.startup_factor * avg, self.floor_s)

    # ---- slots ----------------------------------------------------------------------------------------

    def join(self) -> asyncio.Future[Grant | None]:
        """A request starts waiting (at the back of the queue)."""
        fut: asyncio.Future[Grant | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        return fut

    def hand_over(self, r: Replica) -> bool:
        """``r`` is about to free a slot: give it to the oldest waiting request instead; whether one took it."""
        if r.state != "ready":
            return False  # a draining replica finishes what it holds and takes nothing new
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result((r, r.generation))
                return True
        return False

    def offer(self, r: Replica) -> None:
        """``r`` has free slots (it just became ready): the oldest waiting requests take them."""
        while r.state == "ready" and r.running < self.concurrency and self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result((r, r.take_slot()))

    async def wait(self, fut: asyncio.Future[Grant | None], timeout: float | None) -> Grant | None:
        """The slot ``fut`` was given, or None after ``timeout`` platform seconds (the request keeps its place:
        ``leave`` takes it out) or once the queue closed."""
        try:
            return await self.clock.wait(asyncio.shield(fut), timeout)
        except TimeoutError:
            return fut.result() if fut.done() and not fut.cancelled() else None
        except asyncio.CancelledError:
            got = self.leave(fut)
            if got is not None:
                got[0].release(got[1])
            raise

    def leave(self, fut: asyncio.Future[Grant | None]) -> Grant | None:
        """The request stops waiting; if a slot reached it at that very moment, the slot (the caller's)."""
        if fut.done() and not fut.cancelled():
            return fut.result()
        fut.cancel()
        with contextlib.suppress(ValueError):
            self._waiters.remove(fut)
        return None

    async def pend(self, fut: asyncio.Future[Grant | None], t0_p: float, limit_s: float, *,
                   closing: Callable[[], bool], starting: Callable[[], bool]) -> tuple[Grant | None, str]:
        """Wait in the queue for a slot, from ``t0_p`` (platform time of arrival); None and why not when none
        came: ``throttled`` (the pending limit), ``timeout`` (the request's own ``limit_s``, if shorter), or
        ``closed``. ``starting()``: whether a replica is starting (on a scaled clock the wait goes on)."""
        while True:
            # The limit follows the starts seen so far: a start that ends while the request waits moves it.
            pending_until = t0_p + self.limit_s()
            until = min(t0_p + limit_s, pending_until)
            got = await self.wait(fut, max(0.0, until - self.clock.now()))
            if got is not None or closing() or fut.done():
                return got, "closed"
            if t0_p + self.limit_s() > pending_until + 1e-9 and pending_until < t0_p + limit_s:
                continue
            if not self.clock.virtual and starting():
                # On a scaled clock a start's real import reads as scaled time: wait for the start, and the
                # caller judges the platform time waited once the request has its slot (as wait_for_ready does).
                got = await self.wait(fut, self.limit_s())
                if got is not None or closing() or fut.done():
                    return got, "closed"
                continue
            got = self.leave(fut)
            if got is not None:
                return got, ""
            return None, "throttled" if pending_until <= t0_p + limit_s else "timeout"

    def reason(self, replicas: int, max_replicas: int) -> str:
        """The error of a request that waited past the limit (HTTP 429)."""
        avg = self.average_startup_s
        started = "no replica has started yet" if avg is None else f"average start {avg:.3g} s"
        return (f"no replica took the request within the pending limit of {self.limit_s():.3g} s "
                f"(max({self.startup_factor:g} x the average start, {self.floor_s:g} s); {started}; "
                f"{replicas} of max_replicas={max_replicas} replicas up; HTTP 429): raise max_replicas or "
                f"replica_concurrency")

    def close(self) -> None:
        """The deployment closes: every waiting request stops waiting (with no slot)."""
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
