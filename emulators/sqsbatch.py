"""SQS event batches, as Lambda's SQS event source delivers them to a handler, and its partial failures.

With ``event_source = "sqs"`` on the daemon pattern, a worker receives up to ``batch_size`` messages and
invokes the handler once with ``{"Records": [...]}``, one record per message, shaped as Lambda's SQS event
(``messageId``, ``receiptHandle``, ``body`` as a string, ``attributes.ApproximateReceiveCount``...). What
happens to each message then follows Lambda's rules:

- the invocation fails (an error, a timeout, a crash): every message of the batch goes back to the queue;
- it succeeds without ``report_batch_item_failures`` (``FunctionResponseTypes: ReportBatchItemFailures``):
  every message is deleted, whatever the handler returned;
- it succeeds with it: the messages named in ``{"batchItemFailures": [{"itemIdentifier": id}]}`` go back,
  the others are deleted; an answer naming an id not in the batch, or malformed, fails the whole batch.

One invocation serves the whole batch, and each message gets a task record, so the invocation's figures are
split between them (``batch_share``): each message carries an equal share of its billed time and of its
price (compute, requests, LLM), and what does not split (the cold start, LLM calls and tokens) stays whole on
the batch's first message; the records of a batch add up to the invocation once, not once per message.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

from .queues import Message
from .records import Cost, Record
from .runtime.httpevents import sqs_record

__all__ = ["batch_failures", "batch_share", "failed_attempt", "sqs_event"]

def _record(msg: Message, queue_name: str) -> dict[str, Any]:
    sent = float(msg.body.get("submitted_at") or time.time())
    return sqs_record(msg.id, msg.receipt, msg.body.get("task"), msg.receive_count, sent, queue_name)


def sqs_event(messages: Sequence[Message], queue_name: str) -> dict[str, Any]:
    """Lambda's SQS event for one batch of messages."""
    return {"Records": [_record(m, queue_name) for m in messages]}


def batch_failures(attempt: Record, ids: Sequence[str], report: bool) -> tuple[set[str], str | None]:
    """The ids of the batch that go back to the queue, and why (None when none do)."""
    every = set(ids)
    if not attempt.ok:
        return every, f"the invocation ended {attempt.outcome}: the whole batch returns to the queue"
    if not report:
        return set(), None  # without ReportBatchItemFailures Lambda deletes the batch, whatever came back
    answer = attempt.output
    if answer is None or (isinstance(answer, dict) and not answer.get("batchItemFailures")):
        return set(), None
    items = answer.get("batchItemFailures") if isinstance(answer, dict) else None
    named = [i.get("itemIdentifier") for i in items] if isinstance(items, list) and all(
        isinstance(i, dict) for i in items) else None
    if named is None or any(not isinstance(n, str) or n not in every for n in named):
        return every, (f"batchItemFailures is malformed or names an id not in the batch ({answer!r:.200}): "
                       f"the whole batch returns to the queue")
    return set(named), "reported in batchItemFailures"


def failed_attempt(attempt: Record, why: str) -> Record:
    """The batch's attempt as one message's failed attempt (its own outcome when the call itself failed)."""
    if not attempt.ok:
        return attempt
    return dataclasses.replace(attempt, ok=False, outcome="agent_error", error=why)


def batch_share(attempt: Record, size: int, *, first: bool) -> Record:
    """One message's part of a batch's invocation record (the whole record for a batch of one)."""
    if size <= 1:
        return attempt
    c = attempt.cost
    share = dataclasses.replace(attempt, billed_ms=attempt.billed_ms / size, cost=Cost(
        compute_usd=c.compute_usd / size, requests_usd=c.requests_usd / size, llm_usd=c.llm_usd / size))
    if first:
        return share
    return dataclasses.replace(share, cold_start=False, init_ms=0.0, llm_calls=0, llm_errors=0, input_tokens=0,
                               output_tokens=0, embedding_tokens=0, memory_ops=0, llm_ms=0.0, llm_backoff_ms=0.0)
