"""Summaries kept as records arrive: exact counts and sums, latency percentiles from a mergeable histogram.

A long run (a million calls) cannot re-read every record to answer ``/stats``, the live status line or the
Locust tab, so each deployment keeps a ``Tally`` that every record updates once (a few microseconds) and
that turns into a ``Summary`` in time independent of the number of calls.

Counts, costs, tokens and cold starts are exact. Latency percentiles come from ``Histogram``, a
logarithmic-bucket histogram (the scheme of DDSketch): a value ``v > 0`` falls in bucket
``ceil(log_gamma(v))`` with ``gamma = (1 + a) / (1 - a)``, and the bucket answers ``2 gamma^i / (gamma + 1)``,
which is within ``a`` relative error of every value in it; ``a = RELATIVE_ERROR = 1 %``. The answer is
clamped to the exact minimum and maximum seen, so a run whose calls all took the same time reports it
exactly, and ``latency_max_ms`` is exact. Two histograms (two engine hosts, two processes) merge by adding
bucket counts, so a merged summary equals the summary of the same records kept in one place.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .records import Record, ReplicaPoint, Summary

__all__ = ["NOT_TIMED", "RELATIVE_ERROR", "Histogram", "Tally"]

RELATIVE_ERROR = 0.01  # the most a reported percentile differs from a recorded value, relatively
_GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
_LOG_GAMMA = math.log(_GAMMA)
_TINY = 1e-9  # values at or below this (0 ms: a refused call) share one bucket that answers the minimum
NOT_TIMED = frozenset({"throttled", "payload_too_large"})  # refused before running: not in latency figures


class Histogram:
    """Counts of values in logarithmic buckets (<= 1 % relative error), with exact count, sum, min and max."""

    __slots__ = ("buckets", "count", "max", "min", "total", "zeros")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.zeros = 0
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, value: float, times: int = 1) -> None:
        """Count ``value`` (``times`` may be negative to take a value back out; min and max stay)."""
        self.count += times
        self.total += value * times
        if times > 0:
            if value < self.min:
                self.min = value
            if value > self.max:
                self.max = value
        if value <= _TINY:
            self.zeros += times
            return
        i = math.ceil(math.log(value) / _LOG_GAMMA)
        self.buckets[i] = self.buckets.get(i, 0) + times

    def merge(self, other: Histogram) -> None:
        """Add ``other``'s counts to these."""
        for i, n in other.buckets.items():
            self.buckets[i] = self.buckets.get(i, 0) + n
        self.zeros += other.zeros
        self.count += other.count
        self.total += other.total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def percentile(self, q: float) -> float:
        """The q-th percentile (0-100) by nearest rank, within 1 %; 0.0 when empty."""
        if self.count <= 0:
            return 0.0
        rank = max(1, math.ceil(q / 100 * self.count))
        if rank >= self.count:  # the last rank is the maximum, the first the minimum: both known exactly
            return self.max
        if rank == 1:
            return self.min
        seen = self.zeros
        if rank <= seen:
            return max(self.min, 0.0) if self.min <= _TINY else self.min
        value = self.max
        for i in sorted(self.buckets):
            seen += self.buckets[i]
            if seen >= rank:
                value = 2 * _GAMMA ** i / (_GAMMA + 1)
                break
        return min(max(value, self.min), self.max)

    def to_json(self) -> dict[str, Any]:
        """JSON form (bucket keys as strings), for a store's summary and for merging across processes."""
        return {"buckets": {str(i): n for i, n in self.buckets.items() if n}, "zeros": self.zeros,
                "count": self.count, "total": self.total,
                "min": None if self.count == 0 else self.min, "max": None if self.count == 0 else self.max}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Histogram:
        """The inverse of ``to_json``."""
        h = cls()
        h.buckets = {int(i): int(n) for i, n in d.get("buckets", {}).items()}
        h.zeros, h.count, h.total = int(d.get("zeros", 0)), int(d.get("count", 0)), float(d.get("total", 0.0))
        h.min = math.inf if d.get("min") is None else float(d["min"])
        h.max = -math.inf if d.get("max") is None else float(d["max"])
        return h


@dataclass
class _Region:
    latency: Histogram = field(default_factory=Histogram)
    client_rtt_ms: float = 0.0
    network_ms: float = 0.0
    llm_calls: int = 0


class Tally:
    """Everything a Summary says about records, kept up to date one record at a time."""

    def __init__(self) -> None:
        self.pattern = ""
        self.profile = ""
        self.calls = 0
        self.pings = 0
        self.outcomes: Counter[str] = Counter()
        self.latency = Histogram()
        self.cold = 0
        self.cost_usd = 0.0  # every record, pings included
        self.compute_usd = 0.0  # every record, pings included
        self.input_tokens = 0
        self.output_tokens = 0
        self.llm_calls = 0
        self.llm_usd = 0.0
        self.embedding_tokens = 0
        self.memory_ops = 0
        self.regions: dict[str, _Region] = {}
        self.min_headroom: dict[str, float] = {}

    def add(self, r: Record, times: int = 1) -> None:
        """Count one record (``times=-1`` takes one back out: a record relabelled after it was counted)."""
        cost = r.cost
        self.cost_usd += cost.total_usd * times
        self.compute_usd += cost.compute_usd * times
        if r.trigger != "invoke":
            self.pings += times
            return
        if not self.pattern:
            self.pattern, self.profile = r.pattern, r.profile
        self.calls += times
        self.outcomes[r.outcome] += times
        if self.outcomes[r.outcome] == 0:
            del self.outcomes[r.outcome]
        if r.cold_start:
            self.cold += times
        self.input_tokens += r.input_tokens * times
        self.output_tokens += r.output_tokens * times
        self.llm_calls += r.llm_calls * times
        self.llm_usd += cost.llm_usd * times
        self.embedding_tokens += r.embedding_tokens * times
        self.memory_ops += r.memory_ops * times
        if r.outcome in NOT_TIMED:
            return
        self.latency.add(r.latency_ms, times)
        if r.caller_region is not None:
            reg = self.regions.get(r.caller_region)
            if reg is None:
                reg = self.regions[r.caller_region] = _Region()
            reg.latency.add(r.latency_ms, times)
            reg.client_rtt_ms += r.client_rtt_ms * times
            reg.network_ms += r.network_ms * times
            reg.llm_calls += r.llm_calls * times
        if r.ok and times > 0 and (r.cpu_limit_ms or r.memory_cap_mb or r.subrequest_limit):
            for k, v in r.headroom().items():
                self.min_headroom[k] = min(v, self.min_headroom.get(k, v))

    def add_all(self, records: Iterable[Record]) -> Tally:
        """Count every record; returns self."""
        for r in records:
            self.add(r)
        return self

    def merge(self, other: Tally) -> None:
        """Add ``other``'s figures to these (two hosts' tallies make the tally of all their records)."""
        if not self.pattern:
            self.pattern, self.profile = other.pattern, other.profile
        self.calls += other.calls
        self.pings += other.pings
        self.outcomes.update(other.outcomes)
        self.latency.merge(other.latency)
        self.cold += other.cold
        self.cost_usd += other.cost_usd
        self.compute_usd += other.compute_usd
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.llm_calls += other.llm_calls
        self.llm_usd += other.llm_usd
        self.embedding_tokens += other.embedding_tokens
        self.memory_ops += other.memory_ops
        for name, reg in other.regions.items():
            mine = self.regions.setdefault(name, _Region())
            mine.latency.merge(reg.latency)
            mine.client_rtt_ms += reg.client_rtt_ms
            mine.network_ms += reg.network_ms
            mine.llm_calls += reg.llm_calls
        for k, v in other.min_headroom.items():
            self.min_headroom[k] = min(v, self.min_headroom.get(k, v))

    def summary(self, *, pattern: str = "", profile: str = "", fixed_cost_usd: float = 0.0,
                busy_cost_usd: float | None = None, idle_cost_usd: float | None = None, peak_replicas: int = 0,
                replica_seconds: float = 0.0, replica_timeline: Sequence[ReplicaPoint] = ()) -> Summary:
        """The Summary of the records counted so far (see ``records.summarize`` for the arguments)."""
        calls, ok = self.calls, self.outcomes.get("ok", 0)
        lat = self.latency
        return Summary(
            pattern=pattern or self.pattern,
            profile=profile or self.profile,
            calls=calls,
            outcomes=dict(sorted(self.outcomes.items())),
            ok=ok,
            failures=calls - ok,
            latency_p50_ms=lat.percentile(50),
            latency_p95_ms=lat.percentile(95),
            latency_p99_ms=lat.percentile(99),
            latency_max_ms=lat.max if lat.count else 0.0,
            cold_starts=self.cold,
            cold_start_share=self.cold / calls if calls else 0.0,
            cost_usd=self.cost_usd,
            fixed_cost_usd=fixed_cost_usd,
            cost_per_1k_usd=(self.cost_usd + fixed_cost_usd) / calls * 1000 if calls else 0.0,
            warmup_pings=self.pings,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            llm_calls=self.llm_calls,
            llm_cost_usd=self.llm_usd,
            embedding_tokens=self.embedding_tokens,
            memory_ops=self.memory_ops,
            busy_cost_usd=self.compute_usd if busy_cost_usd is None else busy_cost_usd,
            idle_cost_usd=fixed_cost_usd if idle_cost_usd is None else idle_cost_usd,
            peak_replicas=peak_replicas,
            replica_seconds=replica_seconds,
            replica_timeline=tuple(replica_timeline),
            latency_by_region={
                name: {"calls": float(reg.latency.count), "p50_ms": reg.latency.percentile(50),
                       "p95_ms": reg.latency.percentile(95),
                       "client_rtt_ms": reg.client_rtt_ms / reg.latency.count,
                       "network_ms": reg.network_ms / reg.latency.count,
                       "llm_calls": reg.llm_calls / reg.latency.count}
                for name, reg in sorted(self.regions.items()) if reg.latency.count},
            min_headroom=dict(self.min_headroom),
        )
