"""ctx.llm's client is set up at instance init, where a real agent makes its module-level client: the openai
SDK's import is init time (and edge startup CPU), so the first request of a one-LLM-call agent costs about
what the second does, on serverless, edge and container alike (against the LLM simulator)."""

from __future__ import annotations

import pytest

import harness

from .llm_helpers import AGENTS

pytestmark = pytest.mark.integration

ONE_CALL = f"{AGENTS / 'llm_budget.py'}:agent"  # one chat completion through ctx.llm


def first_two(profile: str, **overrides: object) -> tuple[harness.Record, harness.Record]:
    """The first (cold) and the second (warm) request of the one-call agent, on the virtual clock."""
    with harness.deploy(ONE_CALL, profile=profile, time_scale=None, gateway=False, **overrides) as d:
        first, second = d.invoke({}), d.invoke({})
    assert first.ok and second.ok, (first.error, second.error)
    assert first.instance_id == second.instance_id
    return first, second


@pytest.mark.parametrize("profile", ["cloudflare-workers-paid", "aws-lambda", "k8s-hpa"])
def test_the_first_request_costs_about_what_the_second_does_in_cpu(profile: str) -> None:
    """First and second requests differ by under 3x in CPU (the SDK's import made it 685 ms vs 3 ms)."""
    first, second = first_two(profile)
    assert first.cpu_ms < 3 * second.cpu_ms, (first.cpu_ms, second.cpu_ms)


def test_on_serverless_the_import_is_init_time_not_request_time() -> None:
    """aws-lambda at 128 MB (CPU x13.8 in requests, full speed in init): the import lands in init_ms, and the
    first request's own time (less its wait on the model) stays far below the ~7 s the import took there."""
    first, second = first_two("aws-lambda")
    assert first.cold_start and not second.cold_start
    assert first.init_ms > 100  # the import: hundreds of ms of real CPU
    own_ms = first.duration_ms - first.llm_ms
    assert own_ms < 1000 and own_ms < first.init_ms, (own_ms, first.init_ms)


def test_on_the_edge_free_plan_the_first_llm_call_fits_the_10_ms_budget() -> None:
    """cloudflare-workers-free: the import counts against the 1 s startup budget, and the first call's CPU
    stays inside the 10 ms request budget (it was always cpu_limit)."""
    first, second = first_two("cloudflare-workers-free")
    assert first.cold_start and first.init_ms > 100
    assert first.cpu_ms <= 10 and second.cpu_ms <= 10


def test_an_edge_startup_budget_the_sdk_does_not_fit_names_it() -> None:
    """With a 50 ms startup budget the cold start is init_error, and the error says the SDK took the CPU."""
    with harness.deploy(ONE_CALL, profile="cloudflare-workers-paid", time_scale=None, gateway=False,
                        startup_cpu_ms=50) as d:
        r = d.invoke({})
    assert r.outcome == "init_error"
    assert "openai SDK behind ctx.llm" in (r.error or "") and "ctx.http" in (r.error or ""), r.error
