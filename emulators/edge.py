"""The edge pattern: small isolates near the caller, under CPU-time, memory, subrequest and size limits.

Policy over the shared pool (``pool.py``), with the geography of ``edge_geo.py``:
- isolates stay warm and are reused: a call takes an idle isolate in its region (the caller's, unless the
  profile pins ``region``), else cold-starts one; an isolate serves one call at a time here;
- ``cpu_limit_ms``: CPU time per request, measured on the isolate's process from outside (not wall time:
  a call waiting 20 s on the LLM uses little CPU); past it the isolate is killed (``cpu_limit``);
- ``memory_mb``: the isolate's memory cap (kernel cgroup or poller, as for serverless): ``oom``;
- ``subrequest_limit``: LLM calls (counted by the LLM endpoint as they arrive; the one over the budget is
  refused) + ``ctx.http`` requests (counted in the instance; the one over is refused there) per request;
  over it the call is ``subrequest_limit``;
- ``startup_cpu_ms``: CPU the global scope (the agent's import) may use; over it the cold start is an
  ``init_error`` with the figure (a runaway import is stopped at ``_STARTUP_BACKSTOP`` times the budget);
- ``code_size_limit_bytes``: the agent's module plus the project modules it imports, measured statically
  (gzip size where ``code_size_compressed``); over it every call is an ``init_error`` with the size;
- ``gateway_timeout_s`` shorter than ``timeout_s`` (Vercel: the response must begin within 25 s): the call
  is ``gateway_timeout`` when it passes, and the isolate is stopped;
- records keep the headroom (CPU ms used/allowed, memory peak/cap, subrequests used/allowed), the regions
  and the round trips; cost is per request + per CPU ms, as the profile prices them.

The platform's HTTP client (``ctx.http``) is loaded before the cold start, as an isolate's ``fetch`` is
part of the runtime; the ``openai`` SDK behind ``ctx.llm`` is not: an agent whose code uses ``ctx.llm``
sets it up in its global scope (the cold start), where its import (0.4-1.7 s of CPU) counts against
``startup_cpu_ms``, not against the first request's ``cpu_limit_ms``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from .clock import Clock
from .edge_geo import Geography
from .pattern import OnEvent, finish_record, new_ids, rejected_record, task_json, traced
from .pool import Pool
from .profiles import Profile
from .records import Record, Summary, amended
from .runtime.agent import CodeSize, code_size
from .runtime.instance import Instance, InstanceFailure
from .state import StateStore
from .store import open_log

__all__ = ["Edge", "EdgePool", "code_size_error"]

# A global scope still running at this many times its startup budget is stopped; until then it runs on so
# the error can say how far over budget it went.
_STARTUP_BACKSTOP = 4.0
_LLM_HINT = ("the openai SDK behind ctx.llm is set up in the global scope and its import takes 0.4-1.7 s of CPU: "
             "call the model with ctx.http on the edge")


class EdgePool(Pool):
    """The pool with the edge runtime's extras: a preloaded HTTP client and a startup-CPU backstop."""

    def _config(self, instance_id: str) -> dict[str, Any]:
        cfg = super()._config(instance_id)
        cfg["preload_http"] = True
        if self.profile.startup_cpu_ms is not None:
            cfg["init_cpu_limit_s"] = self.profile.startup_cpu_ms / 1000.0 * _STARTUP_BACKSTOP
        return cfg


def code_size_error(size: CodeSize, profile: Profile) -> str | None:
    """Why the agent's code is too large for ``profile``, or None when it fits (or no limit applies)."""
    limit = profile.code_size_limit_bytes
    if limit is None:
        return None
    measured = size.gzip_bytes if profile.code_size_compressed else size.raw_bytes
    if measured <= limit:
        return None
    kind = "gzipped " if profile.code_size_compressed else ""
    return (f"the agent's code is {measured:,} bytes {kind}({size.raw_bytes:,} raw, {size.gzip_bytes:,} gzipped, "
            f"{len(size.files)} files), over the {limit:,}-byte code size limit of {profile.name}; "
            f"largest files: {', '.join(_largest(size.files))}")


def _largest(files: tuple[str, ...], n: int = 3) -> list[str]:
    from pathlib import Path

    sized = sorted(((Path(f).stat().st_size, f) for f in files), reverse=True)[:n]
    return [f"{f} ({b:,} B)" for b, f in sized]


class Edge:
    """An edge deployment of one agent."""

    pattern = "edge"

    def __init__(self, pool: Pool, profile: Profile, clock: Clock, state: StateStore, geography: Geography) -> None:
        self.pool = pool
        self.profile = profile
        self.clock = clock
        self.state = state
        self.geo = geography
        pool.on_checkpoint = state.put_checkpoint
        self.records = open_log(pool.pattern, profile.name, pool.run_id, pool.records_dir)
        self.code: CodeSize | None = None
        self._region_of: dict[str, str] = {}  # instance id -> the region its isolate runs in

    # ---- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Measure the code, start the runtime, and route every LLM request through the budget and region."""
        self.code = code_size(self.pool.agent)  # static: nothing of the agent runs
        await self.pool.open()
        if self.pool.llm is not None:
            self.pool.llm.extra_latency = self._llm_request

    async def close(self) -> None:
        """Stop every isolate."""
        try:
            await self.pool.close()
        finally:
            self.state.close()

    def summary(self) -> Summary:
        """Counts, latency (also by caller region), headroom and cost of every call so far."""
        return self.records.tally.summary(pattern=self.pattern, profile=self.profile.name)

    # ---- calls -----------------------------------------------------------------------------------------

    async def invoke_gated(self, task: Any, session_id: str | None, gateway_s: float,
                           on_timeout: Callable[[], None], *, body: bytes | None = None) -> Record:
        """``invoke`` behind the gateway (``pattern.Gated``): the isolate's own limit already is the gateway's.

        An edge profile's ``gateway_timeout_s`` (the response must begin within it) is the call's limit in
        ``_call``, measured in platform time like every limit, and ends the call ``gateway_timeout``; the
        gateway's own timer on a scaled clock would count the isolate's real work at 1/time_scale.
        """
        return await self.invoke(task, session_id, body=body)

    async def invoke(self, task: Any, session_id: str | None = None, *, on_event: OnEvent | None = None,
                     caller_region: str | None = None, body: bytes | None = None) -> Record:
        """Run one call from ``caller_region`` (default: the profile's rotation); never raises for platform failures."""
        t0 = time.monotonic()
        started_at = time.time()
        p = self.profile
        caller = caller_region or self.geo.next_caller()
        if caller_region is not None:
            self.geo.table.check(caller_region, "caller_region")
        region = self.geo.instance_region(caller)
        try:
            body = task_json(task, body)  # ``body``: the task's JSON when the caller already has it
        except (TypeError, ValueError) as exc:
            return self._add(self.geo.apply(rejected_record(
                pattern=self.pattern, profile=p, outcome="agent_error", started_at=started_at,
                session_id=session_id, wall_s=time.monotonic() - t0,
                error=f"the task is not JSON-serializable ({exc}); pass a dict of JSON values"), caller, region, 0))
        if p.request_limit_bytes is not None and len(body) > p.request_limit_bytes:
            return self._add(self.geo.apply(rejected_record(
                pattern=self.pattern, profile=p, outcome="payload_too_large", started_at=started_at,
                session_id=session_id, wall_s=time.monotonic() - t0,
                error=f"request of {len(body)} bytes exceeds the {p.request_limit_bytes}-byte limit of {p.name}"),
                caller, region, 0))
        rec = await self._run(body, session_id, on_event, region, t0, started_at)
        return self._add(self.geo.apply(rec, caller, region, rec.subrequests))

    async def _run(self, body: bytes, session_id: str | None, on_event: OnEvent | None, region: str,
                   t0: float, started_at: float) -> Record:
        p = self.profile
        inv_id, trace_id = new_ids()
        record = functools.partial(finish_record, pattern=self.pattern, profile=p, invocation_id=inv_id,
                                   trace_id=trace_id, session_id=session_id, started_at=started_at,
                                   count_overhead=not self.clock.virtual)
        too_big = code_size_error(self.code, p) if self.code is not None else None
        if too_big is not None:
            return record(instance_id=None, wall_s=time.monotonic() - t0, cold=False, init_ms=0.0,
                                 init_wall_ms=0.0, events=[], result={"outcome": "init_error", "error": too_big},
                                 billable=False)
        inst = self._acquire(region)
        cold = inst is None
        init_ms = init_wall = 0.0
        if inst is None:
            inst, info = await self.pool.start_instance()
            if isinstance(info, InstanceFailure):
                error = info.error
                if p.startup_cpu_ms is not None and error.startswith("the global scope used over"):
                    error += f" (startup limit {p.startup_cpu_ms:,.0f} ms of {p.name})"
                    if self.pool.llm_client_at_init:
                        error += f"; {_LLM_HINT}"
                return record(instance_id=inst.id, wall_s=time.monotonic() - t0, cold=True,
                                     init_ms=info.platform_ms, init_wall_ms=info.wall_ms, events=[],
                                     result={"outcome": info.outcome, "error": error}, billable=False)
            init_ms, init_wall = info.init_ms, info.wall_ms
            if p.startup_cpu_ms is not None and info.cpu_ms > p.startup_cpu_ms:
                await self.pool.retire(inst)
                error = (f"startup exceeded its CPU budget: the global scope used {info.cpu_ms:,.0f} ms of CPU, over "
                         f"the {p.startup_cpu_ms:,.0f} ms startup limit of {p.name}; move work out of module level")
                if info.llm_cpu_ms > 0:
                    error += f" ({info.llm_cpu_ms:,.0f} ms of it set up ctx.llm; {_LLM_HINT})"
                return record(instance_id=inst.id, wall_s=time.monotonic() - t0, cold=True,
                                     init_ms=init_ms, init_wall_ms=init_wall, events=[],
                                     result={"outcome": "init_error", "error": error, "cpu_ms": info.cpu_ms},
                                     billable=False)
            self._region_of[inst.id] = region
        result, events = await self._call(inst, inv_id, body, session_id, on_event, region)
        if not inst.alive:
            self._region_of.pop(inst.id, None)
            await self.pool.discard_dead(inst)
        rec = record(result=result, events=events, instance_id=inst.id,
                            wall_s=time.monotonic() - t0, cold=cold, init_ms=init_ms, init_wall_ms=init_wall)
        return amended(
            rec, cpu_limit_ms=p.cpu_limit_ms, memory_cap_mb=p.memory_mb, subrequests=int(result.get("subrequests", 0)),
            subrequest_limit=p.subrequest_limit)

    async def _call(self, inst: Instance, inv_id: str, body: bytes, session_id: str | None,
                    on_event: OnEvent | None, region: str) -> tuple[dict[str, Any], list[Any]]:
        p = self.profile
        msg: dict[str, Any] = {"session_id": session_id, "subrequest_limit": p.subrequest_limit,
                               "subrequest_rtt_s": self.geo.llm_rtt_s(region)}
        if session_id is not None:
            msg["state"] = self.state.get_state(session_id)
        gateway = p.gateway_timeout_s is not None and p.gateway_timeout_s <= p.timeout_s
        limit_s = p.gateway_timeout_s if gateway and p.gateway_timeout_s is not None else p.timeout_s
        cpu_limit_s = p.cpu_limit_ms / 1000.0 if p.cpu_limit_ms is not None else None
        result, events = await inst.call(inv_id, msg, body, limit_s, on_event, cpu_limit_s=cpu_limit_s)
        if gateway and result.get("outcome") == "timeout":
            result.update(outcome="gateway_timeout", output=None, error=(
                f"no response began within {limit_s:g} s: {p.name} answers 504 (the response must begin within "
                f"{limit_s:g} s; stream a first byte early, or move long work off the request); the isolate was "
                f"stopped"))
        used = int(result.get("subrequests", 0))
        if p.subrequest_limit is not None and used > p.subrequest_limit and result.get("outcome") in ("ok",
                                                                                                       "agent_error"):
            result.update(outcome="subrequest_limit", output=None, error=(
                f"Too many subrequests: the request made {used}, over the limit of {p.subrequest_limit} per request "
                f"on {p.name} (LLM calls and ctx.http requests count)"))
        if session_id is not None and "state" in result and result.get("outcome") == "ok":
            self.state.put_state(session_id, result["state"])
        return result, events

    def _acquire(self, region: str) -> Instance | None:
        """An idle warm isolate in ``region``, the most recently used first."""
        best: Instance | None = None
        for inst in self.pool.instances:
            if inst.ready and inst.inflight == 0 and self._region_of.get(inst.id) == region and (
                    best is None or inst.last_used > best.last_used):
                best = inst
        # No await lies between choosing and Instance.call counting it in flight: two calls cannot share it.
        return best

    def _llm_request(self, caller: str | None, invocation_id: str | None) -> float:
        """An LLM request arrives: count it against its call's budget (refuse it past the budget); its round trip."""
        inst = next((i for i in self.pool.instances if i.id == caller), None) if caller else None
        if inst is None:
            return 0.0
        used = inst.count_subrequest(invocation_id)
        limit = self.profile.subrequest_limit
        if limit is not None and used > limit:
            from .llm.dialog import ApiError  # the LLM package pulls in starlette: only once it is running

            raise ApiError(400, f"Too many subrequests: this request may make {limit} ({self.profile.name}); "
                                f"this was number {used}", code="subrequest_limit")
        return self.geo.llm_rtt_s(self._region_of.get(inst.id))

    def _add(self, record: Record) -> Record:
        self.records.append(record)
        return traced(self.pool, record)
