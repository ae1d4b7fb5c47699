"""Container billing and profiles: replica rates from profile prices, the busy/idle meter, the summary's split,
and the container profile fields' validation."""

from __future__ import annotations

import pytest

from emulators.billing import ReplicaMeter, replica_cost, replica_rate_usd
from emulators.errors import ConfigError
from emulators.profiles import default_profile_name, list_profiles, load_profile, profile_pattern
from emulators.records import Cost, Record, summarize

CONTAINER_PROFILES = [n for n in list_profiles() if profile_pattern(n) == "container"]


def test_two_replicas_idle_for_an_hour_cost_exactly_the_profile_price() -> None:
    """aws-fargate: 2 tasks x 3600 s x (0.5 vCPU x $0.04048/h + 1 GB x $0.004445/h) (A40, A42)."""
    p = load_profile("aws-fargate")
    assert replica_rate_usd(p) == pytest.approx((0.5 * 0.04048 + 1 * 0.004445) / 3600, rel=1e-5)
    assert replica_cost(2, 3600.0, p) == pytest.approx(2 * (0.5 * 0.04048 + 0.004445), rel=1e-5)
    meters = [ReplicaMeter(0.0), ReplicaMeter(0.0)]
    idle = sum(m.idle_until(3600.0) for m in meters)
    assert idle == 7200.0
    assert idle * replica_rate_usd(p) == replica_cost(2, 3600.0, p)


def test_node_price_is_shared_by_the_larger_of_cpu_and_memory_fractions() -> None:
    """A 1 vCPU / 512 MB pod on a 4 vCPU / 16 GiB node at $0.20/h pays a quarter of the node (CPU dominates)."""
    p = load_profile("k8s-hpa").replace(price_vcpu_s_usd=0.0, price_gb_hour_usd=0.0, price_node_hour_usd=0.20,
                                        node_vcpus=4, node_memory_mb=16384)
    assert replica_rate_usd(p) * 3600 == pytest.approx(0.05)


def test_node_price_without_node_size_is_refused() -> None:
    """price_node_hour_usd without node_vcpus/node_memory_mb is a ConfigError saying what to set."""
    with pytest.raises(ConfigError, match="node_vcpus and node_memory_mb"):
        load_profile("k8s-hpa").replace(price_node_hour_usd=0.2)


def test_meter_splits_busy_time_between_overlapping_calls() -> None:
    """Two calls overlapping on a replica share it: alone 0-10 s, together 10-20 s, idle after."""
    m = ReplicaMeter(0.0)
    m.begin("a", 0.0)
    m.begin("b", 10.0)
    share_a = m.end("a", 20.0)
    share_b = m.end("b", 20.0)
    assert share_a == pytest.approx((10 + 5) / 20)  # 15 replica-seconds over its 20 s
    assert share_b == pytest.approx(0.5)
    assert m.busy_s == 20.0
    assert m.idle_until(30.0) == 10.0
    m.stop(30.0)
    assert m.idle_until(100.0) == 10.0


def test_summary_separates_busy_and_idle_cost_and_stays_backward_compatible() -> None:
    """Explicit busy/idle figures land in the summary; without them busy = records' compute, idle = fixed."""
    recs = [Record(ok=True, outcome="ok", latency_ms=5, cost=Cost(compute_usd=0.25), pattern="container")]
    s = summarize(recs, fixed_cost_usd=1.0, busy_cost_usd=0.25, idle_cost_usd=1.0, peak_replicas=3,
                  replica_seconds=42.0)
    assert (s.busy_cost_usd, s.idle_cost_usd, s.peak_replicas, s.replica_seconds) == (0.25, 1.0, 3, 42.0)
    legacy = summarize(recs, fixed_cost_usd=0.5)
    assert (legacy.busy_cost_usd, legacy.idle_cost_usd, legacy.peak_replicas) == (0.25, 0.5, 0)
    assert legacy.replica_timeline == ()


def test_container_default_profile_is_k8s_hpa() -> None:
    """With no profile named the container pattern uses k8s-hpa, and a named profile brings its pattern."""
    assert default_profile_name("container") == "k8s-hpa"
    assert load_profile(None, "container").name == "k8s-hpa"
    assert load_profile("gcp-cloud-run").pattern == "container"


@pytest.mark.parametrize("name", CONTAINER_PROFILES)
def test_every_container_profile_loads(name: str) -> None:
    """Every shipped container profile loads for the container pattern with sane replica bounds."""
    p = load_profile(name, "container")
    assert p.pattern == "container" and p.name == name
    assert 0 <= p.min_replicas <= p.max_replicas and p.replica_concurrency >= 1


def test_expected_container_profiles_ship() -> None:
    """The issue's five container profiles ship."""
    assert set(CONTAINER_PROFILES) == {"k8s-hpa", "gcp-cloud-run", "aws-fargate", "fly-machines", "modal"}


@pytest.mark.parametrize(
    ("override", "message"),
    [({"load_balancer": "random"}, "round_robin, least_outstanding"),
     ({"autoscale_metric": "cpu"}, "concurrency, queue, p95_latency"),
     ({"min_replicas": 5, "max_replicas": 2}, "min_replicas=5 is above max_replicas=2"),
     ({"replica_concurrency": 0}, "must be positive"),
     ({"max_concurrency": 3}, "belongs to the serverless pattern")],
)
def test_bad_container_fields_are_refused(override: dict[str, object], message: str) -> None:
    """Unknown choices, inverted bounds, zero concurrency and serverless fields are ConfigErrors."""
    with pytest.raises(ConfigError, match=message):
        load_profile("k8s-hpa").replace(**override)


def test_container_fields_are_refused_on_a_serverless_profile() -> None:
    """min_replicas on aws-lambda is a ConfigError naming the container pattern."""
    with pytest.raises(ConfigError, match="belongs to the container pattern"):
        load_profile("aws-lambda").replace(min_replicas=2)


def test_meter_bills_a_short_lived_replica_its_minimum() -> None:
    """A replica up 20 s with a 60 s minimum (Fargate, A41/A42) is billed 60 s: 20 s used, 40 s of shortfall."""
    m = ReplicaMeter(0.0, min_billed_s=60.0)
    m.begin("a", 0.0)
    m.end("a", 5.0)
    m.stop(20.0)
    assert m.busy_s + m.idle_until(20.0) == pytest.approx(60.0)
    assert m.idle_until(1000.0) == pytest.approx(55.0)


def test_meter_minimum_is_nothing_once_the_replica_outlived_it() -> None:
    """A replica up 90 s with a 60 s minimum is billed its 90 s, no more."""
    m = ReplicaMeter(0.0, min_billed_s=60.0)
    assert m.idle_until(90.0) == pytest.approx(90.0)


def test_request_billing_leaves_idle_time_unbilled() -> None:
    """Request-based billing (Cloud Run's default, R20): an idle replica costs nothing; busy time is billed."""
    m = ReplicaMeter(0.0, bill_idle=False)
    m.begin("a", 100.0)
    assert m.end("a", 110.0) == 1.0
    assert m.busy_s == 10.0
    assert m.idle_until(3600.0) == 0.0


def test_replica_billing_must_be_instance_or_request() -> None:
    """replica_billing takes 'instance' or 'request'; anything else is a ConfigError naming both."""
    with pytest.raises(ConfigError, match="instance, request"):
        load_profile("gcp-cloud-run").replace(replica_billing="requests")
