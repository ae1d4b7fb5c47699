"""The throughput benchmark's CPU per request of the instances: counted per process."""

from __future__ import annotations

from benchmarks.throughput import _kids_delta


def test_a_process_that_ended_between_readings_takes_none_of_its_past_cpu_out() -> None:
    """Only what each process used between the readings counts: one that ended drops out, a new one counts whole."""
    before = {1: 10.0, 2: 5.0, 3: 7.0}  # 3: another target's idle instance, recycled before the second reading
    after = {1: 10.5, 2: 5.25, 4: 0.5}  # 4: started during the slice
    assert _kids_delta(before, after) == 0.5 + 0.25 + 0.5
