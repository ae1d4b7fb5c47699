"""Baseline comparison: deltas per pattern and metric, and the ``--fail-on`` rules that gate CI.

Grammar of a fail-on spec (comma-separated rules; the same text for ``harness compare --fail-on`` and the
plugin's ``--harness-fail-on``)::

    RULE   := [PATTERN "."] METRIC ":" "+" NUMBER "%"        regression vs the baseline, relative
            | [PATTERN "."] METRIC ":" "+" VALUE             regression vs the baseline, absolute
            | [PATTERN "."] METRIC ("<" | "<=" | "=") VALUE  an absolute SLO on the new report alone
    METRIC := p50 | p95 | p99 | max | cost | cost_per_1k | failures | failure_rate | cold_starts
            | cold_start_share | llm_calls | tokens
    VALUE  := NUMBER with a unit for its metric: 250ms / 2s (latency), $0.50 (cost per 1k calls),
              5% (rates), a plain number (counts; latency in ms; cost in USD)

e.g. ``p95:+20%,cost:+10%,failures:+0`` or ``p95<2s,cost_per_1k<$0.50,failures=0``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from emulators.errors import ConfigError
from emulators.profiles import PATTERNS

__all__ = ["DEFAULT_FAIL_ON", "GRAMMAR", "Check", "Comparison", "Rule", "compare", "parse_fail_on"]

DEFAULT_FAIL_ON = "p95:+20%,cost:+10%,failures:+0"
GRAMMAR = ("comma-separated rules: METRIC:+N% or METRIC:+VALUE (vs the baseline), or METRIC<VALUE, "
           "METRIC<=VALUE, METRIC=VALUE (absolute SLOs), optionally PATTERN.METRIC; metrics: "
           "p50, p95, p99, max, cost, cost_per_1k, failures, failure_rate, cold_starts, cold_start_share, "
           "llm_calls, tokens; e.g. 'p95:+20%,cost:+10%,failures:+0' or 'p95<2s,cost_per_1k<$0.50,failures=0'")

# metric -> (kind, how to read it from a summary)
_METRICS: dict[str, tuple[str, str]] = {
    "p50": ("ms", "latency_p50_ms"), "p95": ("ms", "latency_p95_ms"), "p99": ("ms", "latency_p99_ms"),
    "max": ("ms", "latency_max_ms"), "cost": ("usd", "cost_per_1k_usd"), "cost_per_1k": ("usd", "cost_per_1k_usd"),
    "failures": ("count", "failures"), "failure_rate": ("ratio", "failure_rate"),
    "cold_starts": ("count", "cold_starts"), "cold_start_share": ("ratio", "cold_start_share"),
    "llm_calls": ("count", "llm_calls"), "tokens": ("count", "tokens"),
}
# The deltas always shown, whatever the rules.
SHOWN = ("p50", "p95", "p99", "cost_per_1k", "failures", "cold_start_share")
_RULE = re.compile(r"^\s*(?:(?P<pattern>[a-z]+)\.)?(?P<metric>[a-z0-9_]+)\s*"
                   r"(?:(?P<colon>:)\s*\+\s*(?P<delta>[^\s]+)|(?P<op><=|<|=)\s*(?P<value>[^\s]+))\s*$")


def _fail(text: str, why: str) -> ConfigError:
    return ConfigError(f"bad --fail-on rule {text!r}: {why}; accepted grammar: {GRAMMAR}")


def _number(text: str, kind: str, rule: str) -> float:
    t = text.strip().lower()
    scale = 1.0
    if kind == "ms" and t.endswith("ms"):
        t = t[:-2]
    elif kind == "ms" and t.endswith("s"):
        t, scale = t[:-1], 1000.0
    elif kind == "usd":
        t = t.removeprefix("$").removesuffix("$").removesuffix("usd")
    elif kind == "ratio" and t.endswith("%"):
        t, scale = t[:-1], 0.01
    try:
        value = float(t) * scale
    except ValueError:
        raise _fail(rule, f"{text!r} is not a number{_unit_hint(kind)}") from None
    if not math.isfinite(value) or value < 0:
        raise _fail(rule, f"{text!r} must be a finite number of zero or more")
    return value


def _unit_hint(kind: str) -> str:
    return {"ms": " (latency: 250ms, 2s, or milliseconds)", "usd": " (cost: $0.50)",
            "ratio": " (a rate: 5% or 0.05)", "count": " (a count)"}[kind]


@dataclass(frozen=True)
class Rule:
    """One parsed fail-on rule."""

    text: str
    metric: str
    pattern: str | None = None
    relative: float | None = None  # +N% as a fraction
    absolute: float | None = None  # +VALUE in the metric's unit
    op: str | None = None  # an SLO: "<", "<=", "="
    limit: float | None = None

    @property
    def needs_baseline(self) -> bool:
        """True for a regression rule (it compares against the baseline), False for an SLO."""
        return self.op is None


def parse_fail_on(spec: str) -> list[Rule]:
    """Parse a fail-on spec; raises ConfigError quoting the grammar for anything it cannot read."""
    rules: list[Rule] = []
    for part in (p for p in spec.split(",") if p.strip()):
        m = _RULE.match(part)
        if m is None:
            raise _fail(part.strip(), "not of the form METRIC:+N%, METRIC:+VALUE or METRIC<VALUE")
        metric, text = m["metric"], part.strip()
        if metric not in _METRICS:
            raise _fail(text, f"unknown metric {metric!r}")
        if m["pattern"] is not None and m["pattern"] not in PATTERNS:
            raise _fail(text, f"unknown pattern {m['pattern']!r} (patterns: {', '.join(PATTERNS)})")
        kind = _METRICS[metric][0]
        if m["colon"]:
            delta = m["delta"]
            # "+N%" is always relative to the baseline (for a rate too: "+0.05" is five points absolute).
            if delta.endswith("%"):
                rules.append(Rule(text, metric, m["pattern"], relative=_number(delta[:-1], "count", text) / 100))
            else:
                rules.append(Rule(text, metric, m["pattern"], absolute=_number(delta, kind, text)))
        else:
            rules.append(Rule(text, metric, m["pattern"], op=m["op"], limit=_number(m["value"], kind, text)))
    if not rules:
        raise _fail(spec, "no rules given")
    return rules


def metric_value(summary: Mapping[str, Any], metric: str) -> float:
    """A metric of one summary (JSON form), in its unit: ms, USD per 1k calls, a count or a fraction."""
    key = _METRICS[metric][1]
    if key == "failure_rate":
        calls = summary.get("calls", 0)
        return float(summary.get("failures", 0)) / calls if calls else 0.0
    if key == "tokens":
        return float(summary.get("input_tokens", 0) + summary.get("output_tokens", 0))
    return float(summary.get(key, 0.0))


def fmt_value(metric: str, v: float | None) -> str:
    """A metric value for people."""
    if v is None:
        return "-"
    kind = _METRICS[metric][0]
    if kind == "ms":
        return f"{v:,.1f} ms" if v < 10_000 else f"{v / 1000:,.2f} s"
    if kind == "usd":
        return f"${v:,.4f}"
    if kind == "ratio":
        return f"{v:.1%}"
    return f"{v:,.0f}"


@dataclass(frozen=True)
class Check:
    """A rule applied to one pattern."""

    pattern: str
    rule: Rule
    baseline: float | None
    current: float
    passed: bool

    @property
    def message(self) -> str:
        """What the check found, in one line."""
        m, cur = self.rule.metric, fmt_value(self.rule.metric, self.current)
        verdict = "ok" if self.passed else "REGRESSION"
        if self.rule.op is not None:
            return f"{verdict}: {self.pattern} {m} = {cur}, SLO {m}{self.rule.op}{fmt_value(m, self.rule.limit)}"
        base = fmt_value(m, self.baseline)
        change = _pct(self.baseline, self.current)
        allowed = (f"+{self.rule.relative:.0%}" if self.rule.relative is not None
                   else f"+{fmt_value(m, self.rule.absolute)}")
        return f"{verdict}: {self.pattern} {m} {base} -> {cur} ({change}), allowed {allowed} ({self.rule.text})"


def _pct(old: float | None, new: float) -> str:
    if old is None:
        return "new"
    if old == 0:
        return "+0%" if new == 0 else "from 0"
    return f"{(new - old) / old:+.1%}"


@dataclass(frozen=True)
class Comparison:
    """Deltas and checks of a new report against a baseline (or SLOs alone, without one)."""

    current: Mapping[str, Mapping[str, Any]]
    baseline: Mapping[str, Mapping[str, Any]] | None
    checks: tuple[Check, ...]

    @property
    def regressions(self) -> list[Check]:
        """Checks that failed."""
        return [c for c in self.checks if not c.passed]

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return not self.regressions

    @property
    def missing(self) -> list[str]:
        """Patterns in the baseline that the new report does not have."""
        return [p for p in (self.baseline or {}) if p not in self.current]

    def table(self) -> Table:
        """Deltas per pattern and metric, as a rich table."""
        t = Table(title="Baseline comparison" if self.baseline is not None else "SLO checks",
                  title_justify="left")
        for col in ("pattern", "metric", "baseline", "current", "change"):
            t.add_column(col, justify="left" if col in ("pattern", "metric") else "right")
        for pattern, summary in self.current.items():
            base = (self.baseline or {}).get(pattern)
            for m in SHOWN:
                old = None if base is None else metric_value(base, m)
                new = metric_value(summary, m)
                t.add_row(pattern, m, fmt_value(m, old), fmt_value(m, new), _pct(old, new))
        return t

    def markdown(self) -> str:
        """The deltas and the failed checks as Markdown."""
        lines = ["| pattern | metric | baseline | current | change |", "|---|---|---:|---:|---:|"]
        for pattern, summary in self.current.items():
            base = (self.baseline or {}).get(pattern)
            for m in SHOWN:
                old = None if base is None else metric_value(base, m)
                new = metric_value(summary, m)
                lines.append(f"| {pattern} | {m} | {fmt_value(m, old)} | {fmt_value(m, new)} | {_pct(old, new)} |")
        lines.append("")
        lines += [f"- **{c.message}**" for c in self.regressions] or ["All checks passed."]
        return "\n".join(lines) + "\n"


def _passes(rule: Rule, old: float | None, new: float) -> bool:
    eps = 1e-12  # float noise from summing costs must not count as a regression
    if rule.op is not None:
        assert rule.limit is not None
        return {"<": new < rule.limit, "<=": new <= rule.limit + eps, "=": abs(new - rule.limit) <= eps}[rule.op]
    if old is None:
        return True  # a pattern new in this run has nothing to regress from
    if rule.relative is not None:
        return new <= old * (1 + rule.relative) + eps
    assert rule.absolute is not None
    return new - old <= rule.absolute + eps


def compare(current: Mapping[str, Mapping[str, Any]], baseline: Mapping[str, Mapping[str, Any]] | None,
            rules: list[Rule]) -> Comparison:
    """Apply ``rules`` to every pattern of ``current`` (report ``summaries``) against ``baseline``'s."""
    if baseline is None and any(r.needs_baseline for r in rules):
        needing = ", ".join(r.text for r in rules if r.needs_baseline)
        raise ConfigError(f"the rules {needing} compare against a baseline; give one (--baseline / "
                          f"--harness-baseline) or use absolute SLOs like p95<2s")
    checks: list[Check] = []
    for pattern, summary in current.items():
        base = (baseline or {}).get(pattern)
        for rule in rules:
            if rule.pattern is not None and rule.pattern != pattern:
                continue
            new = metric_value(summary, rule.metric)
            old = None if base is None else metric_value(base, rule.metric)
            checks.append(Check(pattern, rule, old, new, _passes(rule, old, new)))
    return Comparison(current, baseline, tuple(checks))
