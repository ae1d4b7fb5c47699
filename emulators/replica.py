"""Replicas of a container deployment and the load balancer in front of them.

A ``Replica`` is one long-lived slot of the deployment (a Kubernetes pod, a Cloud Run instance, a Fly
Machine): it runs one instance process at a time, serves ``replica_concurrency`` requests at once and
keeps up to ``replica_queue_limit`` more waiting in its own queue. When its process dies, a new one takes
its place after a back-off: the replica keeps its name, the instance id changes.

The ``LoadBalancer`` picks a replica for each request at arrival, as kube-proxy or a cloud load balancer
does: round robin, or least outstanding requests (ties broken in round-robin order so equal replicas share
the load), optionally sticky by session id. A request stays with the replica it was given; only requests
still waiting in a replica's queue when it dies go back to the balancer (they never reached the process).
That is Kubernetes' front door; Cloud Run's (one pending queue for all replicas) is ``frontdoor.py``, which
takes a replica's freed slots through ``Replica.hand_over``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence

from .billing import ReplicaMeter
from .clock import Clock
from .runtime.instance import Instance, StartInfo

__all__ = ["BOUNCED", "LoadBalancer", "Replica"]

BOUNCED = -1  # acquire(): the replica died while the request waited in its queue
MAX_STICKY_SESSIONS = 100_000  # sessions whose replica the sticky balancer remembers


class Replica:
    """One replica: its current instance, its slots and its queue."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = "starting"  # starting | ready | backoff | draining | stopping | stopped
        self.inst: Instance | None = None
        self.info: StartInfo | None = None  # how the current instance's cold start went
        self.meter: ReplicaMeter | None = None
        self.generation = 0  # bumped per instance, so a slot of a dead instance is not released twice
        self.running = 0
        self.queue: deque[asyncio.Future[bool]] = deque()
        self.restarts = 0
        self.ready_at = -1.0  # platform clock when the current instance became ready
        self.cpu_at_ready = 0.0  # its process's CPU seconds then (read only when an autoscaler scales on CPU)
        self.boot_wall = 0.0  # time.monotonic() when its current instance began to start
        self.booted: asyncio.Future[str | None] | None = None  # the first boot: None, or its error
        self.lifecycle: asyncio.Task[None] | None = None
        self.idle = asyncio.Event()
        self.idle.set()
        # The front door's pending queue (frontdoor.py), if any: offered each slot this replica frees; True
        # when a waiting request took it.
        self.hand_over: Callable[[Replica], bool] | None = None

    def __repr__(self) -> str:
        return f"Replica({self.name}, {self.state}, running={self.running}, queued={len(self.queue)})"

    @property
    def outstanding(self) -> int:
        """Requests running on it or waiting in its queue."""
        return self.running + len(self.queue)

    def has_room(self, concurrency: int, queue_limit: int) -> bool:
        """Whether one more request may be given to it (a free slot or a place in the queue)."""
        return self.running < concurrency or len(self.queue) < queue_limit

    def has_free_slot(self, concurrency: int) -> bool:
        """Whether a request given to it now runs at once (no queueing)."""
        return self.running < concurrency and not self.queue

    def new_instance(self, inst: Instance, info: StartInfo) -> None:
        """A fresh instance took the replica's place: no slot of the old one is held any more."""
        self.inst, self.info = inst, info
        self.generation += 1
        self.running = 0
        self._check_idle()

    async def acquire(self, concurrency: int, timeout: float | None, clock: Clock) -> int | None:
        """Take a slot: its generation (>= 1) once running, BOUNCED if the replica died first, None on timeout.

        ``timeout`` is in platform seconds on ``clock``.
        """
        if self.running < concurrency and not self.queue:
            return self.take_slot()
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.queue.append(fut)
        self.idle.clear()
        try:
            granted = await clock.wait(asyncio.shield(fut), timeout)
        except (TimeoutError, asyncio.CancelledError) as exc:
            if fut.done() and not fut.cancelled() and fut.result():
                self.release(self.generation)  # granted at the very moment the wait ended: give it back
            else:
                with contextlib.suppress(ValueError):
                    self.queue.remove(fut)
                fut.cancel()
                self._check_idle()
            if isinstance(exc, asyncio.CancelledError):
                raise
            return None
        return self.generation if granted else BOUNCED

    def take_slot(self) -> int:
        """Take a free slot now (the caller checked there is one); the generation it belongs to."""
        self.running += 1
        self.idle.clear()
        return self.generation

    def release(self, generation: int) -> None:
        """A request finished: its slot goes to the next one waiting, or is freed."""
        if generation != self.generation:
            return  # the slot belonged to an instance that died; new_instance() reset the count
        while self.queue:
            fut = self.queue.popleft()
            if not fut.done():
                fut.set_result(True)  # the slot passes on: running stays the same
                return
        if self.hand_over is not None and self.hand_over(self):
            return  # a request of the front door's queue took the slot: running stays the same
        self.running = max(0, self.running - 1)
        self._check_idle()

    def bounce_queue(self) -> int:
        """The replica died: every request still waiting goes back to the balancer."""
        waiting = [f for f in self.queue if not f.done()]
        for f in waiting:
            f.set_result(False)
        self.queue.clear()
        self._check_idle()
        return len(waiting)

    def _check_idle(self) -> None:
        if self.outstanding == 0:
            self.idle.set()


class LoadBalancer:
    """Chooses the replica for a request: round robin or least outstanding requests, optionally sticky."""

    def __init__(self, policy: str = "round_robin", sticky: bool = False) -> None:
        self.policy = policy
        self.sticky = sticky
        self._next = 0
        # session id -> replica name (the affinity cookie), the latest MAX_STICKY_SESSIONS sessions: the
        # platform keeps nothing (the cookie is the client's), and a long run of new sessions must not grow
        # this; a session forgotten here is re-pinned, as an expired cookie would be.
        self._sessions: OrderedDict[str, str] = OrderedDict()

    def pick(self, replicas: Sequence[Replica], session_id: str | None, concurrency: int,
             queue_limit: int) -> Replica | None:
        """A ready replica with room, or None when none has any."""
        eligible = [r for r in replicas if r.state == "ready" and r.has_room(concurrency, queue_limit)]
        if not eligible:
            return None
        if self.sticky and session_id is not None:
            pinned = self._sessions.get(session_id)
            for r in eligible:
                if r.name == pinned:
                    return r
        start = self._next % len(eligible)
        self._next += 1
        rotated = [*eligible[start:], *eligible[:start]]
        choice = min(rotated, key=lambda r: r.outstanding) if self.policy == "least_outstanding" else rotated[0]
        if self.sticky and session_id is not None:
            # A session whose replica is gone (or full) moves to the new one, as a cookie would be re-issued.
            self._sessions[session_id] = choice.name
            self._sessions.move_to_end(session_id)
            if len(self._sessions) > MAX_STICKY_SESSIONS:
                self._sessions.popitem(last=False)
        return choice
