"""A Lambda function consuming SQS, run on the daemon pattern, is billed per invocation as Lambda bills it.

The SAM sample's WorkerFunction (MemorySize 128 from Globals, BatchSize 5) runs on the daemon pattern:
each invocation (one batch) costs its billed ms x 0.125 GB x the GB-second price + one request (A13), a
worker's first invocation also its init (A26), and each message its SQS requests (a send per started 64 KB,
a delete) at $0.40 per 1M (sec. A58, A57). Prices are read from the shipped profiles the mapping takes them
from, so these tests check the formula, not a copy of the numbers.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import harness
from emulators.daemon import Daemon
from emulators.profiles import load_profile
from emulators.records import Record
from harness.sources import load_source
from harness.sources.apply import mapped_profile

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "fixtures" / "deployments" / "sam" / "template.yaml"
SLEEPER = f"{ROOT / 'fixtures' / 'agents' / 'sleeper.py'}:agent"
LAMBDA = load_profile("aws-lambda")
GB_S_USD = LAMBDA.price_gb_s_usd  # $0.0000166667 (A13)
REQUEST_USD = LAMBDA.price_per_million_requests_usd / 1e6  # $0.20 per 1M (A13)
SQS_USD = load_profile("daemon-sqs").price_per_million_queue_requests_usd / 1e6  # $0.40 per 1M (sec. A58)
GB = 128 / 1024  # the sample's MemorySize (Globals.Function.MemorySize)


def _daemon(d: harness.Deployment) -> Daemon:
    emu = d._async._emulator
    assert isinstance(emu, Daemon)
    return emu


def _compute(billed_ms: float) -> float:
    return billed_ms / 1000 * GB * GB_S_USD


def _check_invocation(a: Record) -> None:
    """One invocation is billed its duration (and its worker's init on a cold start) at 1 ms, at 128 MB."""
    phase = a.duration_ms + (a.init_ms if a.cold_start else 0.0)
    assert a.billed_ms == max(1.0, math.ceil(phase - 1e-9)), (a.billed_ms, phase)
    assert a.cost.compute_usd == pytest.approx(_compute(a.billed_ms), rel=1e-12)
    assert a.cost.requests_usd == pytest.approx(REQUEST_USD, rel=1e-12)


def test_the_sam_consumer_is_priced_per_invocation_and_per_sqs_request() -> None:
    """Every batch costs its GB-s and a request, every message its SQS send and delete; no worker-hours."""
    with harness.deploy(source=TEMPLATE, function="WorkerFunction", gateway=False, llm="off") as d:
        emu = _daemon(d)
        ids = [d.submit({"text": f"job {i} of twelve"}) for i in range(12)]
        records = [d.wait(i, timeout_s=60) for i in ids]
        invocations = list(emu.attempts_log)
        summary = d.summary()
        queue_requests = emu.queue_requests

    assert all(r.ok for r in records), [r.error for r in records if not r.ok]
    assert d.profile.price_worker_hour_usd == 0 and d.profile.memory_mb == 128
    assert 3 <= len(invocations) <= 12  # batches of up to BatchSize 5
    assert sum(len(a.output["batchItemFailures"]) for a in invocations) == 0
    for a in invocations:
        _check_invocation(a)
    cold = [a for a in invocations if a.cold_start]
    assert 1 <= len(cold) <= 2 and all(a.init_ms > 0 for a in cold)  # each worker's first call bills its init
    # The messages' records add up to the invocations once; each adds its own send and delete (2 requests).
    assert sum(r.cost.compute_usd for r in records) == pytest.approx(sum(a.cost.compute_usd for a in invocations))
    assert sum(r.billed_ms for r in records) == pytest.approx(sum(a.billed_ms for a in invocations))
    assert sum(r.cost.requests_usd for r in records) == pytest.approx(
        len(invocations) * REQUEST_USD + 12 * 2 * SQS_USD)
    assert sum(r.cold_start for r in records) == len(cold)
    # The summary: the records' cost, and as fixed cost only the other SQS requests (receives, polls).
    assert summary.cost_usd == pytest.approx(sum(r.cost.total_usd for r in records))
    assert summary.busy_cost_usd == pytest.approx(sum(a.cost.compute_usd for a in invocations))
    assert summary.fixed_cost_usd == pytest.approx((queue_requests - 12 * 2) * SQS_USD)


def test_fixed_durations_cost_the_formula() -> None:
    """Ten 1 s tasks on the consumer's profile bill 1,000-1,010 ms each: 10 x (GB-s + request + 2 SQS requests)."""
    worker = load_source(TEMPLATE).get("WorkerFunction")
    with harness.deploy(SLEEPER, pattern="daemon", profile=mapped_profile(worker), event_source=None, workers=1,
                        gateway=False, llm="off") as d:
        records = [d.invoke({"seconds": 1.0}) for _ in range(10)]
        invocations = list(_daemon(d).attempts_log)

    assert all(r.ok for r in records), [r.error for r in records]
    assert len(invocations) == 10 and invocations[0].cold_start and not any(a.cold_start for a in invocations[1:])
    for a in invocations:
        _check_invocation(a)
    assert all(1000 <= a.billed_ms <= 1010 for a in invocations[1:])
    for r, a in zip(records, invocations, strict=True):
        assert r.cost.compute_usd == a.cost.compute_usd
        assert r.cost.requests_usd == pytest.approx(REQUEST_USD + 2 * SQS_USD)
    warm = sum(r.cost.total_usd for r in records[1:])
    assert warm == pytest.approx(9 * (_compute(1000) + REQUEST_USD + 2 * SQS_USD), rel=0.01)


def test_worker_hour_profiles_keep_their_records_free_of_compute() -> None:
    """On daemon-local the workers are priced by the hour: task records carry no compute and no cold start."""
    with harness.deploy(SLEEPER, pattern="daemon", gateway=False, llm="off") as d:
        r = d.invoke({"seconds": 1.0})
    assert r.ok and r.cost.compute_usd == 0 and r.billed_ms == 0 and not r.cold_start


def test_a_large_message_pays_one_sqs_request_per_64_kb_it_was_sent_in() -> None:
    """A 200 KB job was sent as 4 SQS requests (A57): its record carries 4 sends and 1 delete beside the call."""
    with harness.deploy(source=TEMPLATE, function="WorkerFunction", gateway=False, llm="off") as d:
        r = d.invoke({"text": "word " * 40_000})
    assert r.ok, r.error
    assert r.output["words"] == 40_000 and r.attempts == 1
    assert r.cost.requests_usd == pytest.approx(REQUEST_USD + (4 + 1) * SQS_USD)
    assert r.cost.compute_usd == pytest.approx(_compute(r.billed_ms))
