"""The container's calls to an ASGI app served by its replicas: routed like any request, forwarded as HTTP.

A request takes a slot on a replica through the container's own admission (its load balancer or Cloud
Run's pending queue, the replica's concurrency and queue, 429 when full, the ingress limit while waiting),
is relayed to the replica's uvicorn by ``forward.py``, and ends as one ``Record`` like any call: outcome,
latency as the caller saw it (queueing and a cold start included), the replica's instance, its cold start
and its share of the replica's cost. ``d.invoke(task)`` is the same path with the task POSTed as JSON to
``app_path`` and the app's JSON answer as the output (a non-2xx answer is the app's error).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.types import Receive, Send

from .forward import Exchange, Forwarder, HttpRequest, Sink, end
from .pattern import llm_fields, new_ids
from .records import Cost, Record, amended
from .wsforward import relay_websocket

if TYPE_CHECKING:
    from .container import Container
    from .replica import Replica
    from .runtime.instance import Instance

__all__ = ["AppCalls"]

Routed = tuple["Replica", int, float, bool, float, float, float]  # see Container._route


async def _discard(message: dict[str, Any]) -> None:
    """A sink for a task's POST: the caller gets the Record, not the HTTP response."""


class AppCalls:
    """HTTP requests and tasks of one container deployment whose agent is an ASGI app."""

    def __init__(self, container: Container, app_path: str) -> None:
        self.c = container
        self.forwarder = Forwarder(container.clock)
        self.app_path = app_path

    async def forward(self, req: HttpRequest, send: Sink, *, session_id: str | None,
                      disconnected: Callable[[], bool] | None = None) -> tuple[Record, bool]:
        """Route ``req`` to a replica and relay the answer to ``send``; the record and whether a response began
        (if not, the caller answers the failure: 429, 504, 502)."""
        c = self.c
        t0, t0_p, started_at = time.monotonic(), c.clock.now(), time.time()
        routed = await c._route(session_id, started_at, t0, t0_p)
        if isinstance(routed, Record):
            return routed, False
        record, ex = await self._exchange(routed, req, send, session_id, started_at, t0, keep_body=False,
                                          disconnected=disconnected)
        if ex.lingering is None:
            record = c._add(record)  # before the response ends: a caller that saw the end finds its record
        await end(send, ex)
        return record, ex.started

    async def post_task(self, body: bytes, session_id: str | None, started_at: float, t0: float,
                        t0_p: float) -> Record:
        """``d.invoke(task)``: the task POSTed as JSON to ``app_path``; the app's JSON answer is the output."""
        c = self.c
        routed = await c._route(session_id, started_at, t0, t0_p)
        if isinstance(routed, Record):
            return routed
        headers = [(b"host", b"replica"), (b"content-type", b"application/json"), (b"accept", b"application/json")]
        req = HttpRequest("POST", self.app_path.encode(), headers, body)
        record, ex = await self._exchange(routed, req, _discard, session_id, started_at, t0, keep_body=True)
        if ex.lingering is not None:
            return record  # the ingress's 504, already recorded
        if record.outcome != "ok":
            return c._add(record)
        status, text = ex.status or 0, ex.body.decode("utf-8", errors="replace")
        if not 200 <= status < 300:
            changed = amended(record, ok=False, outcome="agent_error", error=f"the app answered HTTP {status}: "
                              f"{text[:500]}")
        else:
            try:
                output: Any = json.loads(ex.body) if ex.body else None
            except ValueError:
                output = text
            changed = amended(record, output=output)
        return c._add(changed)

    async def _exchange(self, routed: Routed, req: HttpRequest, send: Sink, session_id: str | None,
                        started_at: float, t0: float, *, keep_body: bool,
                        disconnected: Callable[[], bool] | None = None
                        ) -> tuple[Record, Exchange]:
        """Relay one routed request; its record (not yet added, unless the ingress gave up: ``lingering``)."""
        c = self.c
        replica, gen, wait_ms, cold, remaining, limit_s, _ = routed
        inst, meter = replica.inst, replica.meter
        assert inst is not None and meter is not None
        inv_id, trace_id = new_ids()
        begun_p, begun = c.clock.now(), time.monotonic()
        meter.begin(inv_id, begun_p)

        def marks() -> list[tuple[bytes, bytes]]:
            so_far = wait_ms + (time.monotonic() - begun) * 1000.0  # to the response start
            return [(b"x-harness-outcome", b"ok"), (b"x-harness-cold-start", b"true" if cold else b"false"),
                    (b"x-harness-instance", inst.id.encode()), (b"x-harness-latency-ms", f"{so_far:.3f}".encode())]

        def done() -> float:
            share = meter.end(inv_id, c.clock.now())
            replica.release(gen)
            return share

        ex: Exchange | None = None
        inst.open_request(inv_id)
        try:
            ex = await self.forwarder.exchange(inst, req, send, first_s=remaining, idle_s=limit_s, marks=marks,
                                               keep_body=keep_body,
                                               disconnected=disconnected or (lambda: False))
        finally:
            calls, llm_platform_s, llm_wall_s = inst.close_request(inv_id)
            if ex is None or ex.lingering is None:
                share = done()
        if ex.lingering is not None:
            # The caller got its 504; the app's work runs on and keeps its slot, billed on no record.
            def orphan(_: object) -> None:
                busy_s = (c.clock.now() - begun_p) * done()
                c.busy_s += busy_s
                c._orphan_usd += busy_s * c._rate

            ex.lingering.add_done_callback(orphan)
            return c._timeout_record(session_id, started_at, limit_s, "while the replica was working"), ex
        # The app's LLM waits took scaled wall time (the endpoint sleeps them at time_scale): they stand for
        # their platform length, as a handler's do (Instance.call).
        duration_ms = (ex.wall_s + llm_platform_s - llm_wall_s) * 1000.0
        llm = llm_fields(calls, llm_platform_s)
        record = self._record(replica, inst, (inv_id, trace_id), ex.outcome, ex.error, cold, wait_ms, duration_ms,
                              share, session_id, started_at, t0, llm_usd=llm.pop("llm_usd", 0.0),
                              memory_cap_mb=c.profile.memory_mb if ex.outcome == "oom" else None, **llm)
        c._note_latency(record.latency_ms)
        return record, ex

    def _record(self, replica: Replica, inst: Instance, ids: tuple[str, str], outcome: str, error: str | None,
                cold: bool, wait_ms: float, duration_ms: float, share: float, session_id: str | None,
                started_at: float, t0: float, *, llm_usd: float = 0.0, **extra: Any) -> Record:
        """One forwarded request's or WebSocket's Record: its share of the replica's busy time, billed."""
        c = self.c
        busy_s = duration_ms / 1000.0 * share
        c.busy_s += busy_s
        info = replica.info
        return Record(
            ok=outcome == "ok", outcome=outcome, error=error, latency_ms=wait_ms + duration_ms, cold_start=cold,
            init_ms=info.init_ms if cold and info is not None else 0.0, instance_id=inst.id, invocation_id=ids[0],
            trace_id=ids[1], pattern=c.pattern, profile=c.profile.name, session_id=session_id,
            started_at=started_at, ended_at=time.time(), duration_ms=duration_ms, billed_ms=busy_s * 1000.0,
            wall_ms=(time.monotonic() - t0) * 1000.0,
            cost=Cost(compute_usd=busy_s * c._rate, requests_usd=c.profile.price_per_million_requests_usd / 1e6,
                      llm_usd=llm_usd), **extra)

    async def websocket(self, scope: dict[str, Any], receive: Receive, send: Send, *,
                        session_id: str | None) -> Record:
        """Route a WebSocket to a replica (one slot for its life) and relay it (``wsforward.py``); its record."""
        c = self.c
        t0, t0_p, started_at = time.monotonic(), c.clock.now(), time.time()
        routed = await c._route(session_id, started_at, t0, t0_p)
        if isinstance(routed, Record):
            await send({"type": "websocket.close", "code": 1013})  # try again later: refused before the handshake
            return routed
        replica, gen, wait_ms, cold, _, _, _ = routed
        inst, meter = replica.inst, replica.meter
        assert inst is not None and meter is not None
        inv_id, trace_id = new_ids()
        meter.begin(inv_id, c.clock.now())
        begun = time.monotonic()
        unwatch = None if inst.cap.kernel_enforced else self.forwarder.watch_memory(inst)
        try:
            with c.clock.busy():  # a live connection is real I/O: no jump over it on the virtual clock
                outcome, error = await relay_websocket(inst, scope, receive, send)
        finally:
            if unwatch is not None:
                unwatch()
            share = meter.end(inv_id, c.clock.now())
            replica.release(gen)
        duration_ms = (time.monotonic() - begun) * 1000.0
        return c._add(self._record(replica, inst, (inv_id, trace_id), outcome, error, cold, wait_ms, duration_ms,
                                   share, session_id, started_at, t0))

    async def aclose(self) -> None:
        """Close the connections to the replicas."""
        await self.forwarder.aclose()
