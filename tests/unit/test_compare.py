"""Baseline comparison: the --fail-on grammar, relative and absolute thresholds, SLOs, and the messages."""

from __future__ import annotations

from typing import Any

import pytest

from emulators.errors import ConfigError
from harness.reports.compare import GRAMMAR, compare, parse_fail_on


def summary(p95: float = 100.0, cost: float = 0.2, failures: int = 0, calls: int = 100) -> dict[str, Any]:
    return {"calls": calls, "failures": failures, "latency_p50_ms": p95 / 2, "latency_p95_ms": p95,
            "latency_p99_ms": p95, "latency_max_ms": p95, "cost_per_1k_usd": cost, "cold_starts": 1,
            "cold_start_share": 0.01, "input_tokens": 10, "output_tokens": 5, "llm_calls": 1}


def test_the_default_rules_parse() -> None:
    """Relative, absolute and SLO rules parse into their kinds and units (2s is 2000 ms, $0.50 is 0.5)."""
    rel, absolute, slo = parse_fail_on("p95:+20%,failures:+0,cost_per_1k<$0.50")
    assert rel.relative == pytest.approx(0.2) and absolute.absolute == 0 and (slo.op, slo.limit) == ("<", 0.5)
    [lat] = parse_fail_on("serverless.p95<2s")
    assert (lat.pattern, lat.limit) == ("serverless", 2000.0)


@pytest.mark.parametrize("spec", ["p95>2s", "latency:+20%", "p95:+fast", "", "lamda.p95<2s", "p95<-1"])
def test_a_bad_spec_quotes_the_grammar(spec: str) -> None:
    """Anything unreadable is a ConfigError that states the accepted grammar."""
    with pytest.raises(ConfigError) as info:
        parse_fail_on(spec)
    assert GRAMMAR in str(info.value)


def test_p95_twice_the_baseline_is_a_regression_with_a_clear_message() -> None:
    """A p95 at twice the baseline's fails a +20% rule, and the message gives both values and the rule."""
    result = compare({"serverless": summary(p95=200)}, {"serverless": summary(p95=100)}, parse_fail_on("p95:+20%"))
    assert not result.ok
    assert result.regressions[0].message == (
        "REGRESSION: serverless p95 100.0 ms -> 200.0 ms (+100.0%), allowed +20% (p95:+20%)")


def test_within_the_threshold_passes() -> None:
    """A p95 10% above the baseline passes a +20% rule; an unchanged cost and failure count pass too."""
    result = compare({"serverless": summary(p95=110)}, {"serverless": summary(p95=100)},
                     parse_fail_on("p95:+20%,cost:+10%,failures:+0"))
    assert result.ok, [c.message for c in result.checks]


def test_one_new_failure_breaks_failures_plus_zero() -> None:
    """failures:+0 allows no new failure."""
    result = compare({"edge": summary(failures=1)}, {"edge": summary()}, parse_fail_on("failures:+0"))
    assert [c.pattern for c in result.regressions] == ["edge"]


def test_slos_need_no_baseline_but_regressions_do() -> None:
    """Absolute SLOs check the new report alone; a relative rule without a baseline is refused."""
    ok = compare({"serverless": summary(p95=1500, cost=0.4)}, None, parse_fail_on("p95<2s,cost_per_1k<$0.50"))
    assert ok.ok
    bad = compare({"serverless": summary(failures=2)}, None, parse_fail_on("failures=0"))
    assert "SLO failures=0" in bad.regressions[0].message
    with pytest.raises(ConfigError, match="compare against a baseline"):
        compare({"serverless": summary()}, None, parse_fail_on("p95:+20%"))


def test_a_pattern_scoped_rule_applies_to_that_pattern_only() -> None:
    """serverless.p95<... checks serverless and leaves the other patterns alone."""
    result = compare({"serverless": summary(p95=50), "container": summary(p95=5000)}, None,
                     parse_fail_on("serverless.p95<100ms"))
    assert result.ok and [c.pattern for c in result.checks] == ["serverless"]


def test_patterns_missing_from_the_run_are_noted() -> None:
    """A pattern in the baseline but not in the new report is listed, not silently ignored."""
    result = compare({"serverless": summary()}, {"serverless": summary(), "daemon": summary()},
                     parse_fail_on("p95:+20%"))
    assert result.missing == ["daemon"]
