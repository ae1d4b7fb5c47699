"""The front door per profile, with real replica processes on the virtual clock: Cloud Run queues a burst
centrally and spreads it over the instances it starts (R10-R13); Kubernetes binds each request to a pod at
arrival (K17, K19); a request pending past Cloud Run's limit gets 429."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
import pytest

import harness

pytestmark = pytest.mark.integration

SLEEPER = str(Path(__file__).resolve().parents[2] / "fixtures" / "agents" / "sleeper.py") + ":agent"


async def burst(n: int, seconds: float, **kwargs: object) -> tuple[list[harness.Record], harness.Summary]:
    """``n`` concurrent calls of ``seconds`` platform seconds each, on the virtual clock."""
    async with harness.adeploy(SLEEPER, time_scale=None, gateway=False, **kwargs) as d:
        records = await asyncio.gather(*(d.invoke({"seconds": seconds}) for _ in range(n)))
        return list(records), d.summary()


def test_cloud_run_serves_a_burst_of_50_from_its_pending_queue() -> None:
    """50 concurrent 60 s calls, concurrency 5, from zero: all 50 wait centrally, instances start on demand
    and each takes 5, so every call is served in one round (60 s + a cold start)."""
    records, s = asyncio.run(burst(50, 60, profile="gcp-cloud-run", replica_concurrency=5))
    assert Counter(r.outcome for r in records) == {"ok": 50}, [r.error for r in records if not r.ok][:3]
    per_instance = Counter(r.instance_id for r in records)
    assert len(per_instance) >= 10 and max(per_instance.values()) <= 5, per_instance
    assert all(r.cold_start for r in records)  # every one waited for an instance's start
    assert max(r.latency_ms for r in records) < 60_000 + 10_000  # one round, well inside the pending limit
    events = [p.event for p in s.replica_timeline]
    assert events.count("activate") == 1 and events.count("demand") >= 9  # started for the waiting requests


def test_kubernetes_binds_the_same_burst_to_the_pod_that_was_ready_when_it_arrived() -> None:
    """k8s-hpa keeps per-pod queues: the burst lands on the one warm pod, five at a time, and the pods the
    HPA adds serve none of it; past the ingress timeout the rest are gateway_timeout."""
    # The ingress limit pinned at 250 s (whatever the profile cites), so that four rounds of five fit.
    records, s = asyncio.run(burst(50, 60, profile="k8s-hpa", replica_concurrency=5, timeout_s=250,
                                   gateway_timeout_s=None, max_timeout_s=None))
    outcomes = Counter(r.outcome for r in records)
    assert outcomes == {"ok": 20, "gateway_timeout": 30}  # 4 rounds of 5 within 250 s
    assert {r.instance_id for r in records if r.ok} == {"i-0001"}
    assert s.peak_replicas > 1  # new pods started meanwhile, and idled


def test_a_request_pending_past_the_limit_gets_429_throttled() -> None:
    """At max_replicas=2 x concurrency 5, 10 of 20 calls run; the other 10 pend 10 s (max(3.5 x a fast
    start, 10 s)) and end throttled, with the wait as their latency."""
    records, _ = asyncio.run(burst(20, 60, profile="gcp-cloud-run", replica_concurrency=5, max_replicas=2,
                                   cold_start_overhead_ms=100))  # a fast start: the 10 s floor applies
    throttled = [r for r in records if r.outcome == "throttled"]
    assert len(throttled) == 10 and sum(r.ok for r in records) == 10
    for r in throttled:
        assert r.latency_ms == pytest.approx(10_000, abs=50)
        assert "pending limit of 10 s" in (r.error or "") and "HTTP 429" in (r.error or "")


def test_the_pending_limit_grows_with_the_average_start() -> None:
    """With 4 s starts the limit is 3.5 x ~4 s = ~14 s: a call that pends 12 s is served (it would not be
    under a flat 10 s), one that would pend 20 s gets 429 at the limit."""
    records, _ = asyncio.run(burst(3, 8, profile="gcp-cloud-run", replica_concurrency=1, max_replicas=1,
                                   cold_start_overhead_ms=4000))
    first, second, third = records  # in arrival order
    assert first.ok and second.ok and third.outcome == "throttled", [r.outcome for r in records]
    start_s = first.init_ms / 1000.0
    assert 4.0 <= start_s < 5.0
    assert second.latency_ms / 1000.0 == pytest.approx(start_s + 16, abs=0.2)  # pended start + 8 s
    assert third.latency_ms / 1000.0 == pytest.approx(3.5 * start_s, abs=0.2)


def test_the_gateway_answers_a_pending_timeout_with_429() -> None:
    """Over HTTP the throttled call is status 429 with x-harness-outcome: throttled."""
    async def run() -> list[httpx.Response]:
        async with harness.adeploy(SLEEPER, profile="gcp-cloud-run", time_scale=None, replica_concurrency=1,
                                   max_replicas=1) as d, httpx.AsyncClient(base_url=d.url, timeout=30) as client:
            return list(await asyncio.gather(*(client.post("/invoke", json={"seconds": 30})
                                               for _ in range(2))))

    statuses = sorted((r.status_code, r.headers["x-harness-outcome"]) for r in asyncio.run(run()))
    assert statuses == [(200, "ok"), (429, "throttled")]


def test_cloud_run_scales_on_cpu_when_few_requests_burn_it() -> None:
    """Two CPU-bound calls on one warm instance are far below the concurrency target, but the CPU the
    instance burns (over a 10 % target here, so any share of a core counts) makes the autoscaler add some."""
    burner = str(Path(__file__).resolve().parents[2] / "fixtures" / "agents" / "cpu_burner.py") + ":agent"

    async def run() -> tuple[list[harness.Record], harness.Summary]:
        async with harness.adeploy(burner, profile="gcp-cloud-run", time_scale=None, gateway=False,
                                   min_replicas=1, autoscale_sync_period_s=0.5, autoscale_window_s=1,
                                   target_cpu_percent=10) as d:
            records = await asyncio.gather(*(d.invoke({"cpu_ms": 800}) for _ in range(2)))
            return list(records), d.summary()

    records, s = asyncio.run(run())
    assert all(r.ok for r in records), [r.error for r in records]
    syncs = [p for p in s.replica_timeline if p.event == "sync"]
    assert syncs and max(p.raw_desired or 0 for p in syncs) > 1, syncs
    assert all((p.metric or 0) <= 2 for p in syncs)  # concurrency alone: 2 of a 48 target, one replica
