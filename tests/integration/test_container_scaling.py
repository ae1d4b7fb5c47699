"""Container scaling with real replica processes: warm replicas, the HPA under a burst (step by step, the
queue draining, the scale back to min), scale to zero, and the busy/idle bill of an idle pool."""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import harness
from emulators.billing import replica_rate_usd
from emulators.records import ReplicaPoint

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "agents"
SLEEPER = str(FIXTURES / "sleeper.py") + ":agent"
ECHO = str(FIXTURES / "echo.py") + ":agent"


def syncs(d: harness.Deployment) -> list[ReplicaPoint]:
    return [p for p in d.summary().replica_timeline if p.event == "sync"]


def test_min_replicas_two_warm_requests_are_never_cold() -> None:
    """With min_replicas=2 both replicas start with the deployment; no request reports a cold start."""
    with harness.deploy(ECHO, pattern="container", time_scale=0.01, min_replicas=2, gateway=False) as d:
        rs = [d.invoke({"i": i}) for i in range(8)]
        s = d.summary()
    assert all(r.ok for r in rs), [r.error for r in rs]
    assert not any(r.cold_start or r.init_ms for r in rs)
    assert s.cold_starts == 0
    assert len({r.instance_id for r in rs}) == 2  # round robin over both warm replicas
    assert s.peak_replicas == 2


def test_burst_follows_hpa_drains_and_scales_back_to_min() -> None:
    """50 concurrent on 1 replica, target 5: 1->5->10 by the HPA formula and rate limits, all 50 served, then
    after the 300 s stabilization window the pool steps back down to min_replicas=1."""
    target = 5

    async def burst() -> tuple[list[harness.Record], harness.Summary]:
        # On the virtual clock: the harness's own dispatch of 50 calls is milliseconds of platform time, however
        # loaded the machine is, so the first 15 s sync sees the whole burst.
        async with harness.adeploy(SLEEPER, pattern="container", min_replicas=1,
                                   max_replicas=20, replica_concurrency=10, target_concurrency=target,
                                   timeout_s=900, gateway=False) as d:
            ids = await asyncio.gather(*(d.submit({"seconds": 60}) for _ in range(50)))
            done = [await d.wait(i, 30) for i in ids]
            for _ in range(60):  # then idle time, a sync period at a time, until the pool is back at one
                points = [p for p in d.summary().replica_timeline if p.event == "sync"]
                if points and points[-1].replicas == 1 and points[-1].desired == 1:
                    break
                await d.advance(15)
            return done, d.summary()

    results, summary = asyncio.run(burst())
    timeline = summary.replica_timeline

    assert all(r.ok for r in results), {r.outcome for r in results}
    points = [p for p in timeline if p.event == "sync"]
    desired = [p.desired for p in points]
    # t=15: raw ceil(1 * 50 / 5) = 10, limited to max(+100%, +4) = 5; t=30: 50 / 5 = 10 per replica -> 10.
    assert (points[0].metric, points[0].raw_desired, desired[0]) == (50.0, 10, 5)
    assert (points[1].metric, points[1].raw_desired, desired[1]) == (10.0, 10, 10)
    for p in points:  # every step is the HPA formula on what the autoscaler saw
        if p.metric is not None and p.ready == p.replicas and p.replicas:
            ratio = p.metric / target
            expected = p.replicas if abs(1 - ratio) <= 0.1 else math.ceil(ratio * p.replicas - 1e-9)
            assert p.raw_desired == expected, p
    for before, after in itertools.pairwise(desired):  # scale-up never beyond +100% / +4 per 15 s
        assert after <= max(2 * before, before + 4)
    # The queue drains: 10 at a time, every 60 s, to nothing.
    assert points[0].outstanding == 50 and points[-1].outstanding == 0
    # Scale-down waits for the 300 s window after the last recommendation of 10, then steps to 1.
    last_ten = max(p.t_s for p in points if p.raw_desired == 10)
    first_down = min(p.t_s for p in points if p.desired < 10 and p.t_s > points[1].t_s)
    assert first_down >= last_ten + 300 - 1
    assert desired[-1] == 1 and points[-1].replicas == 1
    assert max(desired) == 10
    # The running peak the fleet keeps is the timeline's own peak, draining replicas included.
    assert summary.peak_replicas == max(p.replicas + p.draining for p in timeline) >= 10


def test_scale_to_zero_and_back_with_a_cold_start() -> None:
    """With min_replicas=0 the first request waits for a cold start; after the idle window the pool is empty,
    and the next request is cold again."""
    with harness.deploy(SLEEPER, pattern="container", time_scale=0.002, min_replicas=0, scale_to_zero_idle_s=60,
                        scale_down_stabilization_s=0, gateway=False) as d:
        first = d.invoke({"seconds": 1})
        warm = d.invoke({"seconds": 1})
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(p.desired == 0 and p.event == "sync" for p in syncs(d)):
            time.sleep(0.05)
        time.sleep(0.05)
        again = d.invoke({"seconds": 1})
        events = [p.event for p in d.summary().replica_timeline]

    assert first.ok and first.cold_start and first.init_ms > 0
    assert first.latency_ms >= first.init_ms + 1000
    assert warm.ok and not warm.cold_start and warm.instance_id == first.instance_id
    assert again.ok and again.cold_start and again.instance_id != first.instance_id
    assert events.count("activate") == 2


def test_two_idle_replicas_for_a_platform_hour_cost_the_profile_price() -> None:
    """2 Fargate tasks idle for one platform hour: idle cost grows by 2 x 3600 s x the task rate; busy stays 0."""
    # min_billed_s=0: the one-minute minimum would bill part of the hour before it passes (tested below).
    with harness.deploy(ECHO, profile="aws-fargate", min_replicas=2, gateway=False, min_billed_s=0) as d:
        before = d.summary()
        d.advance(3600)  # one platform hour, on the virtual clock
        after = d.summary()
        rate = replica_rate_usd(d.profile)

    hour = 2 * 3600 * rate  # = 2 x (0.5 vCPU x $0.04048 + 1 GB x $0.004445) per hour, A42
    assert hour == pytest.approx(2 * (0.5 * 0.04048 + 0.004445), rel=1e-5)
    grown_s = after.replica_seconds - before.replica_seconds
    grown_usd = after.idle_cost_usd - before.idle_cost_usd
    assert grown_usd == pytest.approx(grown_s * rate, rel=1e-9)  # exactly the price of the seconds billed
    assert grown_usd == pytest.approx(hour, rel=1e-4)  # and those are one hour each
    assert after.busy_cost_usd == 0 and after.calls == 0
    assert after.fixed_cost_usd == pytest.approx(after.idle_cost_usd)


def test_one_replica_runs_its_concurrent_calls_at_once() -> None:
    """A replica with replica_concurrency=4 runs 4 calls in parallel (its threads take turns reading)."""
    with harness.deploy(SLEEPER, pattern="container", time_scale=0.01, min_replicas=1, max_replicas=1,
                        replica_concurrency=4, gateway=False) as d:
        assert d.invoke({"seconds": 0}).ok  # the replica is up
        t0 = time.monotonic()
        one = d.invoke({"seconds": 30})  # 0.3 s of wall time
        alone = time.monotonic() - t0
        t0 = time.monotonic()
        with ThreadPoolExecutor(4) as callers:
            records = list(callers.map(lambda _: d.invoke({"seconds": 30}), range(4)))
        together = time.monotonic() - t0
        after = [d.invoke({"seconds": 0}) for _ in range(3)]  # and it still serves calls one by one
    assert [r.outcome for r in [one, *records, *after]] == ["ok"] * 8
    assert len({r.instance_id for r in records}) == 1
    # One after another they would take 4x as long as one call; at once, about as long.
    assert together < 2.5 * alone, (together, alone)


def test_request_billed_replicas_cost_nothing_while_idle() -> None:
    """gcp-cloud-run bills per request (R20): an idle platform hour adds no cost; instance billing adds the hour."""
    with harness.deploy(ECHO, profile="gcp-cloud-run", min_replicas=1, gateway=False) as d:
        d.invoke({"x": 1})
        before = d.summary()
        d.advance(3600)
        after = d.summary()
    assert after.idle_cost_usd == pytest.approx(before.idle_cost_usd) and after.busy_cost_usd > 0
    with harness.deploy(ECHO, profile="gcp-cloud-run", min_replicas=1, gateway=False,
                        replica_billing="instance") as d:
        before = d.summary()
        d.advance(3600)
        after = d.summary()
        rate = replica_rate_usd(d.profile)
    assert after.idle_cost_usd - before.idle_cost_usd == pytest.approx(3600 * rate, rel=1e-3)


def test_a_fargate_task_stopped_early_is_billed_its_first_minute() -> None:
    """A Fargate task that ran for less than a minute is billed 60 s, its start included (A41, A42)."""
    with harness.deploy(ECHO, profile="aws-fargate", min_replicas=1, gateway=False) as d:
        d.invoke({"x": 1})
        s = d.summary()
        rate = replica_rate_usd(d.profile)
    assert s.replica_seconds == pytest.approx(60.0, rel=1e-3), s.replica_seconds
    assert s.busy_cost_usd + s.idle_cost_usd == pytest.approx(60.0 * rate, rel=1e-3)
