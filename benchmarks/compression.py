"""Time compression: platform hours in wall seconds on the virtual clock, and how exact the reports stay.

Three scenarios, each timed with ``perf_counter`` around it:

- **daemon, 2 h task**: ``fixtures/agents/resumable.py`` with 12 steps of 600 platform s (a checkpoint
  after each) on the daemon pattern (2 workers, memory queue). Reported: the task record's ``latency_ms``
  (submit to end, queue wait included); nominal: 7,200 s.
- **Lambda 15-minute timeout**: ``fixtures/agents/sleeper.py`` asked to sleep 1,800 s on aws-lambda with
  ``timeout_s=900``, on a warm instance (a first call warms it). Reported: the ``timeout`` record's
  ``latency_ms``; nominal: 900 s.
- **HPA cycle**: the container pattern on k8s-hpa (1 to 20 replicas, 10 requests per replica, target 5)
  gets 50 concurrent 60 s requests; it scales up by the HPA rules, drains the work, and after the 300 s
  stabilization window scales back to 1. Reported: the replica timeline's platform times. Nominal: the
  autoscaler's 15 s sync period between syncs (their mean: a clock that drifts shows there; the jitter of
  single intervals, the event loop's wake-up noise magnified 1000x, is in the JSON), and 300 s from the
  last recommendation of the peak to the first scale-down. The error is the larger of the two. The cycle's
  platform length is from the first request to the sync that is back at one replica.

Compression = reported platform seconds / wall seconds (target >= 1000x). On the virtual clock nothing caps
it: the waits cost no wall time, so it is the platform length over the harness's own real work (before the
one timeline these ran at ``time_scale=0.001``, which made 1000x the ceiling). Error = |reported -
nominal| / nominal (target <= 5%).
"""

from __future__ import annotations

import itertools
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import harness

from . import REPO_ROOT

__all__ = ["CompressionResult", "daemon_two_hours", "hpa_cycle", "lambda_timeout"]

TIME_SCALE: float | None = None  # the virtual clock
RESUMABLE = f"{REPO_ROOT / 'fixtures' / 'agents' / 'resumable.py'}:agent"
SLEEPER = f"{REPO_ROOT / 'fixtures' / 'agents' / 'sleeper.py'}:agent"


@dataclass
class CompressionResult:
    """One scenario: wall seconds, reported and nominal platform seconds, and the error."""

    scenario: str
    wall_s: float
    reported_s: float
    nominal_s: float
    error: float  # relative, 0.01 = 1 %
    ok: bool
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def compression(self) -> float:
        """Reported platform seconds per wall second."""
        return self.reported_s / self.wall_s if self.wall_s else 0.0

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {**asdict(self), "compression": self.compression}


def daemon_two_hours() -> CompressionResult:
    """A 2-hour daemon task with 12 checkpoints."""
    with harness.deploy(RESUMABLE, pattern="daemon", time_scale=TIME_SCALE, workers=2, gateway=False) as d:
        t0 = time.perf_counter()
        r = d.invoke({"steps": 12, "step_s": 600})
        wall = time.perf_counter() - t0
    reported = r.latency_ms / 1000
    return CompressionResult("daemon 2 h task, 12 checkpoints", wall, reported, 7200.0,
                             abs(reported - 7200.0) / 7200.0, r.ok and r.output == {"steps": 12, "resumed_from": 0},
                             {"outcome": r.outcome, "attempts": r.attempts, "duration_s": r.duration_ms / 1000})


def lambda_timeout() -> CompressionResult:
    """The aws-lambda 15-minute limit firing on a warm instance."""
    with harness.deploy(SLEEPER, profile="aws-lambda", time_scale=TIME_SCALE, timeout_s=900, memory_mb=1769,
                        gateway=False) as d:
        d.invoke({"seconds": 0})  # warm the instance: the timed call pays no cold start
        t0 = time.perf_counter()
        r = d.invoke({"seconds": 1800})
        wall = time.perf_counter() - t0
    reported = r.latency_ms / 1000
    return CompressionResult("Lambda 15 min timeout", wall, reported, 900.0, abs(reported - 900.0) / 900.0,
                             r.outcome == "timeout" and not r.cold_start,
                             {"outcome": r.outcome, "cold_start": r.cold_start, "duration_s": r.duration_ms / 1000})


def hpa_cycle() -> CompressionResult:
    """An HPA scale-up under 50 concurrent 60 s requests, the drain, and the scale-down after the window."""
    kw: dict[str, Any] = {"pattern": "container", "profile": "k8s-hpa", "time_scale": TIME_SCALE,
                          "min_replicas": 1, "max_replicas": 20, "replica_concurrency": 10,
                          "target_concurrency": 5, "timeout_s": 900, "gateway": False}
    with harness.deploy(SLEEPER, **kw) as d:
        fleet: Any = d._async._emulator  # the container's ReplicaFleet: its platform clock
        t_start = fleet.elapsed()
        t0 = time.perf_counter()
        ids = [d.submit({"seconds": 60}) for _ in range(50)]
        results = [d.wait(i, 60) for i in ids]
        wall_end = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            syncs = [p for p in d.summary().replica_timeline if p.event == "sync"]
            if syncs and max(p.desired for p in syncs) > 1 and syncs[-1].replicas == 1 and syncs[-1].desired == 1:
                wall_end = time.perf_counter()
                break
            if TIME_SCALE is None:
                d.advance(1.0)  # idle platform time passes only when asked on the virtual clock
            else:
                time.sleep(0.001)
        timeline = d.summary().replica_timeline
        period = d.profile.autoscale_sync_period_s
        window = d.profile.scale_down_stabilization_s
    syncs = [p for p in timeline if p.event == "sync"]
    wall = (wall_end or time.perf_counter()) - t0
    done = wall_end is not None and all(r.ok for r in results)
    peak = max((p.desired for p in syncs), default=0)
    gaps = [b.t_s - a.t_s for a, b in itertools.pairwise(syncs)]
    mean_gap = statistics.fmean(gaps) if gaps else 0.0
    gap_error = abs(mean_gap - period) / period if gaps else 1.0
    jitter = statistics.fmean(abs(g - period) for g in gaps) if gaps else 0.0
    last_peak = max((p.t_s for p in syncs if p.raw_desired == peak), default=0.0)
    downs = [p.t_s for p in syncs if p.desired < peak and p.t_s > last_peak]
    window_reported = (min(downs) - last_peak) if downs else 0.0
    window_error = abs(window_reported - window) / window if window else 0.0
    end = next((p.t_s for p in reversed(syncs) if p.replicas == 1 and p.desired == 1), syncs[-1].t_s if syncs else 0)
    reported = end - t_start
    return CompressionResult(
        "HPA scale-up and down cycle", wall, reported, reported, max(gap_error, window_error), done,
        {"peak_replicas": peak, "syncs": len(syncs), "sync_period_s": period,
         "sync_interval_mean_s": mean_gap, "sync_interval_error": gap_error,
         "sync_interval_mean_abs_deviation_s": jitter,
         "stabilization_window_s": window, "window_reported_s": window_reported, "window_error": window_error,
         "requests_ok": sum(r.ok for r in results), "requests": len(results)})
