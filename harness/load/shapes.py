"""Traffic shapes as pure functions of time: how many users should run ``t`` seconds into a test.

Each shape is drawn over the run time ``T`` (``--run-time``; 60 s when none is given, and then the shape
repeats) and peaks at ``--users``. ``floor`` is the number of patterns under test: a shape that keeps "a
little traffic" keeps one user per pattern, since Locust spreads users over the user classes.

- ``steady``: ``--users`` for the whole run, ramped at ``--spawn-rate``.
- ``burst``: a warm-up trickle (first 20%), then nothing (20-40%: instances idle and expire), then every
  user at once (40-100%): what makes cold starts, throttling and autoscaler lag show.
- ``diurnal``: one day compressed into ``T``: night at the ends, a cosine peak at noon.
- ``ramp``: ramp to saturation: ten equal steps from ``floor`` to ``--users``, to find where latency or
  failures turn.

The Locust ``LoadTestShape`` wrapper is ``harness.load.users.HarnessShape``; this module imports no Locust.
"""

from __future__ import annotations

import math

__all__ = ["DEFAULT_PERIOD_S", "SHAPES", "target"]

SHAPES = ("steady", "burst", "diurnal", "ramp")
DEFAULT_PERIOD_S = 60.0
BURST_WARM, BURST_IDLE_END = 0.2, 0.4


def target(shape: str, t: float, *, run_time: float | None, peak: int, spawn_rate: float,
           floor: int = 1) -> tuple[int, float] | None:
    """``(users, spawn_rate)`` at ``t`` seconds, or None once the run is over."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; expected one of: {', '.join(SHAPES)}")
    period = run_time if run_time else DEFAULT_PERIOD_S
    if run_time and t >= run_time:
        return None
    peak = max(peak, floor)
    # Shapes that jump spawn everyone within a second: Locust's shape loop blocks while it ramps, so a
    # slow spawn rate would smear a spike into a ramp.
    jump = float(max(peak, spawn_rate, 1))
    if shape == "steady":
        return peak, max(spawn_rate, 1.0)
    phase = (t % period) / period
    if shape == "burst":
        if phase < BURST_WARM:
            return floor, jump
        if phase < BURST_IDLE_END:
            return 0, jump
        return peak, jump
    if shape == "diurnal":
        level = (1 - math.cos(2 * math.pi * phase)) / 2  # 0 at midnight, 1 at noon
        return max(floor, round(floor + (peak - floor) * level)), jump
    step = min(9, int(phase * 10))  # ramp: 10 steps, the last at the full count
    return round(floor + (peak - floor) * (step + 1) / 10), jump
