"""Records and summaries: nearest-rank percentiles, outcome counts, latency exclusions, warm-ups, cost."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import fields
from typing import Any

import pytest

from emulators.records import OUTCOMES, Cost, Record, Result, amended, new_record, percentile, summarize

DESIGN_OUTCOMES = (
    "ok", "agent_error", "init_error", "timeout", "gateway_timeout", "oom", "cpu_limit", "throttled",
    "payload_too_large", "subrequest_limit", "crash", "llm_rate_limited", "dead_lettered", "lost",
)


def rec(outcome: str = "ok", latency: float = 10.0, **kw: Any) -> Record:
    return Record(ok=outcome == "ok", outcome=outcome, latency_ms=latency, pattern="serverless",
                  profile="aws-lambda", **kw)


def test_outcomes_cover_the_design_taxonomy() -> None:
    """OUTCOMES holds exactly the outcome kinds listed in DESIGN.md, "Outcome kinds"."""
    assert set(OUTCOMES) == set(DESIGN_OUTCOMES)
    assert len(OUTCOMES) == len(set(OUTCOMES))


@pytest.mark.parametrize(
    ("q", "expected"), [(0, 15), (5, 15), (30, 20), (40, 20), (50, 35), (100, 50)]
)
def test_percentile_nearest_rank(q: float, expected: float) -> None:
    """percentile uses the nearest-rank method (the textbook 15, 20, 35, 40, 50 example)."""
    assert percentile([50, 40, 35, 20, 15], q) == expected


def test_percentile_of_nothing_is_zero() -> None:
    """The percentile of no values is 0.0."""
    assert percentile([], 99) == 0.0


def test_percentile_of_one_value() -> None:
    """Every percentile of a single value is that value."""
    assert percentile([7.5], 1) == percentile([7.5], 99) == 7.5


def test_cost_total_and_json() -> None:
    """Cost.total_usd adds compute, requests and LLM, and to_json includes it."""
    c = Cost(compute_usd=1.0, requests_usd=0.25, llm_usd=0.5)
    assert c.total_usd == 1.75
    assert c.to_json() == {"compute_usd": 1.0, "requests_usd": 0.25, "llm_usd": 0.5, "total_usd": 1.75}


def test_result_has_the_design_fields() -> None:
    """Result carries every field DESIGN.md lists, and Record extends it."""
    names = {f.name for f in fields(Result)}
    assert names >= {
        "ok", "outcome", "output", "error", "latency_ms", "cold_start", "init_ms", "instance_id", "attempts",
        "cpu_ms", "peak_memory_mb", "llm_calls", "input_tokens", "output_tokens", "cost", "invocation_id",
        "trace_id",
    }
    assert issubclass(Record, Result)


def test_record_to_json_is_serializable() -> None:
    """Record.to_json is JSON-serializable, with cost totals and events as a list."""
    r = rec(output={"a": [1, 2]}, cost=Cost(compute_usd=0.001, requests_usd=0.0000002),
            events=({"step": "searched"},), session_id="s1")
    data = json.loads(json.dumps(r.to_json()))
    assert data["cost"]["total_usd"] == pytest.approx(0.0010002)
    assert data["events"] == [{"step": "searched"}]
    assert data["output"] == {"a": [1, 2]}
    assert data["outcome"] == "ok" and data["session_id"] == "s1"
    assert set(data) == {f.name for f in fields(Record)}


def test_summarize_counts_outcomes_and_latency() -> None:
    """summarize counts calls per outcome and excludes throttled/payload_too_large from latency."""
    records = [rec("ok", 10), rec("ok", 20), rec("ok", 30), rec("agent_error", 40),
               rec("throttled", 1), rec("payload_too_large", 2)]
    s = summarize(records)
    assert s.calls == 6
    assert s.outcomes == {"agent_error": 1, "ok": 3, "payload_too_large": 1, "throttled": 1}
    assert (s.ok, s.failures) == (3, 3)
    assert s.latency_p50_ms == pytest.approx(20, rel=0.01)  # of [10, 20, 30, 40], from the 1 % histogram
    assert s.latency_p95_ms == 40
    assert s.latency_p99_ms == 40
    assert s.latency_max_ms == 40
    assert (s.pattern, s.profile) == ("serverless", "aws-lambda")


def test_summarize_warmups_cost_but_do_not_count() -> None:
    """Warm-up pings are excluded from calls, outcomes, latency and tokens but their cost is included."""
    records = [
        rec("ok", 10, cold_start=True, cost=Cost(compute_usd=0.002), input_tokens=5, output_tokens=7),
        rec("ok", 30, cost=Cost(compute_usd=0.002), input_tokens=5, output_tokens=7),
        rec("ok", 999, cold_start=True, trigger="warmup", cost=Cost(compute_usd=0.001), input_tokens=100),
        rec("timeout", 999, trigger="warmup", cost=Cost(compute_usd=0.001)),
    ]
    s = summarize(records, fixed_cost_usd=0.004)
    assert s.calls == 2
    assert s.outcomes == {"ok": 2}
    assert s.warmup_pings == 2
    assert s.latency_max_ms == 30
    assert s.cold_starts == 1
    assert s.cold_start_share == 0.5
    assert s.cost_usd == pytest.approx(0.006)
    assert s.fixed_cost_usd == 0.004
    assert s.cost_per_1k_usd == pytest.approx((0.006 + 0.004) / 2 * 1000)
    assert (s.input_tokens, s.output_tokens) == (10, 14)


def test_summarize_nothing() -> None:
    """A summary of no records is all zeros (no division by zero) and keeps the given names."""
    s = summarize([], pattern="serverless", profile="aws-lambda")
    assert (s.calls, s.ok, s.failures, s.cold_start_share, s.cost_per_1k_usd) == (0, 0, 0, 0.0, 0.0)
    assert s.latency_p50_ms == s.latency_max_ms == 0.0
    assert (s.pattern, s.profile) == ("serverless", "aws-lambda")


def test_summary_to_json_is_serializable() -> None:
    """Summary.to_json round-trips through json.dumps."""
    s = summarize([rec("ok", 10), rec("oom", 20)])
    data = json.loads(json.dumps(s.to_json()))
    assert data["outcomes"] == {"ok": 1, "oom": 1}
    assert data["calls"] == 2


def test_outcome_literal_matches_outcomes() -> None:
    """Every OUTCOMES entry is a snake_case identifier, as reports and headers use it."""
    assert all(re.fullmatch(r"[a-z_]+", o) for o in OUTCOMES)


def test_amended_is_replace_without_init() -> None:
    """amended() builds the same Record as dataclasses.replace, leaves the original alone, refuses unknown fields."""
    rec = Record(ok=True, outcome="ok", latency_ms=3.0, invocation_id="i", trace_id="t", events=("a",))
    fast = amended(rec, latency_ms=5.0, region="us-east-1")
    assert fast == dataclasses.replace(rec, latency_ms=5.0, region="us-east-1")
    assert hash(fast) == hash(dataclasses.replace(rec, latency_ms=5.0, region="us-east-1"))
    assert (rec.latency_ms, rec.region) == (3.0, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.ok = False  # type: ignore[misc]
    with pytest.raises(TypeError, match="latency"):
        amended(rec, latency=1.0)


def test_new_record_is_the_constructor_without_init() -> None:
    """new_record() builds what the constructor builds (defaults filled in), frozen; it refuses unknown fields."""
    kw = {"latency_ms": 3.0, "invocation_id": "i", "trace_id": "t", "events": ("a",), "cost": Cost(1.0, 2.0, 3.0)}
    fast = new_record(ok=True, outcome="ok", **kw)
    assert fast == Record(ok=True, outcome="ok", **kw)
    assert hash(fast) == hash(Record(ok=True, outcome="ok", **kw))
    assert new_record(ok=False, outcome="crash") == Record(ok=False, outcome="crash")
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.ok = False  # type: ignore[misc]
    with pytest.raises(TypeError, match="latency"):
        new_record(ok=True, outcome="ok", latency=1.0)
