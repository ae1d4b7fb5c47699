"""The serverless pattern: functions that scale from zero, one call per instance, kill on timeout.

Policy over the shared pool (``pool.py``):
- a call takes a warm idle instance (most recently used first, as Lambda tends to) or cold-starts one;
- at most ``max_concurrency`` calls are in flight (those starting included); beyond that a call is
  ``throttled`` at once (HTTP 429), never queued;
- an instance serves ``instance_concurrency`` calls at once (1 on Lambda);
- an instance idle for ``idle_expiry_s`` platform seconds is recycled, so the next call is cold;
- a call past ``timeout_s`` platform seconds kills its instance (``timeout``), as does a memory-cap breach
  (``oom``); the next call cold-starts a fresh one;
- ``provisioned_concurrency`` instances start with the deployment, never expire, and are billed while idle;
- ``warmup_interval_s`` sends keep-warm pings that do not run the agent but are billed like calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from .billing import provisioned_cost
from .clock import Clock
from .pattern import Gate, OnEvent, finish_record, new_ids, rejected_record, task_json, traced
from .pool import Pool
from .profiles import Profile
from .records import Record, Summary
from .runtime.instance import Instance, InstanceFailure, StartInfo
from .state import StateStore
from .store import open_log

__all__ = ["Serverless"]


class Serverless:
    """A serverless deployment of one agent."""

    pattern = "serverless"

    def __init__(self, pool: Pool, profile: Profile, clock: Clock, state: StateStore) -> None:
        self.pool = pool
        self.profile = profile
        self.clock = clock
        self.state = state
        pool.on_checkpoint = state.put_checkpoint
        self.records = open_log(pool.pattern, profile.name, pool.run_id, pool.records_dir)
        self.inflight = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._started_platform = 0.0
        self._provisioned_since: float | None = None
        self._provisioned_until: float | None = None
        self._became_idle = asyncio.Event()  # an instance finished a call: the sweep has a deadline again
        self._closing = False

    # ---- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the provisioned instances and the background loops."""
        await self.pool.open()
        self._started_platform = self.clock.now()
        if self.profile.provisioned_concurrency:
            started = await asyncio.gather(
                *(self.pool.start_instance() for _ in range(self.profile.provisioned_concurrency)))
            for inst, info in started:
                if isinstance(info, InstanceFailure):
                    raise _provisioning_error(info)
                inst.provisioned = True
            self._provisioned_since = self.clock.now()
        self._tasks.append(asyncio.create_task(self._sweep(), name="serverless-idle-sweep"))
        if self.profile.warmup_interval_s:
            self._tasks.append(asyncio.create_task(self._warmup_loop(), name="serverless-warmup"))

    async def close(self) -> None:
        """Stop the loops and every instance."""
        if self._provisioned_since is not None and self._provisioned_until is None:
            self._provisioned_until = self.clock.now()
        self._closing = True
        self._became_idle.set()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        try:
            await self.pool.close()
        finally:
            self.state.close()

    def fixed_cost(self) -> float:
        """Provisioned concurrency billed while it existed (platform time, rounded up as billed)."""
        if self._provisioned_since is None:
            return 0.0
        until = self._provisioned_until if self._provisioned_until is not None else self.clock.now()
        return provisioned_cost(self.profile.provisioned_concurrency, until - self._provisioned_since,
                                self.profile)

    def summary(self) -> Summary:
        """Counts, latency percentiles, cold starts and cost of every call so far."""
        return self.records.tally.summary(pattern=self.pattern, profile=self.profile.name,
                         fixed_cost_usd=self.fixed_cost())

    # ---- calls -----------------------------------------------------------------------------------------

    async def invoke_gated(self, task: Any, session_id: str | None, gateway_s: float,
                           on_timeout: Callable[[], None], *, body: bytes | None = None) -> Record:
        """``invoke`` behind an API gateway whose timeout counts platform time (``pattern.Gated``).

        ``on_timeout`` is called once the call has taken ``gateway_s`` platform seconds (the harness's own
        overhead, a cold start's init and the invocation's platform time so far, measured as its limits are);
        the call runs on, as behind API Gateway. A gateway timer on a scaled clock would instead count the
        instance's real work at 1/time_scale: at time_scale=0.01 a cold start's 0.3 s SDK import was a 504.
        """
        return await self.invoke(task, session_id, gate=(gateway_s, on_timeout), body=body)

    async def invoke(self, task: Any, session_id: str | None = None, *, on_event: OnEvent | None = None,
                     trigger: str = "invoke", gate: Gate | None = None, body: bytes | None = None) -> Record:
        """Run one call as the platform would; never raises for platform failures.

        ``body``: the task's JSON when the caller already has it (a gateway's request body).
        """
        t0 = time.monotonic()
        started_at = time.time()
        p = self.profile
        try:
            body = task_json(task, body)
        except (TypeError, ValueError) as exc:
            return self._add(rejected_record(
                pattern=self.pattern, profile=p, outcome="agent_error", started_at=started_at,
                session_id=session_id, wall_s=time.monotonic() - t0,
                error=f"the task is not JSON-serializable ({exc}); pass a dict of JSON values"))
        if p.request_limit_bytes is not None and len(body) > p.request_limit_bytes:
            return self._add(rejected_record(
                pattern=self.pattern, profile=p, outcome="payload_too_large", started_at=started_at,
                session_id=session_id, wall_s=time.monotonic() - t0,
                error=f"request of {len(body)} bytes exceeds the {p.request_limit_bytes}-byte limit of {p.name}"))
        if self.inflight >= p.max_concurrency:
            return self._add(rejected_record(
                pattern=self.pattern, profile=p, outcome="throttled", started_at=started_at,
                session_id=session_id, wall_s=time.monotonic() - t0,
                error=f"Rate exceeded: {self.inflight} calls in flight at the concurrency limit of "
                      f"{p.max_concurrency} (TooManyRequestsException, HTTP 429)"))
        self.inflight += 1
        try:
            return self._add(await self._run(body, session_id, on_event, trigger, t0, started_at, gate))
        finally:
            self.inflight -= 1

    async def _run(self, body: bytes, session_id: str | None, on_event: OnEvent | None, trigger: str,
                   t0: float, started_at: float, gate: Gate | None = None) -> Record:
        inv_id, trace_id = new_ids()
        inst = self._acquire()
        cold = inst is None
        info: StartInfo | InstanceFailure | None = None
        if inst is None:
            inst, info = await self.pool.start_instance()
            if isinstance(info, InstanceFailure):
                return finish_record(
                    pattern=self.pattern, profile=self.profile, invocation_id=inv_id, trace_id=trace_id,
                    instance_id=inst.id, session_id=session_id, started_at=started_at,
                    wall_s=time.monotonic() - t0, cold=True, init_ms=info.platform_ms,
                    init_wall_ms=info.wall_ms, trigger=trigger, events=[],
                    result={"outcome": info.outcome, "error": info.error}, count_overhead=not self.clock.virtual)
        init_ms = info.init_ms if isinstance(info, StartInfo) else 0.0
        init_wall = info.wall_ms if isinstance(info, StartInfo) else 0.0
        if trigger == "warmup":
            result, events = await self._ping(inst, inv_id)
        else:
            msg: dict[str, Any] = {"session_id": session_id}
            if session_id is not None:
                msg["state"] = self.state.get_state(session_id)
            notify_at_s, on_timeout = None, None
            if gate is not None:
                # What the gateway has waited so far in platform time: the harness's own overhead (1:1, as the
                # record counts it) and the cold start's init; the invocation gets the rest.
                notify_at_s = gate[0] - (time.monotonic() - t0) - init_ms / 1000.0
                on_timeout = gate[1]
            result, events = await inst.call(inv_id, msg, body, self.profile.timeout_s, on_event,
                                             on_limit=on_timeout, notify_at_s=notify_at_s)
            if session_id is not None and "state" in result and result.get("outcome") == "ok":
                self.state.put_state(session_id, result["state"])
        if not inst.alive:
            await self.pool.discard_dead(inst)
        elif inst.inflight == 0:
            self._became_idle.set()
        return finish_record(
            pattern=self.pattern, profile=self.profile, result=result, events=events, invocation_id=inv_id,
            trace_id=trace_id, instance_id=inst.id, session_id=session_id, started_at=started_at,
            wall_s=time.monotonic() - t0, cold=cold, init_ms=init_ms, init_wall_ms=init_wall,
            trigger=trigger, count_overhead=not self.clock.virtual)

    async def _ping(self, inst: Instance, inv_id: str) -> tuple[dict[str, Any], list[Any]]:
        """A keep-warm ping: the handler returns at once without running the agent's logic."""
        inst.inflight += 1
        try:
            return {"outcome": "ok", "output": None, "duration_ms": 0.0, "wall_ms": 0.0}, []
        finally:
            inst.inflight -= 1
            inst.last_used = self.clock.now()

    def _expired(self, inst: Instance, now: float) -> bool:
        """Idle for ``idle_expiry_s`` platform seconds at platform time ``now``."""
        return (inst.ready and not inst.provisioned and inst.inflight == 0
                and now - inst.last_used >= self.profile.idle_expiry_s)

    def _acquire(self) -> Instance | None:
        """The warm instance to use: provisioned first, then the most recently used with spare capacity."""
        now = self.clock.now()
        best: Instance | None = None
        for inst in self.pool.instances:
            if not inst.ready or inst.inflight >= self.profile.instance_concurrency or self._expired(inst, now):
                continue
            if best is None or (inst.provisioned, inst.last_used) > (best.provisioned, best.last_used):
                best = inst
        # No await lies between choosing an instance and Instance.call/_ping counting it in flight, so two
        # calls cannot both take the last free slot.
        return best

    def _add(self, record: Record) -> Record:
        self.records.append(record)
        return traced(self.pool, record)

    # ---- background ------------------------------------------------------------------------------------

    async def _sweep(self) -> None:
        """Recycle instances idle past the expiry (a call never takes an expired one: ``_acquire`` checks)."""
        expiry = self.profile.idle_expiry_s
        while not self._closing:
            # Sleep until the earliest idle instance expires; with none idle, until one is. No periodic
            # timer: on the virtual clock every timer is a deadline time may jump to.
            now = self.clock.now()
            idle = [i.last_used + expiry - now for i in self.pool.instances
                    if i.ready and not i.provisioned and i.inflight == 0]
            if not idle:
                self._became_idle.clear()
                await self._became_idle.wait()
                continue
            await self.clock.sleep(max(min(idle), expiry / 1000, 1e-3))
            now = self.clock.now()
            for inst in [i for i in self.pool.instances if i.alive and self._expired(i, now)]:
                # Re-check: an earlier retire() awaited, and this instance may have taken a call since.
                if self._expired(inst, self.clock.now()):
                    await self.pool.retire(inst)

    async def _warmup_loop(self) -> None:
        """Send ``warmup_concurrency`` concurrent pings every ``warmup_interval_s`` platform seconds."""
        assert self.profile.warmup_interval_s
        while True:
            await self.clock.sleep(self.profile.warmup_interval_s)
            await asyncio.gather(*(self.invoke(None, trigger="warmup")
                                   for _ in range(self.profile.warmup_concurrency)))


def _provisioning_error(info: InstanceFailure) -> Exception:
    from .errors import InstanceStartError

    return InstanceStartError(f"a provisioned instance failed to start: {info.error}")
