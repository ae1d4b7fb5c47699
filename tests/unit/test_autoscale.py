"""The autoscaler as Kubernetes HPA computes it: the formula, tolerance, missing pods, scale-up rate limits,
the scale-down stabilization window, and scale to zero; fed samples and platform times, no clock."""

from __future__ import annotations

import pytest

from emulators.autoscale import Autoscaler, ScalePolicy, hpa_formula
from emulators.profiles import load_profile


def burst(policy: ScalePolicy) -> list[int]:
    """Desired replicas per 15 s sync for 50 requests held on one replica (batches of 10 end every 60 s)."""
    hpa = Autoscaler(policy)
    current, out = 1, []
    for k in range(1, 50):
        t = 15.0 * k
        held = max(0, 50 - 10 * ((int(t) - 1) // 60))  # outstanding on replica 1: 50, then 40 after 60 s...
        values = [float(held)] + [0.0] * (current - 1)
        current = hpa.decide(t, current, values, active=held > 0).desired
        out.append(current)
    return out


def test_burst_of_50_against_one_replica_target_5_follows_hpa_step_by_step() -> None:
    """50 outstanding on 1 replica, target 5: 1->5 (+4 cap), ->10, hold 300 s past the last 10, then step down."""
    seq = burst(ScalePolicy(target=5, min_replicas=1, max_replicas=20))
    assert seq[:4] == [5, 10, 10, 10]  # t=15: raw 10 capped at max(+100%, +4)=5; t=30: raw 10; t=45,60: ratio 1
    # The last raw 10 was at t=60 and raw 8 came at t=75..120: the 300 s window keeps 10 until t=345.
    assert seq[4:23] == [10] * 19
    assert seq[23:] == [8] * 4 + [6] * 4 + [4] * 4 + [2] * 4 + [1] * 10


def test_raw_recommendations_are_the_formula() -> None:
    """Every decision's raw value is ceil(current * metric / target), or current within the 0.1 tolerance."""
    hpa = Autoscaler(ScalePolicy(target=5, max_replicas=20))
    d1 = hpa.decide(15, 1, [50.0])
    d2 = hpa.decide(30, d1.desired, [50.0, 0, 0, 0, 0])
    d3 = hpa.decide(45, d2.desired, [50.0] + [0.0] * 9)
    assert (d1.metric, d1.raw, d1.desired) == (50.0, 10, 5)
    assert (d2.metric, d2.raw, d2.desired) == (10.0, 10, 10)
    assert (d3.metric, d3.raw, d3.desired) == (5.0, 10, 10)


@pytest.mark.parametrize(("metric", "expected"), [(5.4, 4), (5.6, 5), (4.6, 4), (4.4, 4), (0.0, 0)])
def test_tolerance_keeps_current_within_ten_percent(metric: float, expected: int) -> None:
    """With target 5 and 4 replicas, a metric within 10% of 5 keeps 4; beyond it the formula applies."""
    assert hpa_formula(4, metric / 5, 4, 0.1) == expected


def test_scale_up_is_limited_per_period_by_percent_or_pods() -> None:
    """From 10 replicas, +100% (20) beats +4 (14); from 1, +4 (5) beats +100% (2); within a period no more."""
    hpa = Autoscaler(ScalePolicy(target=1, max_replicas=100, scale_up_period_s=15))
    assert hpa.decide(15, 10, [100.0] * 10).desired == 20
    hpa2 = Autoscaler(ScalePolicy(target=1, max_replicas=100, scale_up_period_s=60))
    assert hpa2.decide(15, 1, [100.0]).desired == 5
    # 15 s later the 60 s period still counts the +4: the start of the period had 1 replica.
    assert hpa2.decide(30, 5, [20.0] * 5).desired == 5
    assert hpa2.decide(90, 5, [20.0] * 5).desired == 10


def test_missing_pods_count_as_zero_on_scale_up_and_target_on_scale_down() -> None:
    """Starting replicas (no metric) damp a scale-up and block a scale-down that would flip direction."""
    hpa = Autoscaler(ScalePolicy(target=5, max_replicas=50))
    # 2 ready at 20 each and 2 starting: (40 + 0 + 0) / 4 / 5 = 2 -> ceil(2 * 4) = 8.
    assert hpa.decide(15, 4, [20.0, 20.0, None, None]).raw == 8
    # 2 ready at 1 each, 2 starting counted at target 5: (2 + 10) / 4 / 5 = 0.6 -> ceil(0.6 * 4) = 3.
    assert hpa.decide(30, 4, [1.0, 1.0, None, None]).raw == 3


def test_no_metric_keeps_the_current_count() -> None:
    """A sync where no replica reports (all starting) changes nothing."""
    d = Autoscaler(ScalePolicy(target=5)).decide(15, 3, [None, None, None])
    assert d.desired == 3 and d.metric is None


def test_bounds_clamp_to_min_and_max() -> None:
    """The answer stays within [min_replicas, max_replicas]."""
    hpa = Autoscaler(ScalePolicy(target=1, min_replicas=2, max_replicas=6, scale_down_stabilization_s=0))
    assert hpa.decide(15, 4, [100.0] * 4).desired == 6
    assert hpa.decide(30, 6, [0.0] * 6).desired == 2


def test_object_metric_p95_latency() -> None:
    """p95 latency of 3 s against a 1 s target on 2 ready replicas asks for ceil(2 * 3) = 6 (capped to +4)."""
    hpa = Autoscaler(ScalePolicy(target=1000, max_replicas=20))
    d = hpa.decide(15, 2, value=3000.0, ready=2)
    assert (d.raw, d.desired) == (6, 6)


def test_scale_to_zero_after_idle_window_and_activation() -> None:
    """With min_replicas 0: 1 replica stays while active, goes to 0 after the idle window, comes back on activity."""
    hpa = Autoscaler(ScalePolicy(target=5, min_replicas=0, scale_to_zero_idle_s=60, scale_down_stabilization_s=0))
    assert hpa.decide(15, 1, [1.0], active=True).desired == 1
    assert hpa.decide(30, 1, [0.0]).desired == 1  # idle 15 s only
    assert hpa.decide(60, 1, [0.0]).desired == 1  # idle 45 s since the last activity at t=15
    assert hpa.decide(75, 1, [0.0]).desired == 0  # idle 60 s
    assert hpa.decide(90, 0, []).desired == 0
    assert hpa.decide(105, 0, [], active=True).desired == 1


def test_policy_from_the_k8s_profile_has_hpa_defaults() -> None:
    """k8s-hpa's policy: tolerance 0.1, 15 s sync, +100%/+4 per 15 s, 300 s scale-down window (K1, K3)."""
    pol = ScalePolicy.from_profile(load_profile("k8s-hpa"))
    assert (pol.tolerance, pol.sync_period_s, pol.scale_down_stabilization_s) == (0.1, 15.0, 300.0)
    assert (pol.scale_up_percent, pol.scale_up_pods, pol.scale_up_period_s) == (100.0, 4, 15.0)
    assert pol.target == 40.0
    assert ScalePolicy.from_profile(load_profile("k8s-hpa").replace(autoscale_metric="queue")).target == 10.0


def test_cloud_run_target_is_60_percent_of_the_concurrency_it_is_given() -> None:
    """gcp-cloud-run's target is 60 % of replica_concurrency (R13), following an override of it."""
    p = load_profile("gcp-cloud-run")
    assert p.target_concurrency_percent == 60 and p.autoscale_window_s == 60
    assert ScalePolicy.from_profile(p).target == pytest.approx(0.6 * p.replica_concurrency)
    assert ScalePolicy.from_profile(p.replace(replica_concurrency=5)).target == pytest.approx(3.0)
    assert ScalePolicy.from_profile(load_profile("k8s-hpa")).window_s == 0  # the HPA reads one sample


def test_a_windowed_total_is_averaged_over_the_window_then_divided_by_the_target() -> None:
    """With a 60 s window the metric is the mean of the samples of the last minute: a short spike moves it
    a little, a sustained load fully; raw = ceil(average / target)."""
    a = Autoscaler(ScalePolicy(target=3, max_replicas=100, window_s=60, sync_period_s=5,
                               scale_up_pods=100, scale_down_stabilization_s=0))
    for t in range(5, 60, 5):  # 11 quiet samples at 3 in flight on one replica: within the target
        assert a.decide(t, 1, total=3.0, active=True).desired == 1
    spike = a.decide(60, 1, total=39.0, active=True)  # one sample of 39 among 12: mean 6
    assert (spike.metric, spike.raw) == (6.0, 2)
    current = spike.desired
    for t in range(65, 125, 5):  # a minute at 39 in flight: the window holds only 39s now
        d = a.decide(t, current, total=39.0, active=True)
        current = d.desired
    assert d.metric == 39.0 and d.raw == 13 and current == 13


def test_replicas_started_on_demand_are_not_scaled_away_by_the_next_sync() -> None:
    """note_demand counts as a recommendation: the scale-down window keeps the on-demand count."""
    a = Autoscaler(ScalePolicy(target=3, max_replicas=100, window_s=60, sync_period_s=5))
    a.note_demand(0.1, 1, 10)
    d = a.decide(5, 10, total=4.0, active=True)  # a low average (a burst that just arrived) recommends 2
    assert d.raw == 2 and d.desired == 10


def test_cpu_use_over_the_window_scales_when_concurrency_would_not() -> None:
    """Cloud Run's second input (R11, R13): 1.5 CPU-s per s on 1-vCPU replicas at a 60 % target wants
    ceil(1.5 / 0.6) = 3 replicas, though 4 requests in flight are far below the concurrency target of 48."""
    p = load_profile("gcp-cloud-run")
    policy = ScalePolicy.from_profile(p)
    assert (policy.cpu_target, policy.vcpus) == (0.6, 1.0)
    a = Autoscaler(policy)
    d = a.decide(15, 1, total=4.0, cpu=1.5, active=True)
    assert d.raw == 3 and d.metric == 4.0
    idle_cpu = Autoscaler(policy).decide(15, 1, total=4.0, cpu=0.05, active=True)
    assert idle_cpu.raw == 1  # an I/O-bound agent: concurrency decides
