"""Supervision of long-lived workers: systemd-like restart policies, a start limit, and retry back-off.

``RestartPolicy`` decides, after a worker process ended, whether and when it is started again, the way
systemd's ``Restart=``, ``RestartSec=``, ``StartLimitBurst=`` and ``StartLimitIntervalSec=`` do: with
``on-failure`` (the default) a worker that crashed, was OOM-killed or failed to start is restarted after
``restart_sec``; more than ``start_limit_burst`` starts within ``start_limit_interval_s`` and the worker
is given up (systemd's "start request repeated too quickly"). ``always`` restarts after a clean exit too;
``no`` never restarts. All times are platform seconds on the clock.

``Inbox`` is the hand-off from the dispatcher to one idle worker.

``retry_delay`` is the back-off before a failed task is tried again: exponential in the attempt number,
capped, with full jitter (the AWS architecture blog's recommendation), seeded so a run can be repeated.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["RESTART_POLICIES", "Inbox", "RestartPolicy", "retry_delay"]

T = TypeVar("T")


class Inbox(Generic[T]):
    """A worker's hand-off slot: items in order, and one waiter that also wakes when the worker dies.

    An ``asyncio.Queue`` would need a task per wait (``get()`` raced against the instance's death with
    ``asyncio.wait``); this is one future and two callbacks, on every task's warm path.
    """

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: T) -> None:
        """Hand over ``item`` and wake the worker."""
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def empty(self) -> bool:
        """Whether nothing is waiting to be taken."""
        return not self._items

    def get_nowait(self) -> T:
        """The oldest item (the inbox must not be empty)."""
        return self._items.popleft()

    async def wait(self, died: asyncio.Future[None]) -> bool:
        """Wait for an item or for ``died`` to finish; True if an item is there to take."""
        while not self._items:
            if died.done():
                return False
            waiter = self._waiter = asyncio.get_running_loop().create_future()

            def wake(_: object, waiter: asyncio.Future[None] = waiter) -> None:
                if not waiter.done():
                    waiter.set_result(None)

            died.add_done_callback(wake)
            try:
                await waiter
            finally:
                died.remove_done_callback(wake)
                self._waiter = None
        return True

RESTART_POLICIES = ("on-failure", "always", "no")


@dataclass
class RestartPolicy:
    """The restart decisions for one worker slot."""

    policy: str = "on-failure"
    restart_sec: float = 0.1
    start_limit_burst: int = 5
    start_limit_interval_s: float = 10.0
    starts: deque[float] = field(default_factory=deque)  # platform times of recent starts
    gave_up: bool = False

    def may_start(self, now: float) -> bool:
        """Record a start at ``now`` if the start limit allows it; False once the worker is given up."""
        if self.gave_up:
            return False
        while self.starts and now - self.starts[0] > self.start_limit_interval_s:
            self.starts.popleft()
        # systemd: StartLimitIntervalSec=0 (or a burst of 0) disables the limit.
        if self.start_limit_burst and self.start_limit_interval_s and len(self.starts) >= self.start_limit_burst:
            self.gave_up = True
            return False
        self.starts.append(now)
        return True

    def restart_after(self, failed: bool) -> float | None:
        """Platform seconds to wait before starting the worker again, or None for no restart."""
        if self.policy == "no" or (self.policy == "on-failure" and not failed):
            return None
        return self.restart_sec


def retry_delay(attempt: int, base_s: float, max_s: float, rng: random.Random) -> float:
    """Back-off before retry number ``attempt`` (1: the first retry): uniform in [0, min(max, base*2^(a-1))]."""
    if base_s <= 0:
        return 0.0
    return rng.uniform(0.0, min(max_s, base_s * 2 ** max(0, attempt - 1)))
