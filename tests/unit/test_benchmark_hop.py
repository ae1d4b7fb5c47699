"""The benchmarks' instance-hop floor: real frames to a forked child and back, the child reaped."""

from __future__ import annotations

import psutil

from benchmarks.hop import hop_floor


def test_hop_floor_times_every_round_trip_and_reaps_its_child() -> None:
    """Each of the n round trips is timed (warm-up excluded), CPU per trip is reported, no child is left."""
    result = hop_floor(50, warmup=5)
    assert len(result.samples_ms) == 50 and all(s > 0 for s in result.samples_ms)
    assert result.parent_cpu_us >= 0 and result.to_json()["samples"] == 50
    assert psutil.Process().children() == []
