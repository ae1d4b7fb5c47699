"""State across instance recycling, per-invocation cost on the AWS Lambda price list, and the summary
computed from records."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

import harness

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "agents"
SLEEPER = str(FIXTURES / "sleeper.py") + ":agent"
CHAT_GLOBAL = str(FIXTURES / "chat_global.py") + ":agent"
CHAT_STATE = str(FIXTURES / "chat_state.py") + ":agent"

GB_S_USD = 0.0000166667  # aws-lambda.toml price_gb_s_usd
REQUEST_USD = 0.2 / 1e6  # aws-lambda.toml price_per_million_requests_usd


def _nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


# ---- state across recycling ----------------------------------------------------------------------------

def _chat_with_a_recycle(agent: str) -> list[harness.Record]:
    with harness.deploy(agent, idle_expiry_s=5) as d:  # virtual time: a slow host adds no idle time
        first = d.invoke({"message": "hello"}, session_id="s1")
        second = d.invoke({"message": "how are you?"}, session_id="s1")
        d.advance(50)  # 50 platform seconds idle: past the 5 s idle expiry, the instance is recycled
        third = d.invoke({"message": "still there?"}, session_id="s1")
    return [first, second, third]


def test_history_in_a_module_global_is_lost_when_the_instance_is_recycled() -> None:
    """chat_global keeps history in memory: after a recycle the conversation restarts at turn 1 (the bug shown)."""
    first, second, third = _chat_with_a_recycle(CHAT_GLOBAL)

    assert first.ok and second.ok, (first.error, second.error)
    assert second.output == {"turn": 2, "history": ["hello", "how are you?"]}
    assert second.instance_id == first.instance_id
    assert third.ok, third.error
    assert third.cold_start and third.instance_id != first.instance_id
    assert third.output == {"turn": 1, "history": ["still there?"]}


def test_history_in_ctx_state_survives_the_recycle() -> None:
    """chat_state keeps history in ctx.state: after a recycle the third message is turn 3 with all three."""
    first, second, third = _chat_with_a_recycle(CHAT_STATE)

    assert first.ok and second.ok, (first.error, second.error)
    assert second.output == {"turn": 2, "history": ["hello", "how are you?"]}
    assert third.ok, third.error
    assert third.cold_start and third.instance_id != first.instance_id
    assert third.output == {"turn": 3, "history": ["hello", "how are you?", "still there?"]}


def test_state_is_scoped_to_the_session() -> None:
    """ctx.state of one session is not seen by another session or by a call without a session."""
    with harness.deploy(CHAT_STATE, time_scale=0.01) as d:
        a1 = d.invoke({"message": "a1"}, session_id="a")
        b1 = d.invoke({"message": "b1"}, session_id="b")
        a2 = d.invoke({"message": "a2"}, session_id="a")
        none = d.invoke({"message": "n"})

    assert a1.output == {"turn": 1, "history": ["a1"]}
    assert b1.output == {"turn": 1, "history": ["b1"]}
    assert a2.output == {"turn": 2, "history": ["a1", "a2"]}
    assert none.output == {"turn": 1, "history": ["n"]}


# ---- cost ----------------------------------------------------------------------------------------------

def test_cost_of_a_thousand_calls_at_512_mb() -> None:
    """Each call costs billed_ms x 0.5 GB x the GB-s price + a request; 1,000 warm 1 s calls match to the cent."""
    with harness.deploy(SLEEPER, memory_mb=512, timeout_s=30, time_scale=0.001) as d:
        records = [d.invoke({"seconds": 1.0}) for _ in range(1001)]
        s = d.summary()

    assert all(r.ok for r in records), Counter(r.outcome for r in records)
    cold, warm = records[0], records[1:]
    assert cold.cold_start and not any(r.cold_start for r in warm)
    for r in records:
        assert r.billed_ms >= r.duration_ms
        assert r.billed_ms == math.ceil(r.billed_ms)  # 1 ms granularity
        assert r.cost.compute_usd == pytest.approx(r.billed_ms / 1000 * 0.5 * GB_S_USD, rel=1e-9)
        assert r.cost.requests_usd == pytest.approx(REQUEST_USD, rel=1e-9)
        assert r.cost.llm_usd == 0
    # Lambda bills INIT like INVOKE: the cold call is billed for its init as well.
    assert cold.billed_ms >= cold.duration_ms + cold.init_ms
    assert all(1000 <= r.billed_ms <= 1010 for r in warm)

    expected = 1000 * (REQUEST_USD + 1.0 * 0.5 * GB_S_USD)
    assert sum(r.cost.total_usd for r in warm) == pytest.approx(expected, abs=0.005)
    assert s.cost_usd == pytest.approx(sum(r.cost.total_usd for r in records), rel=1e-9)


def test_rejected_calls_are_not_billed() -> None:
    """A call refused before running (payload too large) costs nothing, while an executed one is billed."""
    with harness.deploy(SLEEPER, time_scale=0.01) as d:
        rejected = d.invoke({"blob": "x" * 7 * 1024 * 1024})
        run = d.invoke({"seconds": 0.1})

    assert rejected.outcome == "payload_too_large"
    assert rejected.cost.total_usd == 0
    assert run.ok and run.cost.total_usd > 0


# ---- summary -------------------------------------------------------------------------------------------

def test_summary_is_computed_from_the_records() -> None:
    """summary() counts outcomes, latency percentiles, cold starts and cost per 1k consistently with records()."""
    with harness.deploy(SLEEPER, time_scale=0.001, timeout_s=10) as d:
        for i in range(1, 21):
            d.invoke({"seconds": i / 10})  # 0.1 .. 2.0 s: distinct latencies
        timed_out = d.invoke({"seconds": 20})
        too_big = d.invoke({"blob": "x" * 7 * 1024 * 1024})
        s = d.summary()
        records = d.records()

    assert timed_out.outcome == "timeout" and too_big.outcome == "payload_too_large"
    assert len(records) == 22
    assert s.calls == 22
    assert s.outcomes == {"ok": 20, "payload_too_large": 1, "timeout": 1}
    assert s.outcomes == dict(Counter(r.outcome for r in records))
    assert s.ok == 20 and s.failures == 2
    assert s.cold_starts == 1 == sum(r.cold_start for r in records)
    assert s.cold_start_share == pytest.approx(1 / 22)
    assert s.pattern == "serverless" and s.profile == "aws-lambda"
    assert s.warmup_pings == 0 and s.fixed_cost_usd == 0

    # Latency over the calls that ran (a rejected call has no meaningful latency), nearest rank.
    latencies = [r.latency_ms for r in records if r.outcome != "payload_too_large"]
    assert len(latencies) == 21
    assert s.latency_p50_ms == pytest.approx(_nearest_rank(latencies, 50), rel=0.01)  # histogram: 1 %
    assert s.latency_p95_ms == pytest.approx(_nearest_rank(latencies, 95), rel=0.01)  # histogram: 1 %
    assert s.latency_p99_ms == pytest.approx(_nearest_rank(latencies, 99), rel=0.01)  # histogram: 1 %
    assert s.latency_max_ms == pytest.approx(max(latencies))
    assert s.latency_p50_ms <= s.latency_p95_ms <= s.latency_p99_ms <= s.latency_max_ms
    # The 11th of 21 sorted latencies is the 1.1 s sleep; the largest is the 10 s timeout.
    assert 1_100 <= s.latency_p50_ms < 1_300
    assert 2_000 <= s.latency_p95_ms < 2_300
    assert s.latency_max_ms == pytest.approx(timed_out.latency_ms)
    assert s.latency_max_ms >= 10_000

    total = sum(r.cost.total_usd for r in records)
    assert s.cost_usd == pytest.approx(total, rel=1e-9)
    assert s.cost_per_1k_usd == pytest.approx(total / 22 * 1000, rel=1e-9)
