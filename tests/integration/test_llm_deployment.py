"""LLM calls made inside a deployment are attributed to the invocation that made them: calls, tokens,
``llm_usd``, the time spent waiting on the model, and the retries and backoff a rate limit costs."""

from __future__ import annotations

import pytest

import harness
from emulators.billing import llm_cost

from .llm_helpers import AGENTS, LLM_SCRIPTS

pytestmark = pytest.mark.integration

QUESTION = {"question": "What is 2 + 3, and the weather in Paris?"}


def _endpoint_calls(d: harness.Deployment) -> list[object]:
    return list(d._async._emulator.pool.llm.calls)


@pytest.mark.parametrize("agent", ["openai_tools", "anthropic_tools"])
def test_a_three_call_tool_loop_shows_three_calls_and_their_tokens_and_cost(agent: str) -> None:
    """The record's llm_calls, tokens and llm_usd equal the sums over the calls the endpoint answered."""
    with harness.deploy(f"{AGENTS / agent}.py:agent", time_scale=0.01, timeout_s=60,
                        llm_script=LLM_SCRIPTS / "tool_loop.toml") as d:
        r = d.invoke(QUESTION)
        calls = _endpoint_calls(d)
    assert r.ok, r.error
    assert r.output["model_calls"] == 3
    assert r.llm_calls == 3 and r.llm_errors == 0
    assert [c.invocation_id for c in calls] == [r.invocation_id] * 3  # type: ignore[attr-defined]
    assert r.input_tokens == sum(c.input_tokens for c in calls) > 0  # type: ignore[attr-defined]
    assert r.output_tokens == sum(c.output_tokens for c in calls) > 0  # type: ignore[attr-defined]
    expected = sum(llm_cost(c.model, c.input_tokens, c.output_tokens) for c in calls)  # type: ignore[attr-defined]
    assert r.cost.llm_usd == pytest.approx(expected) and expected > 0
    # Waiting on the model is platform time: three answers' latency, counted at platform length.
    waited = sum(c.platform_s for c in calls) * 1000.0  # type: ignore[attr-defined]
    assert r.llm_ms == pytest.approx(waited, rel=0.05)
    assert r.latency_ms >= waited


@pytest.mark.parametrize("time_scale", [0.05, None], ids=["scaled", "virtual"])
def test_a_rate_limited_burst_shows_the_retries_and_the_time_lost(time_scale: float | None) -> None:
    """RPM 60, ten parallel calls: nine 429s retried by the SDK; the record counts them and the backoff."""
    with harness.deploy(f"{AGENTS / 'llm_fanout.py'}:agent", time_scale=time_scale, timeout_s=60, memory_mb=1769,
                        llm_script=LLM_SCRIPTS / "rate_limited.toml") as d:
        r = d.invoke({"n": 10})
    assert r.ok, r.error
    assert r.output == {"answered": 10, "errors": []}
    assert r.llm_calls == 19 and r.llm_errors == 9
    # Told to come back 1..9 platform seconds later: 45 s of backoff in all, the longest 9 s.
    assert r.llm_backoff_ms == pytest.approx(45_000, rel=0.05)
    # The calls overlap, so the time spent waiting on the model is the longest backoff plus one answer
    # (9 s + ~0.5 s), in platform time: not the wall time it took at time_scale=0.05, nor the waits' sum.
    assert 9_000 <= r.llm_ms <= 10_500, r.llm_ms
    assert r.llm_ms <= r.duration_ms <= r.llm_ms + 3_000, (r.duration_ms, r.llm_ms)


@pytest.mark.parametrize("time_scale", [0.01, None], ids=["scaled", "virtual"])
def test_remaining_time_counts_the_llm_wait_at_platform_length(time_scale: float | None) -> None:
    """After a 5 s (platform) model call, ctx.remaining_time_ms() is about 5 s lower, on either clock."""
    with harness.deploy(f"{AGENTS / 'llm_budget.py'}:agent", time_scale=time_scale, timeout_s=30, memory_mb=1769,
                        llm_script=LLM_SCRIPTS / "slow_model.toml") as d:
        r = d.invoke({})
    assert r.ok, r.error
    spent = r.output["before_ms"] - r.output["after_ms"]
    assert 5_000 <= spent <= 6_500, r.output
    assert r.llm_ms == pytest.approx(5_000, rel=0.05)
