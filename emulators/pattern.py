"""The seam between the facade and the four patterns, and the record-building they share.

``Emulator`` is the small Protocol a pattern implements (the httpx-transport-style seam: the facade and
the gateway talk only to it, and tests can put a fake behind it). ``finish_record`` turns what an
instance reported into one priced ``Record``: the single place latency and billed duration are derived.
It keeps what the call left for its trace (``tracing.keep``), and ``traced`` (every pattern's ``_add``)
hands each final record to the deployment's tracer: the one hook through which traces are made.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from .billing import billed_ms, invocation_cost, llm_cost
from .pool import Pool
from .profiles import Profile
from .records import Cost, Record, Summary, new_record
from .store import RecordLog
from .tracing import current_gateway, keep, take

__all__ = ["Emulator", "Gate", "Gated", "OnEvent", "finish_record", "llm_fields", "new_ids", "rejected_record",
           "task_json", "traced"]

OnEvent = Callable[[Any], None]


class Emulator(Protocol):
    """One deployment pattern running one agent."""

    pattern: str
    profile: Profile
    pool: Pool
    records: RecordLog

    async def start(self) -> None: ...
    async def invoke(self, task: Any, session_id: str | None = None, *,
                     on_event: OnEvent | None = None) -> Record: ...
    def summary(self) -> Summary: ...
    async def close(self) -> None: ...


Gate = tuple[float, Callable[[], None]]  # an API gateway's timeout in platform seconds, and what it does then


@runtime_checkable
class Gated(Protocol):
    """A pattern that measures an API gateway's timeout in platform time itself (see ``Serverless``)."""

    async def invoke_gated(self, task: Any, session_id: str | None, gateway_s: float,
                           on_timeout: Callable[[], None], *, body: bytes | None = None) -> Record: ...


# Ids need to be unique, not secret: a generator of our own, seeded from the OS (and again in a forked child,
# so two processes never share a sequence; a user's random.seed() does not touch it). os.urandom was a
# system call on every call's path: 5-7 us under load on these machines, against well under 1 us for this.
_IDS = random.Random()
os.register_at_fork(after_in_child=_IDS.seed)


def new_ids() -> tuple[str, str]:
    """A fresh (invocation_id, trace_id) pair: a UUID4 string and 32 random hex digits."""
    # One draw for both, and the UUID4 text built directly (two uuid4() were two UUID objects per call).
    h = f"{_IDS.getrandbits(256):064x}"
    variant = "89ab"[int(h[16], 16) & 3]  # RFC 4122: version nibble 4, variant bits 10
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:32]}", h[32:]


def task_json(task: Any, body: bytes | None = None) -> bytes:
    """The task as compact JSON bytes (``body`` when the caller has it: a gateway's request body, read as JSON).

    Raises TypeError or ValueError (``NaN`` too) for a task that is not JSON, as ``json.dumps`` does.
    """
    if body is not None:
        return body
    return json.dumps(task, separators=(",", ":"), allow_nan=False).encode()


def traced(pool: Pool, record: Record) -> Record:
    """Hand a final record to the deployment's tracer, if it has one (its spans are built later, in a batch)."""
    material = take(record.trace_id)
    if pool.tracer is not None:
        if record.pattern != "daemon" and any(r is not record for r, _, _ in material):
            # Only a daemon task's spans read the attempts' records; elsewhere the call's own record (before
            # a pattern amended it: a container's wait and bill, edge's region) would be kept and pickled
            # beside the final one, 2-3 us a record on every call.
            material = [(record, llm, call) for _, llm, call in material]
        pool.tracer.add(record, material, current_gateway())
    return record


def rejected_record(*, pattern: str, profile: Profile, outcome: str, error: str, started_at: float,
                    session_id: str | None, wall_s: float) -> Record:
    """A call the platform refused before running anything (throttled, payload too large): not billed."""
    inv, trace = new_ids()
    return Record(
        ok=False, outcome=outcome, error=error, latency_ms=wall_s * 1000.0, invocation_id=inv, trace_id=trace,
        pattern=pattern, profile=profile.name, session_id=session_id, started_at=started_at,
        ended_at=time.time(), wall_ms=wall_s * 1000.0, attempts=0,
    )


def llm_fields(calls: list[Any], platform_s: float) -> dict[str, Any]:
    """A call's LLM figures for its Record (calls, errors, tokens, waiting, backoff), with ``llm_usd`` if it made any.

    Only answered requests count tokens and cost; every request counts as a call and its retry-after as
    backoff. ``platform_s`` is the platform time the call spent waiting on the model (a request cut short by
    a limit waited without an answer: no call, but time).
    """
    if not calls:
        return {"llm_ms": platform_s * 1000.0} if platform_s else {}
    ok = [c for c in calls if c.status == 200]
    return {"llm_calls": len(calls), "llm_errors": len(calls) - len(ok),
            "input_tokens": sum(c.input_tokens for c in ok),
            "embedding_tokens": sum(c.input_tokens for c in ok if c.api == "embeddings"),
            "output_tokens": sum(c.output_tokens for c in ok), "llm_ms": platform_s * 1000.0,
            "llm_backoff_ms": sum(c.retry_after_s or 0.0 for c in calls) * 1000.0,
            "llm_usd": sum(llm_cost(c.model, c.input_tokens, c.output_tokens) for c in ok)}


def finish_record(*, pattern: str, profile: Profile, result: dict[str, Any], events: list[Any],
                  invocation_id: str, trace_id: str, instance_id: str | None, session_id: str | None,
                  started_at: float, wall_s: float, cold: bool, init_ms: float, init_wall_ms: float,
                  trigger: str = "invoke", billable: bool = True, attempts: int = 1,
                  count_overhead: bool = True) -> Record:
    """Price and record one executed invocation.

    Latency is platform time as the caller sees it: the harness's own real overhead (the wall time not
    spent inside the instance's init or invocation; on a scaled clock, ``count_overhead``) + the platform
    init time on a cold start + the invocation's platform duration. On the virtual clock the harness's
    routing is left out: it is the emulator's, not the platform's, and leaving it out is what makes a
    wait-only agent's figures the same on any host.
    """
    duration_ms = float(result.get("duration_ms", 0.0))
    call_wall_ms = float(result.get("wall_ms", 0.0))
    overhead_ms = max(0.0, wall_s * 1000.0 - call_wall_ms - (init_wall_ms if cold else 0.0)) if count_overhead \
        else 0.0
    latency_ms = overhead_ms + (init_ms if cold else 0.0) + duration_ms
    billed = 0.0
    cost = Cost()
    if billable:
        phase_ms = duration_ms + (init_ms if cold and profile.bill_init else 0.0)
        billed = billed_ms(phase_ms, profile)
        cost = invocation_cost(billed, float(result.get("cpu_ms", 0.0)), profile)
    llm = llm_fields(result.get("llm") or [], float(result.get("llm_platform_s", 0.0)))
    if "llm_usd" in llm:
        cost = Cost(compute_usd=cost.compute_usd, requests_usd=cost.requests_usd, llm_usd=llm.pop("llm_usd"))
    outcome = str(result.get("outcome", "crash"))
    record = new_record(
        ok=outcome == "ok",
        outcome=outcome,
        output=result.get("output"),
        error=result.get("error"),
        latency_ms=latency_ms,
        cold_start=cold,
        init_ms=init_ms if cold else 0.0,
        instance_id=instance_id,
        cpu_ms=float(result.get("cpu_ms", 0.0)),
        peak_memory_mb=float(result.get("peak_memory_mb", 0.0)),
        cost=cost,
        invocation_id=invocation_id,
        trace_id=trace_id,
        pattern=pattern,
        profile=profile.name,
        session_id=session_id,
        trigger=trigger,
        attempts=attempts,
        started_at=started_at,
        ended_at=time.time(),
        duration_ms=duration_ms,
        billed_ms=billed,
        wall_ms=wall_s * 1000.0,
        events=tuple(events),
        memory_ops=int(result.get("memory_ops", 0)),
        **llm,
    )
    keep(record, result)
    return record
