"""Summary statistics of timing samples (milliseconds), nearest-rank percentiles as the harness reports."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from emulators.records import percentile

__all__ = ["Stats", "ns_to_ms"]


def ns_to_ms(values: Sequence[int]) -> list[float]:
    """Nanosecond samples (``perf_counter_ns`` deltas) as milliseconds."""
    return [v / 1e6 for v in values]


@dataclass(frozen=True)
class Stats:
    """n, median, p90, p95, p99, max and mean of a list of millisecond samples."""

    n: int
    p50: float
    p90: float
    p95: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of(cls, ms: Sequence[float]) -> Stats:
        """Statistics of ``ms`` (all zeros for no samples)."""
        if not ms:
            return cls(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        return cls(len(ms), percentile(ms, 50), percentile(ms, 90), percentile(ms, 95),
                   percentile(ms, 99), max(ms),
                   statistics.fmean(ms))

    def to_json(self) -> dict[str, Any]:
        """JSON form (milliseconds)."""
        return asdict(self)
