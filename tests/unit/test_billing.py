"""Billing: duration rounding and the per-platform cost formulas, checked against platform-facts prices."""

from __future__ import annotations

import pytest

from emulators.billing import (
    billed_cpu_ms,
    billed_ms,
    bills_invocations,
    invocation_cost,
    provisioned_cost,
    queue_cost,
    queue_requests,
)
from emulators.profiles import Profile, load_profile
from emulators.records import Cost

MS1 = Profile(billing_granularity_ms=1)
MS100 = Profile(billing_granularity_ms=100)


@pytest.mark.parametrize(
    ("duration", "expected"), [(0.2, 1), (1.0, 1), (1.2, 2), (250.0, 250), (250.01, 251)]
)
def test_billed_ms_one_ms_granularity(duration: float, expected: float) -> None:
    """At 1 ms granularity a duration is rounded up to the next whole millisecond."""
    assert billed_ms(duration, MS1) == expected


@pytest.mark.parametrize(("duration", "expected"), [(1, 100), (99.9, 100), (100, 100), (101, 200), (250, 300)])
def test_billed_ms_hundred_ms_granularity(duration: float, expected: float) -> None:
    """At 100 ms granularity 101 ms bills as 200 and exactly 100 ms as 100."""
    assert billed_ms(duration, MS100) == expected


@pytest.mark.parametrize("profile", [MS1, MS100], ids=["1ms", "100ms"])
def test_billed_ms_minimum_is_one_unit(profile: Profile) -> None:
    """Even a zero-length invocation bills one granularity unit."""
    assert billed_ms(0.0, profile) == profile.billing_granularity_ms


def test_billed_ms_ignores_float_noise() -> None:
    """A duration a float rounding error above a boundary (0.1+0.2 s in ms) is not billed an extra unit."""
    noisy = (0.1 + 0.2) * 1000  # 300.00000000000006
    assert noisy > 300
    assert billed_ms(noisy, MS100) == 300
    assert billed_ms(noisy, MS1) == 300


def test_gcp_profile_rounds_to_100_ms() -> None:
    """The shipped Cloud Run functions profile bills in 100 ms units."""
    assert billed_ms(101, load_profile("gcp-cloud-run-functions")) == 200


def test_aws_lambda_invocation_cost() -> None:
    """Lambda at 512 MB for 1000 ms costs 0.5 GB-s x $0.0000166667 plus $0.20 per million requests."""
    p = load_profile("aws-lambda").replace(memory_mb=512)
    cost = invocation_cost(1000, cpu_ms=300, profile=p)
    assert isinstance(cost, Cost)
    assert cost.compute_usd == pytest.approx(0.5 * 0.0000166667)
    assert cost.requests_usd == pytest.approx(0.2 / 1e6)
    assert cost.llm_usd == 0.0
    assert cost.total_usd == pytest.approx(0.5 * 0.0000166667 + 0.2 / 1e6)


def test_aws_lambda_cost_ignores_cpu_time() -> None:
    """Lambda bills duration, not CPU: the same billed time costs the same whatever CPU it used."""
    p = load_profile("aws-lambda")
    assert invocation_cost(1000, 0, p) == invocation_cost(1000, 1000, p)


def test_vercel_invocation_cost() -> None:
    """Vercel bills active CPU hours, provisioned memory GB-hours and $0.60 per million invocations."""
    p = load_profile("vercel-functions")  # 2048 MB
    cost = invocation_cost(1000, cpu_ms=500, profile=p)
    expected_compute = 0.5 / 3600 * 0.128 + 1.0 / 3600 * 2.0 * 0.0106
    assert cost.compute_usd == pytest.approx(expected_compute)
    assert cost.requests_usd == pytest.approx(0.6 / 1e6)


def test_gcp_invocation_cost() -> None:
    """Cloud Run functions bills vCPU-seconds plus GiB-seconds plus $0.40 per million requests."""
    p = load_profile("gcp-cloud-run-functions")  # 1 vCPU, 256 MiB (R23)
    cost = invocation_cost(billed_ms(150, p), cpu_ms=10, profile=p)  # billed 200 ms
    assert cost.compute_usd == pytest.approx(0.2 * 1 * 0.000024 + 0.2 * 0.25 * 0.0000025)  # R18
    assert cost.requests_usd == pytest.approx(0.4 / 1e6)


def test_netlify_bills_credits_for_compute_and_requests() -> None:
    """Netlify: 5 credits per GB-hour and 2 per 10,000 requests (N26) at $0.02 a credit (N24, N25)."""
    cost = invocation_cost(1000, 1000, load_profile("netlify-functions"))  # 1 s at 1,024 MB
    assert cost.compute_usd == pytest.approx(1.0 / 3600 * 1.0 * 5 * 0.02)
    assert cost.requests_usd == pytest.approx(2 / 10_000 * 0.02)


def test_provisioned_cost_rounds_up_to_five_minutes() -> None:
    """Provisioned capacity bills whole 300 s blocks: 1 s bills as 300 s and 301 s as 600 s."""
    p = load_profile("aws-lambda")  # 128 MB, $0.0000041667/GB-s
    per_block = 300 * 0.125 * 0.0000041667
    assert provisioned_cost(1, 1, p) == pytest.approx(per_block)
    assert provisioned_cost(1, 300, p) == pytest.approx(per_block)
    assert provisioned_cost(1, 301, p) == pytest.approx(2 * per_block)
    assert provisioned_cost(3, 1, p) == pytest.approx(3 * per_block)


def test_provisioned_cost_zero_for_nothing() -> None:
    """No instances or no lifetime costs nothing."""
    p = load_profile("aws-lambda")
    assert provisioned_cost(0, 1000, p) == 0.0
    assert provisioned_cost(2, 0, p) == 0.0


def test_provisioned_cost_without_granularity_is_exact() -> None:
    """A profile with no provisioned granularity bills the exact lifetime."""
    p = Profile(memory_mb=1024, provisioned_price_gb_s_usd=1.0)
    assert provisioned_cost(1, 12.5, p) == pytest.approx(12.5)


def test_cpu_billed_in_units_where_the_profile_says_so() -> None:
    """With 50 ms CPU units (Vercel edge's legacy billing, V28), 1 ms of CPU is billed as 50 and 51 ms as 100."""
    p = Profile(cpu_billing_granularity_ms=50.0, price_per_million_cpu_ms_usd=1.0)
    assert billed_cpu_ms(1.0, p) == 50.0
    assert billed_cpu_ms(51.0, p) == 100.0
    assert billed_cpu_ms(0.0, p) == 0.0
    assert invocation_cost(10.0, 1.0, p).compute_usd == pytest.approx(50.0 / 1e6)
    assert billed_cpu_ms(1.5, Profile()) == 1.5


def test_queue_send_is_billed_per_64_kb_chunk() -> None:
    """With 64 KB chunks (SQS, A57) a 256 KB send is 4 requests, a 1-byte one is 1; without chunks every send is 1."""
    p = Profile(pattern="daemon", queue_request_chunk_bytes=65536)
    assert queue_requests(256 * 1024, p) == 4
    assert queue_requests(256 * 1024 + 1, p) == 5
    assert queue_requests(1, p) == 1
    assert queue_requests(10**7, Profile(pattern="daemon")) == 1


def test_which_profiles_bill_invocations() -> None:
    """Function platforms price each call; worker-hour daemons and replica pools price capacity only."""
    assert bills_invocations(load_profile("aws-lambda")) and bills_invocations(load_profile("cloudflare-workers-paid"))
    assert not bills_invocations(load_profile("daemon-local")) and not bills_invocations(load_profile("daemon-sqs"))


def test_queue_cost_is_requests_at_the_profile_price() -> None:
    """Ten SQS requests at $0.40 per million (sec. A58) cost $0.000004."""
    assert queue_cost(10, load_profile("daemon-sqs")) == pytest.approx(4e-6)
    assert queue_cost(10, load_profile("daemon-local")) == 0.0
