"""The harness's view of a load test, per pattern, as Locust users see it in responses.

Every finished invocation a user sees (``x-harness-outcome``, ``-cold-start``, ``-instance``,
``-latency-ms`` headers, and the cost and tokens of the Result body) is observed here. Workers send what
they observed since their last report (``delta``) and the master ``merge``s it, so the master's figures are
the sum over workers. Latencies are kept as a histogram of rounded platform milliseconds (as Locust rounds
its own), so a report stays small however long the run. Live instance counts come from the gateways'
``/stats`` (``set_live``). Pure data: no Locust import, so it is unit tested without gevent.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["HarnessStats", "PatternStats", "round_ms"]


def round_ms(ms: float) -> int:
    """Two significant digits above 100 ms, as Locust rounds response times (bounded histogram size)."""
    if ms < 100:
        return round(ms)
    if ms < 1000:
        return int(round(ms, -1))
    if ms < 10000:
        return int(round(ms, -2))
    return int(round(ms, -3))


@dataclass
class PatternStats:
    """What Locust's users saw of one pattern's invocations."""

    calls: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    cold_starts: int = 0
    latency: Counter[int] = field(default_factory=Counter)
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    llm_calls: int = 0
    instances: set[str] = field(default_factory=set)

    def percentile(self, q: float) -> float:
        """The q-th (0-100) percentile of the platform latency, nearest rank over the histogram."""
        total = sum(self.latency.values())
        if not total:
            return 0.0
        rank, seen = max(1, math.ceil(q / 100 * total)), 0
        for ms in sorted(self.latency):
            seen += self.latency[ms]
            if seen >= rank:
                return float(ms)
        return float(max(self.latency))

    def to_wire(self) -> dict[str, Any]:
        """A msgpack/JSON-safe dict (Locust's worker messages carry it)."""
        return {"calls": self.calls, "outcomes": dict(self.outcomes), "cold_starts": self.cold_starts,
                "latency": [[ms, n] for ms, n in self.latency.items()], "cost_usd": self.cost_usd,
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "llm_calls": self.llm_calls, "instances": sorted(self.instances)}

    def merge(self, wire: dict[str, Any]) -> None:
        """Add a ``to_wire`` dict (a worker's delta) into these figures."""
        self.calls += int(wire.get("calls", 0))
        self.outcomes.update({str(k): int(v) for k, v in wire.get("outcomes", {}).items()})
        self.cold_starts += int(wire.get("cold_starts", 0))
        for ms, n in wire.get("latency", []):
            self.latency[int(ms)] += int(n)
        self.cost_usd += float(wire.get("cost_usd", 0.0))
        self.input_tokens += int(wire.get("input_tokens", 0))
        self.output_tokens += int(wire.get("output_tokens", 0))
        self.llm_calls += int(wire.get("llm_calls", 0))
        self.instances.update(str(i) for i in wire.get("instances", []))


class HarnessStats:
    """Per-pattern harness figures of one Locust process (or, on the master, of every worker)."""

    def __init__(self, *, track_delta: bool = False) -> None:
        self.track_delta = track_delta  # only workers report deltas; elsewhere it would only grow
        self.patterns: dict[str, PatternStats] = {}
        self.live: dict[str, dict[str, Any]] = {}  # pattern -> the gateway's /stats (instances, profile...)
        self.peak_live: Counter[str] = Counter()
        self._delta: dict[str, PatternStats] = {}

    def observe(self, pattern: str, outcome: str, *, cold_start: bool = False, instance: str | None = None,
                latency_ms: float = 0.0, cost_usd: float = 0.0, input_tokens: int = 0, output_tokens: int = 0,
                llm_calls: int = 0) -> None:
        """One finished invocation as a user saw it."""
        for book in (self.patterns, self._delta) if self.track_delta else (self.patterns,):
            s = book.setdefault(pattern, PatternStats())
            s.calls += 1
            s.outcomes[outcome] += 1
            s.cold_starts += cold_start
            if outcome not in ("throttled", "payload_too_large"):  # refused calls have no latency to speak of
                s.latency[round_ms(latency_ms)] += 1
            s.cost_usd += cost_usd
            s.input_tokens += input_tokens
            s.output_tokens += output_tokens
            s.llm_calls += llm_calls
            if instance:
                s.instances.add(instance)

    def delta(self) -> dict[str, dict[str, Any]]:
        """What was observed since the last call (a worker's report to the master); resets the delta."""
        out = {p: s.to_wire() for p, s in self._delta.items()}
        self._delta = {}
        return out

    def merge(self, wire: dict[str, dict[str, Any]]) -> None:
        """Add a worker's delta."""
        for pattern, figures in wire.items():
            self.patterns.setdefault(pattern, PatternStats()).merge(figures)

    def set_live(self, pattern: str, stats: dict[str, Any]) -> None:
        """The latest ``/stats`` of a pattern's gateway."""
        self.live[pattern] = stats
        n = int(stats.get("instances", 0))
        self.peak_live[pattern] = max(self.peak_live[pattern], n)

    def reset(self) -> None:
        """Forget everything (a new test run from the web UI)."""
        self.patterns.clear()
        self.live.clear()
        self.peak_live.clear()
        self._delta = {}

    def rows(self, patterns: list[str] | None = None) -> list[dict[str, Any]]:
        """One table row per pattern: what the "Patterns" web UI tab shows."""
        names = patterns if patterns is not None else sorted(set(self.patterns) | set(self.live))
        rows = []
        for p in names:
            s = self.patterns.get(p, PatternStats())
            live = self.live.get(p, {})
            failed = {k: v for k, v in sorted(s.outcomes.items()) if k != "ok"}
            rows.append({
                "pattern": p,
                "profile": live.get("profile", ""),
                "calls": s.calls,
                "ok": s.outcomes.get("ok", 0),
                "failures": sum(failed.values()),
                "failures_by_kind": ", ".join(f"{k} {v}" for k, v in failed.items()) or "-",
                "cold_start_share": f"{100.0 * s.cold_starts / s.calls:.1f}%" if s.calls else "0.0%",
                "cold_starts": s.cold_starts,
                "p50_ms": round(s.percentile(50), 1),
                "p95_ms": round(s.percentile(95), 1),
                "cost_per_1k_usd": round(1000.0 * s.cost_usd / s.calls, 6) if s.calls else 0.0,
                "llm_tokens": s.input_tokens + s.output_tokens,
                "instances_seen": len(s.instances),
                "live_instances": int(live.get("instances", 0)),
                "peak_live_instances": self.peak_live.get(p, 0),
            })
        return rows

    def to_json(self) -> dict[str, Any]:
        """Everything, for the JSON report's ``run.load.locust`` section."""
        return {p: {**s.to_wire(), "latency_p95_ms": s.percentile(95), "instances": len(s.instances),
                    "peak_live_instances": self.peak_live.get(p, 0)} for p, s in sorted(self.patterns.items())}
