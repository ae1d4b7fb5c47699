"""The platform timeline (issue 17): figures that must not move with ``time_scale`` or with the host.

- **daemon echo p50** at the virtual clock and ``time_scale`` 1 / 0.01 / 0.001: 50 sequential calls of
  ``fixtures/agents/echo.py`` on the daemon pattern (memory queue). Before the one timeline, the queue wait
  was read off wall time over ``time_scale``: 0.84 ms at 1, 1,091 ms at 0.001. Target: every figure within
  +1 ms of the ``time_scale=1`` one.
- **HPA burst, first scale-up**: 50 concurrent 20 s calls on ``k8s-hpa`` (min 1, max 10 replicas, target 5,
  5 per replica); the platform time of the first autoscaler sync that wants more than one replica, at the
  virtual clock and ``time_scale`` 0.1 / 0.01 / 0.002. Target: 15 s +/- 1 s (the HPA's first sync) at each.
- **A day of traffic**: 24 platform hours of a diurnal shape (rate = mean x (1 - 0.8 cos(2 pi t / 24 h)):
  a trough at midnight, a peak at noon), 50,000 tasks of an agent that waits 2 s on the LLM
  (``benchmarks/agents/llm_wait.py``), against ``k8s-hpa`` (1-10 replicas, target 2 per replica) on the
  virtual clock, arrivals placed deterministically at the quantiles of the shape. Reported: wall seconds
  (target < 60 on a 2-core machine), the compression (platform s per wall s), the replica timeline's peak
  and the bill (compute and LLM).
"""

from __future__ import annotations

import asyncio
import bisect
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import harness

from . import REPO_ROOT

__all__ = ["DayResult", "daemon_echo_p50", "day_of_traffic", "diurnal_arrivals", "hpa_first_scale_up"]

ECHO = f"{REPO_ROOT / 'fixtures' / 'agents' / 'echo.py'}:agent"
SLEEPER = f"{REPO_ROOT / 'fixtures' / 'agents' / 'sleeper.py'}:agent"
LLM_WAIT = f"{REPO_ROOT / 'benchmarks' / 'agents' / 'llm_wait.py'}:agent"
TWO_SECONDS = REPO_ROOT / "benchmarks" / "llm" / "two_seconds.toml"
DAEMON_SCALES: tuple[float | None, ...] = (None, 1.0, 0.01, 0.001)
HPA_SCALES: tuple[float | None, ...] = (None, 0.1, 0.01, 0.002)


def label(scale: float | None) -> str:
    """``virtual`` or the scale, for row names."""
    return "virtual" if scale is None else f"{scale:g}"


def daemon_echo_p50(scale: float | None, calls: int = 50) -> float:
    """Median latency (platform ms) of ``calls`` sequential echo tasks on the daemon pattern."""
    with harness.deploy(ECHO, pattern="daemon", time_scale=scale, gateway=False) as d:
        d.invoke({"q": "warm"})
        return statistics.median(d.invoke({"q": i}).latency_ms for i in range(calls))


def hpa_first_scale_up(scale: float | None) -> tuple[float, float]:
    """(platform s of the first sync wanting > 1 replica, wall s of the burst) for the HPA burst."""

    async def burst() -> tuple[float, float]:
        async with harness.adeploy(SLEEPER, pattern="container", profile="k8s-hpa", time_scale=scale, gateway=False,
                                   min_replicas=1, max_replicas=10, target_concurrency=5, replica_concurrency=5,
                                   timeout_s=300) as d:
            t0 = time.perf_counter()
            await asyncio.gather(*(d.invoke({"seconds": 20}) for _ in range(50)))
            wall = time.perf_counter() - t0
            first = next((p.t_s for p in d.summary().replica_timeline if p.event == "sync" and p.desired > 1),
                         math.nan)
            return first, wall

    return asyncio.run(burst())


def diurnal_arrivals(n: int, hours: float = 24.0, swing: float = 0.8, grid: int = 20_000) -> list[float]:
    """``n`` arrival times (platform s) at the quantiles of rate(t) = 1 - swing cos(2 pi t / T)."""
    period = hours * 3600.0
    ts = [period * i / grid for i in range(grid + 1)]
    cdf = [t - swing * period / (2 * math.pi) * math.sin(2 * math.pi * t / period) for t in ts]
    total = cdf[-1]
    out = []
    for i in range(n):
        target = (i + 0.5) / n * total
        k = min(max(1, bisect.bisect_left(cdf, target)), grid)
        lo, hi = cdf[k - 1], cdf[k]
        out.append(ts[k - 1] + (ts[k] - ts[k - 1]) * ((target - lo) / (hi - lo) if hi > lo else 0.0))
    return out


@dataclass
class DayResult:
    """What the day of traffic took and cost."""

    tasks: int
    platform_s: float
    wall_s: float
    ok: int
    outcomes: dict[str, int]
    latency_p50_ms: float
    latency_p95_ms: float
    peak_replicas: int
    replica_seconds: float
    compute_usd: float
    llm_usd: float
    timeline: list[dict[str, Any]] = field(default_factory=list)  # (t, replicas, desired) per sync, hourly

    @property
    def compression(self) -> float:
        """Platform seconds per wall second."""
        return self.platform_s / self.wall_s if self.wall_s else 0.0


def day_of_traffic(tasks: int = 50_000, hours: float = 24.0, progress: bool = True) -> DayResult:
    """24 platform hours of diurnal traffic against k8s-hpa on the virtual clock."""
    arrivals = diurnal_arrivals(tasks, hours)

    async def day() -> DayResult:
        async with harness.adeploy(LLM_WAIT, pattern="container", profile="k8s-hpa", gateway=False,
                                   llm_script=str(TWO_SECONDS), min_replicas=1, max_replicas=10,
                                   target_concurrency=2, timeout_s=60) as d:
            clock = d.clock
            t_start = clock.now()
            t0 = time.perf_counter()
            running: set[asyncio.Task[Any]] = set()
            next_report = 0.0
            for at in arrivals:
                gap = at - (clock.now() - t_start)
                if gap > 0:
                    await d.advance(gap)
                task = asyncio.create_task(d.invoke({"q": "hi"}))
                running.add(task)
                task.add_done_callback(running.discard)
                if progress and at >= next_report:
                    print(f"benchmarks: day of traffic: platform hour {at / 3600:4.1f}, "
                          f"{time.perf_counter() - t0:5.1f} s wall", file=sys.stderr, flush=True)
                    next_report += hours * 3600 / 8
            await asyncio.gather(*running)
            await d.advance(max(0.0, hours * 3600 - (clock.now() - t_start)))
            wall = time.perf_counter() - t0
            platform = clock.now() - t_start
            s = d.summary()
            records = d.records()
        syncs = [p for p in s.replica_timeline if p.event == "sync"]
        hourly = [{"t_h": round(p.t_s / 3600, 2), "replicas": p.replicas, "desired": p.desired}
                  for p in syncs[:: max(1, len(syncs) // int(hours))]]
        lat = sorted(r.latency_ms for r in records if r.ok)
        return DayResult(
            tasks=len(records), platform_s=platform, wall_s=wall, ok=s.ok, outcomes=dict(s.outcomes),
            latency_p50_ms=s.latency_p50_ms, latency_p95_ms=s.latency_p95_ms, peak_replicas=s.peak_replicas,
            replica_seconds=s.replica_seconds, compute_usd=s.busy_cost_usd + s.idle_cost_usd,
            llm_usd=s.llm_cost_usd, timeline=hourly if lat else [])

    return asyncio.run(day())
