"""The container pattern: a warm pool of long-lived replicas behind a load balancer, scaled by an autoscaler.

Policy over the shared pool (``pool.py``), in the Kubernetes / Cloud Run / Fargate way:
- ``min_replicas`` replicas start with the deployment and stay warm: their start (the profile's overhead +
  the agent's real import) is paid once per replica, never by a request;
- the front door (``front_door``) says where a request waits. ``pod`` (Kubernetes): the load balancer
  (``replica.py``) gives each request to a ready replica at arrival; a replica runs ``replica_concurrency``
  requests at once and queues ``replica_queue_limit`` more; with every ready replica full a request is
  ``throttled`` (HTTP 429). ``pending_queue`` (Cloud Run, ``frontdoor.py``): a request no replica has a
  free slot for waits in one queue for the deployment, replicas are started for it at once (on demand, up
  to ``max_replicas``), any replica that frees a slot takes the oldest, and past the pending limit the
  request is ``throttled`` (429);
- the ingress gives up on a request after ``timeout_s`` platform seconds (or ``gateway_timeout_s`` if
  shorter), queueing included: ``gateway_timeout`` (HTTP 504). The replica is not killed for it: the
  work runs on and keeps its slot, as a real server would;
- the autoscaler (``autoscale.py``, HPA semantics) runs every ``autoscale_sync_period_s`` on the clock;
  with ``min_replicas = 0`` the pool scales to zero and the first request waits for a cold start;
- a replica whose process dies (crash, memory cap) is restarted after an exponential back-off
  (CrashLoopBackOff); requests running on it end ``crash`` / ``oom``, requests waiting in its queue go back
  to the balancer; ``restart()`` replaces replicas one at a time without failing a request;
- replicas are billed for their whole up time, busy or idle (``replica_rate_usd``); each record carries
  its share of the replica while it ran, and the summary splits busy from idle cost;
- an ASGI app (``adapter="asgi"``) is served by uvicorn in each replica and reached by HTTP forwarding
  (``appcalls.py``): a request is admitted as any call (``_route``), then relayed, streamed and recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
from collections import deque
from typing import Any

from .appcalls import AppCalls
from .autoscale import Autoscaler, ScalePolicy
from .billing import replica_rate_usd
from .clock import Clock
from .errors import InstanceStartError
from .fleet import ReplicaFleet
from .frontdoor import PendingQueue
from .pattern import OnEvent, finish_record, new_ids, rejected_record, task_json, traced
from .pool import Pool
from .profiles import Profile
from .records import Cost, Record, Summary, amended, percentile
from .replica import BOUNCED, LoadBalancer, Replica
from .state import StateStore
from .store import open_log

__all__ = ["Container"]


class Container(ReplicaFleet):
    """A containerized warm-pool deployment of one agent."""

    pattern = "container"

    def __init__(self, pool: Pool, profile: Profile, clock: Clock, state: StateStore) -> None:
        super().__init__(pool, profile, clock)
        self.state = state
        pool.on_checkpoint = state.put_checkpoint
        self.records = open_log(pool.pattern, profile.name, pool.run_id, pool.records_dir)
        self.lb = LoadBalancer(profile.load_balancer, profile.sticky_sessions)
        self.autoscaler = Autoscaler(ScalePolicy.from_profile(profile))
        self._rate = replica_rate_usd(profile)
        self._orphan_usd = 0.0  # busy time of calls the ingress gave up on (billed, but on no record)
        self._latencies: deque[tuple[float, float]] = deque()  # (t, latency ms) for the p95 metric
        self._arrivals = 0  # requests since the last sync (scale to zero)
        self.front = (PendingQueue(clock, profile.replica_concurrency, profile.pending_timeout_s,
                                   profile.pending_startup_factor)
                      if profile.front_door == "pending_queue" else None)
        self._loop_task: asyncio.Task[None] | None = None
        # An ASGI app: each replica serves it with uvicorn, and HTTP requests are forwarded (appcalls.py).
        self.apps = AppCalls(self, pool.app_path) if getattr(pool, "forwards_http", False) else None
        self.forward_http = self.apps.forward if self.apps is not None else None
        self.forward_websocket = self.apps.websocket if self.apps is not None else None

    # ---- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start ``min_replicas`` warm replicas and the autoscaler."""
        await self.pool.open()
        self.t0 = self._cpu_looked = self.clock.now()
        self.autoscaler.started_at = 0.0
        self.desired = self.profile.min_replicas
        first = [self.add_replica() for _ in range(self.profile.min_replicas)]
        errors = [e for e in await asyncio.gather(*(r.booted for r in first if r.booted)) if e]
        if errors:
            raise InstanceStartError(f"a replica failed to start: {errors[0]}")
        self.point("start")
        self._loop_task = asyncio.create_task(self._autoscale_loop(), name="container-autoscaler")

    async def close(self) -> None:
        """Stop the autoscaler and every replica."""
        self.closing = True
        if self.front is not None:
            self.front.close()
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        try:
            await self.shutdown()
        finally:
            self.state.close()
            if self.apps is not None:
                await self.apps.aclose()

    async def queue_depth(self) -> int:
        """Requests waiting now: for a replica to be ready (the balancer's) and for a slot on one (each replica's)."""
        return len(self.pending) + sum(len(r.queue) for r in self.replicas)

    # ---- cost and summary ------------------------------------------------------------------------------

    def summary(self) -> Summary:
        """Counts, latency, cold starts, and cost split into busy and idle replica time."""
        now = self.closed_at if self.closed_at is not None else self.clock.now()
        idle_s = sum(m.idle_until(now) for m in self.meters) + self.startup_s
        idle_usd = idle_s * self._rate
        busy_usd = self.records.tally.compute_usd + self._orphan_usd
        return self.records.tally.summary(pattern=self.pattern, profile=self.profile.name,
                         fixed_cost_usd=idle_usd + self._orphan_usd, busy_cost_usd=busy_usd,
                         idle_cost_usd=idle_usd, peak_replicas=self.peak_replicas,
                         replica_seconds=idle_s + self.busy_s, replica_timeline=self.timeline_snapshot())

    # ---- the autoscaler on the clock -------------------------------------------------------------------

    async def _autoscale_loop(self) -> None:
        period = self.autoscaler.policy.sync_period_s
        for k in itertools.count(1):
            # Syncs fall on whole periods of platform time since the start, so waits do not drift.
            await self.clock.sleep(k * period - self.elapsed())
            self._sync(k * period)

    def _sync(self, t: float) -> None:
        live = self.live()
        metric = self.profile.autoscale_metric
        active = self._arrivals > 0 or any(r.outstanding for r in live) or bool(self.waiting())
        self._arrivals = 0
        if metric == "concurrency" and self.autoscaler.policy.window_s > 0:
            # Cloud Run: the deployment's requests in flight or waiting, averaged over the window (R11).
            total = sum(r.outstanding for r in live if r.state == "ready") + self.waiting()
            cpu = self.cpu_rate() if self.autoscaler.policy.cpu_target is not None else None
            d = self.autoscaler.decide(t, len(live), total=float(total), cpu=cpu, active=active)
        elif metric == "p95_latency":
            while self._latencies and self._latencies[0][0] <= t - self.autoscaler.policy.sync_period_s:
                self._latencies.popleft()
            lat = [ms for _, ms in self._latencies]
            ready = sum(1 for r in live if r.state == "ready")
            d = self.autoscaler.decide(t, len(live), value=percentile(lat, 95) if lat else None, ready=ready,
                                       active=active)
        else:
            def value(r: Replica) -> float | None:
                if r.state != "ready":
                    return None  # starting or restarting: no metric yet (HPA's "missing pods")
                return float(r.outstanding if metric == "concurrency" else len(r.queue))
            d = self.autoscaler.decide(t, len(live), [value(r) for r in live], extra=float(self.waiting()),
                                       active=active)
        # The point shows what the autoscaler saw (replicas = its "current") and what it decided.
        if not self.restarting:
            self.desired = d.desired
        self.point("sync", metric=d.metric, raw=d.raw)
        if not self.restarting:
            self.scale_to(d.desired)

    # ---- calls -----------------------------------------------------------------------------------------

    def activate(self) -> None:
        """A request at zero replicas: start one now (KEDA activation / Knative activator)."""
        self.desired = 1
        self.add_replica()
        self.autoscaler.note_change(self.elapsed(), 1)
        self.point("activate")

    async def restart(self) -> None:
        """Rolling restart: replace every replica, one at a time, with no failed request."""
        await super().restart()

    # ---- the pending queue (front_door = "pending_queue") ----------------------------------------------

    def waiting(self) -> int:
        """Requests waiting for a replica: for one to become ready, or in the front door's queue."""
        return len(self.pending) + (len(self.front) if self.front is not None else 0)

    def replica_ready(self, r: Replica, startup_s: float) -> None:
        """A replica became ready: its start joins the average, and its slots go to the waiting requests."""
        if self.front is not None:
            self.front.note_startup(startup_s)
            r.hand_over = self.front.hand_over
            self.front.offer(r)

    def _on_demand(self) -> None:
        """Start replicas at once for the requests waiting beyond what the starting ones will take: Cloud Run's
        on-demand mechanism (R11), beside the metrics-based one; a request can itself start a scale-out (R12)."""
        assert self.front is not None
        p = self.profile
        live = self.live()
        starting = sum(1 for r in live if r.state in ("starting", "backoff"))
        n = min(math.ceil(len(self.front) / p.replica_concurrency) - starting, p.max_replicas - len(live))
        if n <= 0:
            return
        for _ in range(n):
            self.add_replica()
        self.desired = len(live) + n
        self.autoscaler.note_demand(self.elapsed(), len(live), self.desired)
        self.point("activate" if not live else "demand")

    async def _admit_pending(self, session_id: str | None, t0_p: float, limit_s: float
                             ) -> tuple[Replica, int, bool] | str:
        """A slot on a replica now, or after waiting in the pending queue; or why not: throttled, timeout, closed."""
        assert self.front is not None
        p = self.profile
        waited = False
        while True:
            if self.closing:
                return "closed"
            got: tuple[Replica, int] | None = None
            if not len(self.front):  # nobody ahead: a replica with a free slot takes it now
                replica = self.lb.pick(self.replicas, session_id, p.replica_concurrency, 0)
                if replica is not None:
                    got = replica, replica.take_slot()
            if got is None:
                fut = self.front.join()
                self._on_demand()
                waited = True
                got, why = await self.front.pend(fut, t0_p, limit_s, closing=lambda: self.closing,
                                                 starting=self._starting)
                if got is None:
                    return "closed" if self.closing else why
            replica, gen = got
            if replica.inst is None or not replica.inst.alive:
                replica.release(gen)
                continue  # it died before the request reached it: wait again
            return replica, gen, waited

    def _starting(self) -> bool:
        return any(r.state == "starting" for r in self.replicas)

    def _throttled_reason(self) -> str:
        p = self.profile
        if self.front is not None:
            return self.front.reason(len(self.live()), p.max_replicas)
        return (f"every ready replica is full ({p.replica_concurrency} running and {p.replica_queue_limit} "
                f"queued each; HTTP 429)")

    def _ingress_timeout(self) -> float:
        p = self.profile
        return min(p.timeout_s, p.gateway_timeout_s) if p.gateway_timeout_s else p.timeout_s

    async def invoke(self, task: Any, session_id: str | None = None, *,
                     on_event: OnEvent | None = None) -> Record:
        """Route one request to a replica and run it; never raises for platform failures."""
        t0, t0_p = time.monotonic(), self.clock.now()
        started_at = time.time()
        p = self.profile
        try:
            body = task_json(task)
        except (TypeError, ValueError) as exc:
            return self._rejected("agent_error", f"the task is not JSON-serializable ({exc}); pass a dict of JSON "
                                  f"values", session_id, started_at, t0, t0_p)
        if p.request_limit_bytes is not None and len(body) > p.request_limit_bytes:
            return self._rejected("payload_too_large", f"request of {len(body)} bytes exceeds the "
                                  f"{p.request_limit_bytes}-byte limit of {p.name}", session_id, started_at, t0, t0_p)
        if self.apps is not None:  # an ASGI app served by its replicas: the task is a POST to app_path
            return await self.apps.post_task(body, session_id, started_at, t0, t0_p)
        routed = await self._route(session_id, started_at, t0, t0_p)
        if isinstance(routed, Record):
            return routed
        replica, gen, wait_ms, cold, remaining, limit_s, waited_wall = routed
        return await self._call(replica, gen, body, session_id, on_event, remaining, t0, waited_wall,
                                started_at, wait_ms, cold, limit_s)

    def _rejected(self, outcome: str, error: str, session_id: str | None, started_at: float, t0: float,
                  t0_p: float) -> Record:
        record = rejected_record(pattern=self.pattern, profile=self.profile, outcome=outcome, error=error,
                                 started_at=started_at, session_id=session_id, wall_s=time.monotonic() - t0)
        if self.front is not None and outcome == "throttled":  # the caller waited in the pending queue
            record = amended(record, latency_ms=(self.clock.now() - t0_p) * 1000.0)
        return self._add(record)

    async def _route(self, session_id: str | None, started_at: float, t0: float, t0_p: float
                     ) -> Record | tuple[Replica, int, float, bool, float, float, float]:
        """A slot on a replica for one request (the record of its refusal if none): the replica, the slot's
        generation, the platform ms it waited, whether it waited for a cold start, the platform seconds left
        to the ingress limit, that limit, and the wall seconds it waited."""
        self._arrivals += 1
        limit_s = self._ingress_timeout()
        if self.front is not None:
            admitted = await self._admit_pending(session_id, t0_p, limit_s)
        else:
            admitted = await self._admit(session_id, t0_p, limit_s)
        if isinstance(admitted, str):
            if admitted == "throttled":
                return self._rejected("throttled", self._throttled_reason(), session_id, started_at, t0, t0_p)
            if admitted == "closed":
                return self._rejected("crash", "the deployment closed before the request reached a replica",
                                      session_id, started_at, t0, t0_p)
            return self._timeout_record(session_id, started_at, limit_s, "while waiting for a replica")
        replica, gen, waited = admitted
        waited_wall = time.monotonic() - t0
        cold = replica.ready_at > t0_p and replica.info is not None
        if self.clock.virtual:
            # The timeline knows how long a cold start or a queue took; routed at once, the wait is only the
            # harness's own routing, which on the virtual clock is not the platform's (see finish_record).
            wait_ms = (self.clock.now() - t0_p) * 1000.0 if waited or cold else 0.0
        elif cold and replica.info is not None:
            # It waited for this replica's cold start. Before the start began it waited on emulated time (a
            # crash back-off); the start is the platform init time plus the harness's own (real) share, as
            # serverless counts it; after it only real routing time.
            before = max(0.0, replica.boot_wall - t0)
            real = max(0.0, waited_wall - before - replica.info.wall_ms / 1000.0)
            wait_ms = self.clock.to_platform(before) * 1000.0 + replica.info.init_ms + real * 1000.0
        elif waited:  # queued behind other requests: emulated time passed
            wait_ms = self.clock.to_platform(waited_wall) * 1000.0
        else:  # routed at once: only the harness's own (real) time
            wait_ms = waited_wall * 1000.0
        remaining = limit_s - wait_ms / 1000.0
        if remaining <= 0:
            replica.release(gen)
            return self._timeout_record(session_id, started_at, limit_s, "while queued")
        if self.front is not None and wait_ms / 1000.0 > self.front.limit_s() + 1e-9:
            replica.release(gen)  # on a scaled clock, judged now: it waited past the pending limit
            return self._rejected("throttled", self._throttled_reason(), session_id, started_at, t0, t0_p)
        return replica, gen, wait_ms, cold, remaining, limit_s, waited_wall

    async def _admit(self, session_id: str | None, t0_p: float, limit_s: float
                     ) -> tuple[Replica, int, bool] | str:
        """A replica, a slot on it and whether the request had to wait; or why not: throttled, timeout, closed."""
        p = self.profile
        deadline = t0_p + limit_s  # platform time
        waited = False
        while True:
            if self.closing:
                return "closed"
            replica = self.lb.pick(self.replicas, session_id, p.replica_concurrency, p.replica_queue_limit)
            if replica is None:
                if any(r.state == "ready" for r in self.replicas):
                    return "throttled"
                if len(self.pending) >= p.replica_queue_limit * max(1, len(self.live())):
                    return "throttled"
                if not self.live():
                    self.activate()
                waited = True
                if not await self.wait_for_ready(deadline):
                    return "timeout"
                continue
            waited = waited or not replica.has_free_slot(p.replica_concurrency)
            got = await replica.acquire(p.replica_concurrency, max(0.0, deadline - self.clock.now()), self.clock)
            if got is None:
                return "timeout"
            if got == BOUNCED or replica.inst is None or not replica.inst.alive:
                if got != BOUNCED:
                    replica.release(got)
                continue  # it died while the request waited in its queue: back to the balancer
            return replica, got, waited

    async def _call(self, replica: Replica, gen: int, body: bytes, session_id: str | None,
                    on_event: OnEvent | None, remaining: float, t0: float, waited_wall: float,
                    started_at: float, wait_ms: float, cold: bool, limit_s: float) -> Record:
        inst, meter = replica.inst, replica.meter
        assert inst is not None and meter is not None
        inv_id, trace_id = new_ids()
        gave_up: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_limit() -> None:
            if not gave_up.done():
                gave_up.set_result(None)

        async def run() -> tuple[dict[str, Any], list[Any], float]:
            msg: dict[str, Any] = {"session_id": session_id}
            if session_id is not None:
                msg["state"] = self.state.get_state(session_id)
            meter.begin(inv_id, self.clock.now())
            try:
                result, events = await inst.call(inv_id, msg, body, remaining, on_event, on_limit=on_limit)
            finally:
                share = meter.end(inv_id, self.clock.now())
                replica.release(gen)
            if session_id is not None and "state" in result and result.get("outcome") == "ok":
                self.state.put_state(session_id, result["state"])
            return result, events, share

        work = asyncio.create_task(run(), name=f"call-{inv_id}")
        # The call's end or the ingress limit, whichever comes first (a done-callback on the same future
        # on_limit sets, not asyncio.wait: that builds a waiter, callbacks and sets on every request).
        work.add_done_callback(lambda _: on_limit())
        await gave_up
        if not work.done():
            work.add_done_callback(self._bill_orphan)
            return self._timeout_record(session_id, started_at, limit_s, "while the replica was working")
        result, events, share = work.result()
        record = finish_record(
            pattern=self.pattern, profile=self.profile, result=result, events=events, invocation_id=inv_id,
            trace_id=trace_id, instance_id=inst.id, session_id=session_id, started_at=started_at,
            wall_s=time.monotonic() - t0 - waited_wall, cold=False, init_ms=0.0, init_wall_ms=0.0, billable=False,
            count_overhead=not self.clock.virtual)
        busy_s = record.duration_ms / 1000.0 * share
        self.busy_s += busy_s
        info = replica.info
        record = amended(
            record, latency_ms=record.latency_ms + wait_ms, cold_start=cold,
            init_ms=info.init_ms if cold and info is not None else 0.0,
            wall_ms=(time.monotonic() - t0) * 1000.0, billed_ms=busy_s * 1000.0,
            cost=Cost(compute_usd=busy_s * self._rate,
                      requests_usd=self.profile.price_per_million_requests_usd / 1e6, llm_usd=record.cost.llm_usd))
        self._note_latency(record.latency_ms)
        return self._add(record)

    def _note_latency(self, ms: float) -> None:
        # Kept only for the p95 metric, whose sync prunes it; with any other metric nothing would (it grew by
        # one entry a call for the life of the deployment: ~13 MB per 100,000 calls of harness serve).
        if self.profile.autoscale_metric == "p95_latency":
            self._latencies.append((self.elapsed(), ms))

    def _bill_orphan(self, work: asyncio.Task[tuple[dict[str, Any], list[Any], float]]) -> None:
        """A call the ingress gave up on finished: its replica time is busy cost on no record."""
        if work.cancelled() or work.exception() is not None:
            return
        result, _, share = work.result()
        busy_s = float(result.get("duration_ms", 0.0)) / 1000.0 * share
        self.busy_s += busy_s
        self._orphan_usd += busy_s * self._rate

    def _timeout_record(self, session_id: str | None, started_at: float, limit_s: float, where: str) -> Record:
        inv, trace = new_ids()
        self._note_latency(limit_s * 1000.0)
        return self._add(Record(
            ok=False, outcome="gateway_timeout", latency_ms=limit_s * 1000.0, invocation_id=inv, trace_id=trace,
            error=f"upstream request timeout: no response within {limit_s:g} s {where} (HTTP 504)",
            pattern=self.pattern, profile=self.profile.name, session_id=session_id, started_at=started_at,
            ended_at=time.time(), wall_ms=(time.time() - started_at) * 1000.0))

    def _add(self, record: Record) -> Record:
        self.records.append(record)
        return traced(self.pool, record)

