"""The daemon's records: a task's record adds up its attempts' price, and a batch's price is split once."""

from __future__ import annotations

import dataclasses

import pytest

from emulators.daemon_records import task_record
from emulators.records import Cost, Record
from emulators.sqsbatch import batch_share

CALL = Record(ok=True, outcome="ok", duration_ms=40.0, billed_ms=40.0, cold_start=True, init_ms=90.0,
              llm_calls=2, input_tokens=100, output_tokens=30, trigger="attempt",
              cost=Cost(compute_usd=8e-8, requests_usd=2e-7, llm_usd=3e-5))


def test_a_task_record_adds_up_every_attempt_and_its_own_queue_requests() -> None:
    """Two attempts and 3 queue requests: billed ms, compute, requests and LLM cost are sums; cold if any was."""
    warm = dataclasses.replace(CALL, cold_start=False, init_ms=0.0)
    r = task_record(warm, [CALL, warm], task_id="t1", outcome="ok", attempts=2, errors=[], latency_s=1.0,
                    queue_usd=3 * 0.4e-6)
    assert (r.billed_ms, r.duration_ms, r.cold_start, r.init_ms, r.trigger) == (80.0, 80.0, True, 90.0, "invoke")
    assert r.cost.compute_usd == pytest.approx(1.6e-7)
    assert r.cost.requests_usd == pytest.approx(4e-7 + 1.2e-6)
    assert r.cost.llm_usd == pytest.approx(6e-5)


def test_a_batch_shares_its_price_and_keeps_its_counts_on_the_first_message() -> None:
    """Four messages each carry a quarter of the price; the cold start and tokens are counted once."""
    shares = [batch_share(CALL, 4, first=i == 0) for i in range(4)]
    assert sum(s.cost.total_usd for s in shares) == pytest.approx(CALL.cost.total_usd)
    assert sum(s.billed_ms for s in shares) == pytest.approx(CALL.billed_ms)
    assert [s.cold_start for s in shares] == [True, False, False, False]
    assert sum(s.input_tokens for s in shares) == 100 and sum(s.llm_calls for s in shares) == 2
    assert all(s.duration_ms == 40.0 for s in shares)  # each message waited for the whole invocation
    assert batch_share(CALL, 1, first=True) is CALL
