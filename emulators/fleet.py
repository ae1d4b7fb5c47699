"""The replica fleet of a container deployment: starts, supervises, scales, drains and restarts replicas.

Each replica has one lifecycle task: start an instance from the shared pool, serve until the process ends,
and, if nobody asked it to end, restart it after an exponential back-off, as the kubelet does for a
container in CrashLoopBackOff (the delay doubles per consecutive crash up to ``restart_backoff_max_s``,
and the count resets once a replica stayed up twice that long). Scaling down drains a replica first (no
new requests; the ones it holds finish) so that no request fails for it. Every change lands in the
replica timeline, and every replica's up time in a ``ReplicaMeter`` for billing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time

from .billing import ReplicaMeter
from .clock import Clock
from .errors import InstanceStartError
from .pool import Pool
from .profiles import Profile
from .records import ReplicaPoint
from .replica import Replica
from .runtime.instance import InstanceFailure

__all__ = ["ReplicaFleet"]

_LIVE = ("starting", "ready", "backoff")  # the replicas the deployment counts (HPA's spec.replicas)
_REMOVE_ORDER = {"backoff": 0, "starting": 1, "ready": 2}  # scale down the least useful first


class ReplicaFleet:
    """The replicas, their lifecycles, the requests waiting for any replica, the timeline and the meters."""

    def __init__(self, pool: Pool, profile: Profile, clock: Clock) -> None:
        self.pool = pool
        self.profile = profile
        self.clock = clock
        self.replicas: list[Replica] = []
        self.pending: list[asyncio.Future[None]] = []  # requests waiting for a replica to become ready
        self.timeline: list[ReplicaPoint] = []  # append-only: point() is the one writer
        # Kept as the timeline grows, so that summary() (the live sampler asks every 0.5 s) does not walk or
        # copy a timeline that gains a point per autoscaler sync, 5,760 a platform day.
        self.peak_replicas = 0  # the most replicas up at once (draining ones included) over the timeline
        self._snapshot: tuple[ReplicaPoint, ...] = ()  # the timeline as of its last copy
        self.meters: list[ReplicaMeter] = []
        self.startup_s = 0.0  # platform seconds replicas spent starting (billed: the replica exists)
        self.busy_s = 0.0  # replica seconds charged to calls
        self.desired = 0
        self.t0 = 0.0
        self.closing = False
        self.closed_at: float | None = None
        self.restarting = False
        self._names = itertools.count(1)
        self._removals: set[asyncio.Task[None]] = set()
        self._cpu_seen: dict[str, float] = {}  # instance id -> its CPU seconds at the last look
        self._cpu_looked = 0.0  # platform time of the last look

    # ---- bookkeeping -----------------------------------------------------------------------------------

    def elapsed(self) -> float:
        """Platform seconds since the deployment started."""
        return self.clock.now() - self.t0

    def live(self) -> list[Replica]:
        """Replicas the deployment counts: starting, ready, or restarting after a crash (not draining)."""
        return [r for r in self.replicas if r.state in _LIVE]

    def point(self, event: str, *, metric: float | None = None, raw: int | None = None) -> None:
        """Append the fleet's state now to the timeline."""
        p = ReplicaPoint(
            t_s=self.elapsed(), event=event, replicas=len(self.live()),
            draining=sum(1 for r in self.replicas if r.state in ("draining", "stopping")),
            ready=sum(1 for r in self.replicas if r.state == "ready"), desired=self.desired, metric=metric,
            raw_desired=raw, outstanding=sum(r.outstanding for r in self.replicas) + self.waiting())
        self.timeline.append(p)
        self.peak_replicas = max(self.peak_replicas, p.replicas + p.draining)

    def timeline_snapshot(self) -> tuple[ReplicaPoint, ...]:
        """The timeline as a tuple, copied again only once it has grown (summaries share one copy till then)."""
        if len(self._snapshot) != len(self.timeline):
            self._snapshot = tuple(self.timeline)
        return self._snapshot

    def cpu_rate(self) -> float:
        """CPU seconds per platform second the ready replicas used since the last call (an autoscaler input).

        CPU a replica used before it became ready (its start) is left out, as is a replica gone meanwhile.
        """
        now = self.clock.now()
        used, seen = 0.0, {}
        for r in self.replicas:
            if r.state != "ready" or r.inst is None:
                continue
            cpu = seen[r.inst.id] = r.inst.cpu_seconds()
            used += max(0.0, cpu - self._cpu_seen.get(r.inst.id, r.cpu_at_ready))
        period, self._cpu_seen, self._cpu_looked = now - self._cpu_looked, seen, now
        return used / period if period > 0 else 0.0

    def waiting(self) -> int:
        """Requests waiting for a replica, not yet given to one."""
        return len(self.pending)

    # ---- requests waiting for any replica --------------------------------------------------------------

    async def wait_for_ready(self, deadline: float) -> bool:
        """Wait for a replica to become ready (or to fail); False once ``deadline`` (platform time) has passed.

        While a replica is still starting the wait goes on past the deadline: on a scaled clock its start
        includes the agent's real import time, which the clock cannot tell from waiting, so the caller
        judges the platform time waited once the start is over.
        """
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.append(fut)
        try:
            left = deadline - self.clock.now()
            starting = any(r.state == "starting" for r in self.replicas)
            if left <= 0 and not starting:
                return False
            try:
                await self.clock.wait(asyncio.shield(fut), None if starting and left <= 0 else max(left, 0.0))
            except TimeoutError:
                return any(r.state == "starting" for r in self.replicas)
            return True
        finally:
            self.pending.remove(fut)

    def wake_pending(self) -> None:
        """Something changed (a replica became ready or failed): every waiting request looks again."""
        for f in self.pending:
            if not f.done():
                f.set_result(None)

    # ---- replica lifecycle -----------------------------------------------------------------------------

    def add_replica(self) -> Replica:
        """A new replica, starting now."""
        r = Replica(f"r-{next(self._names)}")
        r.booted = asyncio.get_running_loop().create_future()
        self.replicas.append(r)
        r.lifecycle = asyncio.create_task(self._lifecycle(r), name=f"replica-{r.name}")
        return r

    async def _boot(self, r: Replica) -> str | None:
        """Start an instance for ``r``; None when it is ready (or was removed meanwhile), else the error."""
        r.state = "starting"
        r.boot_wall = time.monotonic()
        try:
            inst, info = await self.pool.start_instance()
        except InstanceStartError as exc:  # the deployment is closing
            return str(exc)
        if isinstance(info, InstanceFailure):
            self.startup_s += info.platform_ms / 1000.0
            return info.error
        self.startup_s += info.init_ms / 1000.0
        if r.state != "starting" or self.closing:  # scaled away while it started
            await self.pool.retire(inst)
            return None
        r.new_instance(inst, info)
        # Billing starts with the start (startup_s above): the meter owes what remains of the minimum.
        p = self.profile
        r.meter = ReplicaMeter(self.clock.now(), min_billed_s=max(0.0, p.min_billed_s - info.init_ms / 1000.0),
                               bill_idle=p.replica_billing == "instance")
        self.meters.append(r.meter)
        r.ready_at = self.clock.now()
        r.cpu_at_ready = inst.cpu_seconds() if self.profile.target_cpu_percent is not None else 0.0
        r.state = "ready"
        self.point("ready")
        self.replica_ready(r, info.init_ms / 1000.0)
        self.wake_pending()
        return None

    def replica_ready(self, r: Replica, startup_s: float) -> None:
        """``r`` became ready after a start of ``startup_s`` platform seconds (a hook for the front door)."""

    async def _lifecycle(self, r: Replica) -> None:
        p = self.profile
        streak = 0
        while True:
            error = await self._boot(r)
            if r.booted is not None and not r.booted.done():
                r.booted.set_result(error)
            if r.state not in ("starting", "ready") or self.closing:
                return
            if error is None and r.inst is not None:
                inst = r.inst
                await inst.wait_closed()
                if r.state != "ready" or self.closing:
                    if r.state == "draining":  # died while draining: what it still held will not run
                        r.bounce_queue()
                        if r.meter is not None:
                            r.meter.stop(self.clock.now())
                    return  # else stopped on purpose
                lived = self.clock.now() - r.ready_at
                streak = 1 if lived >= 2 * p.restart_backoff_max_s else streak + 1
                r.state, r.inst = "backoff", None
                if r.meter is not None:
                    r.meter.stop(self.clock.now())
                r.bounce_queue()  # requests that never reached the process go back to the balancer
                event = inst.exit_reason or "crash"
                await self.pool.discard_dead(inst)
            else:
                streak += 1
                r.state, event = "backoff", "init_error"
            r.restarts += 1
            self.point(event)
            self.wake_pending()
            await self.clock.sleep(min(p.restart_backoff_max_s, p.restart_backoff_s * 2 ** (streak - 1)))
            if r.state != "backoff" or self.closing:
                return
            self.point("restart")

    # ---- scaling ---------------------------------------------------------------------------------------

    def scale_to(self, n: int) -> None:
        """Start or drain replicas until ``n`` are live."""
        self.desired = n
        live = self.live()
        if n > len(live):
            for _ in range(n - len(live)):
                self.add_replica()
            self.point("scale")
        elif n < len(live):  # drained replicas finish what they hold before they stop
            order = sorted(enumerate(live), key=lambda ir: (_REMOVE_ORDER[ir[1].state], ir[1].outstanding, -ir[0]))
            for _, r in order[: len(live) - n]:
                task = asyncio.create_task(self.remove(r), name=f"drain-{r.name}")
                self._removals.add(task)
                task.add_done_callback(self._removals.discard)
            self.point("scale")

    async def remove(self, r: Replica) -> None:
        """Take ``r`` out: no new requests, the ones it holds finish, then its process stops."""
        if r.state == "backoff":
            r.state = "stopped"
            if r.lifecycle is not None:
                r.lifecycle.cancel()
        elif r.state == "starting":
            r.state = "stopping"  # _boot retires the instance when its start is over
            if r.lifecycle is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await r.lifecycle
        else:
            r.state = "draining"
            self.point("drain")
            await r.idle.wait()
            r.state = "stopping"
            if r.inst is not None:
                await self.pool.retire(r.inst)
            if r.meter is not None:
                r.meter.stop(self.clock.now())
        r.state = "stopped"
        with contextlib.suppress(ValueError):
            self.replicas.remove(r)
        self.point("stop")

    async def restart(self) -> None:
        """Rolling restart: one at a time, start a new replica, wait until it is ready, then drain an old one."""
        self.restarting = True  # the autoscaler must not undo the surge replica
        try:
            for old in [r for r in self.replicas if r.state == "ready"]:
                new = self.add_replica()
                self.point("restart")
                assert new.booted is not None
                error = await new.booted
                if error is not None:
                    raise InstanceStartError(f"rolling restart stopped: a new replica failed to start: {error}")
                await self.remove(old)
        finally:
            self.restarting = False

    async def shutdown(self) -> None:
        """Stop every replica and the pool; billing stops now."""
        self.closing = True
        self.closed_at = self.clock.now()
        for m in self.meters:
            m.stop(self.closed_at)
        self.wake_pending()
        for r in self.replicas:
            r.bounce_queue()
        tasks = [t for t in (*(r.lifecycle for r in self.replicas), *self._removals) if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await self.pool.close()
