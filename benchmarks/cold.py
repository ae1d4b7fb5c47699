"""Figure 2: the harness's share of a cold start.

One deployment with ``cold_start_overhead_ms=0`` (no injected platform overhead), ``time_scale=0.001``
and ``idle_expiry_s=100`` (100 ms of wall time): after a 150 ms pause the instance is expired (and recycled
by the idle sweeper), so every call cold-starts a new one. The first cold call (the deployment's first fork)
is a warm-up and not counted; a call that was not a cold ``ok`` is dropped and counted.

The 100 ms expiry keeps the idle sweeper's period (a quarter of it) well above the run's own noise, so
each pause reliably ends with the instance recycled.

``cold_samples(n, no_cgroup=True)`` runs the same with ``HARNESS_NO_CGROUP=1`` (memory cap by the RSS
poller): the difference to the default run is what the per-instance memory cgroup costs a cold start.

For each counted call:
- ``wall_ms``: ``perf_counter`` around ``d.invoke`` (the latency as the caller sees it);
- ``harness_share_ms`` = ``wall_ms`` - the agent's own import time (measured in a fresh interpreter, see
  ``floors.agent_import_ms``) - the injected platform overhead in wall time (0 here);
- ``record_overhead_ms`` = ``Record.latency_ms - Record.init_ms - Record.duration_ms``: the harness's real
  overhead outside the instance's init and invocation phases, as the record itself reports it.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import harness

from . import ECHO_SPEC

__all__ = ["COLD_KW", "CONTAINER_KW", "ColdResult", "cold_samples", "container_cold_samples"]

OVERHEAD_MS = 0.0  # the constant platform overhead injected per cold start (platform ms)
TIME_SCALE = 0.001
IDLE_EXPIRY_WALL_S = 0.1  # sweeper period 25 ms: the pause below always outlasts expiry + one sweep
COLD_KW: dict[str, Any] = {"time_scale": TIME_SCALE, "memory_mb": 1769,
                           "idle_expiry_s": IDLE_EXPIRY_WALL_S / TIME_SCALE,
                           "cold_start_overhead_ms": OVERHEAD_MS}
PAUSE_S = 0.15  # wall pause between calls: the expiry, a sweeper period (25 ms) and the retire


@dataclass
class ColdResult:
    """Per-call figures of the counted cold calls, and how many calls were dropped."""

    wall_ms: list[float] = field(default_factory=list)
    init_ms: list[float] = field(default_factory=list)
    duration_ms: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    record_overhead_ms: list[float] = field(default_factory=list)
    dropped: int = 0
    overhead_wall_ms: float = OVERHEAD_MS * TIME_SCALE
    memory_enforcement: str = ""

    def harness_share_ms(self, agent_import_ms: float) -> list[float]:
        """Caller-seen wall latency minus the agent's import and the injected overhead, per call."""
        return [w - agent_import_ms - self.overhead_wall_ms for w in self.wall_ms]

    def to_json(self) -> dict[str, Any]:
        """JSON form: every sample."""
        return {
            "wall_ms": self.wall_ms, "record_init_ms": self.init_ms, "record_duration_ms": self.duration_ms,
            "record_latency_ms": self.latency_ms, "record_overhead_ms": self.record_overhead_ms,
            "dropped_not_cold_ok": self.dropped, "memory_enforcement": self.memory_enforcement,
            "injected_overhead_wall_ms": self.overhead_wall_ms,
            "deploy": COLD_KW, "pause_s": PAUSE_S,
        }


@contextlib.contextmanager
def _env(name: str, value: str | None) -> Iterator[None]:
    """Set (or leave alone, for None) one environment variable for the block."""
    old = os.environ.get(name)
    if value is not None:
        os.environ[name] = value
    try:
        yield
    finally:
        if value is not None:
            if old is None:
                del os.environ[name]
            else:
                os.environ[name] = old


def cold_samples(n: int, no_cgroup: bool = False) -> ColdResult:
    """Collect ``n`` cold calls (giving up after ``3 n`` attempts); ``no_cgroup`` forces the RSS poller."""
    out = ColdResult()
    with _env("HARNESS_NO_CGROUP", "1" if no_cgroup else None):
        d = harness.deploy(ECHO_SPEC, **COLD_KW)  # the pool decides on cgroups when it is made
    with d:
        out.memory_enforcement = d._async._emulator.pool.memory_enforcement
        time.sleep(PAUSE_S)
        d.invoke({})  # warm-up: the deployment's first cold start is not counted
        attempts = 0
        while len(out.wall_ms) < n and attempts < 3 * n:
            attempts += 1
            time.sleep(PAUSE_S)
            _sample_cold_call(d, out)
    return out


def _sample_cold_call(d: Any, out: ColdResult) -> None:
    """Time one call; keep it if it was an ok cold start, else count it dropped."""
    t0 = time.perf_counter_ns()
    r = d.invoke({})
    wall = (time.perf_counter_ns() - t0) / 1e6
    if not (r.ok and r.cold_start):
        out.dropped += 1
        return
    out.wall_ms.append(wall)
    out.init_ms.append(r.init_ms)
    out.duration_ms.append(r.duration_ms)
    out.latency_ms.append(r.latency_ms)
    out.record_overhead_ms.append(r.latency_ms - r.init_ms - r.duration_ms)


# ---- container: a replica started for a request (scale from zero) ------------------------------------------

CONTAINER_KW: dict[str, Any] = {"pattern": "container", "time_scale": TIME_SCALE, "min_replicas": 0,
                                "max_replicas": 1, "scale_to_zero_idle_s": 50.0, "scale_down_stabilization_s": 0.0,
                                "cold_start_overhead_ms": OVERHEAD_MS}


def _scaled_to_zero(d: harness.Deployment, timeout_s: float = 2.0) -> bool:
    """Wait until the deployment has no replica left (the autoscaler scaled it to zero)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        timeline = d.summary().replica_timeline
        if timeline and timeline[-1].replicas == 0 and not d._async._emulator.pool.instances:
            return True
        time.sleep(0.01)
    return False


def container_cold_samples(n: int) -> ColdResult:
    """``n`` requests that each find the container scaled to zero and wait for a replica's cold start.

    ``min_replicas=0``, ``scale_to_zero_idle_s=50`` (50 ms of wall time at this scale) and no scale-down
    window: after each request the autoscaler (a 15 ms sync period here) takes the pool back to zero;
    the run waits for that before the next request, so each pays one replica start.
    """
    out = ColdResult()
    with harness.deploy(ECHO_SPEC, **CONTAINER_KW) as d:
        out.memory_enforcement = d._async._emulator.pool.memory_enforcement
        d.invoke({})  # warm-up: the deployment's first replica start is not counted
        attempts = 0
        while len(out.wall_ms) < n and attempts < 3 * n:
            attempts += 1
            if not _scaled_to_zero(d):
                out.dropped += 1
                continue
            time.sleep(0.02)  # let the retired replica's exit settle, as the serverless run pauses
            _sample_cold_call(d, out)
    return out
