"""The records of the daemon pattern: one per task, built from its attempts, and one per duplicate delivery.

A task's record is its last attempt's, relabelled with the task's final outcome (``ok`` or
``dead_lettered``) and id, with latency from submit to the end on the clock (queue wait and back-off
included) and the duration, billed time, CPU, events, LLM calls, tokens and cost of every attempt added
up, so the cost of retries shows where the task is; its own queue requests are added to its request cost.
Worker-hours are the deployment's fixed cost; compute is on the record only where the profile prices
invocations (a Lambda consumer).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from typing import Any

from .records import Cost, Record

__all__ = ["duplicate_record", "remote_record", "task_record"]


def task_record(last: Record, tries: list[Record], *, task_id: str, outcome: str, attempts: int,
                errors: list[str], latency_s: float, submitted_at: float | None = None,
                queue_usd: float = 0.0) -> Record:
    """The record of a task that ended with ``last`` after ``tries`` (``last`` included).

    ``submitted_at`` (wall clock, UNIX s) is when the task was submitted: the record's ``started_at``;
    ``queue_usd`` is the price of the queue requests that were the task's own (its send, its deletes).
    """
    return replace(
        last, outcome=outcome, started_at=last.started_at if submitted_at is None else submitted_at,
        ok=outcome == "ok", trigger="invoke", attempts=attempts,
        error=None if outcome == "ok" else "; ".join(errors),
        output=last.output if outcome == "ok" else None, invocation_id=task_id,
        latency_ms=max(0.0, latency_s) * 1000.0,
        duration_ms=sum(r.duration_ms for r in tries), billed_ms=sum(r.billed_ms for r in tries),
        cpu_ms=sum(r.cpu_ms for r in tries), cold_start=any(r.cold_start for r in tries),
        init_ms=sum(r.init_ms for r in tries),
        events=tuple(e for r in tries for e in r.events),
        llm_calls=sum(r.llm_calls for r in tries), llm_errors=sum(r.llm_errors for r in tries),
        input_tokens=sum(r.input_tokens for r in tries), output_tokens=sum(r.output_tokens for r in tries),
        embedding_tokens=sum(r.embedding_tokens for r in tries), memory_ops=sum(r.memory_ops for r in tries),
        llm_ms=sum(r.llm_ms for r in tries), llm_backoff_ms=sum(r.llm_backoff_ms for r in tries),
        cost=Cost(compute_usd=sum(r.cost.compute_usd for r in tries),
                  requests_usd=sum(r.cost.requests_usd for r in tries) + queue_usd,
                  llm_usd=sum(r.cost.llm_usd for r in tries)),
        peak_memory_mb=max(r.peak_memory_mb for r in tries))


def duplicate_record(task_id: str, known: dict[str, Any], receive_count: int, *, pattern: str,
                     profile: str) -> Record:
    """A delivery of a task whose record was already final: acked, not run again."""
    done = known.get("status") == "succeeded"
    now = time.time()
    return Record(ok=done, outcome="ok" if done else "dead_lettered", output=known.get("result"),
                  invocation_id=task_id, trace_id=uuid.uuid4().hex, pattern=pattern, profile=profile,
                  trigger="duplicate", attempts=receive_count, started_at=now, ended_at=now,
                  error=f"duplicate delivery of task {task_id}, already {known.get('status')}; not run again")


def remote_record(task_id: str, stored: dict[str, Any], *, pattern: str, profile: str, session_id: str | None,
                  latency_s: float) -> Record:
    """A task another process's worker finished, as its final record in the shared state store tells it."""
    ok = stored.get("status") == "succeeded"
    now = time.time()
    return Record(ok=ok, outcome="ok" if ok else "dead_lettered", output=stored.get("result") if ok else None,
                  error=None if ok else "; ".join(stored.get("errors", [])), invocation_id=task_id,
                  trace_id=uuid.uuid4().hex, pattern=pattern, profile=profile, session_id=session_id,
                  attempts=int(stored.get("attempts", 0)), latency_ms=max(0.0, latency_s) * 1000.0,
                  duration_ms=float(stored.get("duration_ms", 0.0)),
                  input_tokens=int(stored.get("input_tokens", 0)), output_tokens=int(stored.get("output_tokens", 0)),
                  cost=Cost(llm_usd=float(stored.get("llm_usd", 0.0))),
                  started_at=now, ended_at=now, trigger="invoke", instance_id=stored.get("worker"))
