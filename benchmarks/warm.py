"""Warm invoke through the Python API versus calling the agent function directly.

Every deployment here uses ``time_scale=0.01``; the serverless one also ``memory_mb=1769`` (one full vCPU
on the Lambda profile, so the emulated CPU throttle stretches nothing). ``warm_sync`` runs any pattern with
its default profile (``PATTERN_KW`` adds what a pattern needs: one container replica, no autoscaling
noise). Each call is timed with ``perf_counter_ns`` around it, after a warm-up; a measured call that was
not a warm ``ok`` is counted in ``not_warm_ok``. The edge pattern's calls include the emulated caller
round trip of its region table (an injected wait: 3.4 platform ms, 34 µs of wall time at this scale).
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import harness
from harness._loop import LoopThread

from . import ECHO_PATH, ECHO_SPEC
from ._stats import Stats, ns_to_ms

__all__ = ["DEPLOY_KW", "PATTERNS", "PATTERN_KW", "WarmResult", "direct_call", "loop_hop", "warm_async",
           "warm_sync"]

DEPLOY_KW: dict[str, Any] = {"time_scale": 0.01, "memory_mb": 1769}
PATTERNS = ("serverless", "container", "daemon", "edge")
PATTERN_KW: dict[str, dict[str, Any]] = {
    "serverless": {"pattern": "serverless", **DEPLOY_KW},
    "container": {"pattern": "container", "time_scale": 0.01, "min_replicas": 1, "max_replicas": 1},
    "daemon": {"pattern": "daemon", "time_scale": 0.01},
    "edge": {"pattern": "edge", "time_scale": 0.01},
}


@dataclass
class WarmResult:
    """Latency of the measured calls and how many of them were not warm successes."""

    stats: Stats
    not_warm_ok: int
    memory_enforcement: str = ""

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"latency_ms": self.stats.to_json(), "not_warm_ok": self.not_warm_ok}


def _load_echo() -> Any:
    spec = importlib.util.spec_from_file_location("benchmarks_echo", ECHO_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.agent


def direct_call(n: int, warmup: int) -> WarmResult:
    """The floor: the echo agent called in-process with a dummy ctx, timed the same way."""
    fn = _load_echo()
    ctx = SimpleNamespace(state={}, invocation_id="bench")
    for _ in range(warmup):
        fn({}, ctx)
    gc.collect()
    pc = time.perf_counter_ns
    samples: list[int] = []
    for _ in range(n):
        t0 = pc()
        fn({}, ctx)
        samples.append(pc() - t0)
    return WarmResult(Stats.of(ns_to_ms(samples)), 0)


def warm_sync(n: int, warmup: int, pattern: str = "serverless") -> WarmResult:
    """``d.invoke({})`` through the sync facade ``harness.deploy``, on ``pattern``."""
    with harness.deploy(ECHO_SPEC, **PATTERN_KW[pattern]) as d:
        enforcement = d._async._emulator.pool.memory_enforcement
        for _ in range(warmup):
            d.invoke({})
        gc.collect()
        pc = time.perf_counter_ns
        samples: list[int] = []
        bad = 0
        for _ in range(n):
            t0 = pc()
            r = d.invoke({})
            samples.append(pc() - t0)
            if not r.ok or r.cold_start:
                bad += 1
    return WarmResult(Stats.of(ns_to_ms(samples)), bad, enforcement)


async def _warm_async(n: int, warmup: int) -> WarmResult:
    async with harness.adeploy(ECHO_SPEC, **DEPLOY_KW) as d:
        for _ in range(warmup):
            await d.invoke({})
        gc.collect()
        pc = time.perf_counter_ns
        samples: list[int] = []
        bad = 0
        for _ in range(n):
            t0 = pc()
            r = await d.invoke({})
            samples.append(pc() - t0)
            if not r.ok or r.cold_start:
                bad += 1
    return WarmResult(Stats.of(ns_to_ms(samples)), bad)


def warm_async(n: int, warmup: int) -> WarmResult:
    """``await d.invoke({})`` through ``harness.adeploy``, all in one asyncio loop."""
    return asyncio.run(_warm_async(n, warmup))


async def _noop() -> None:
    return None


def loop_hop(n: int, warmup: int) -> WarmResult:
    """Context for the sync rows: a no-op coroutine through the sync facade's loop thread, timed the same way."""
    loop = LoopThread(name="bench-hop")
    try:
        for _ in range(warmup):
            loop.call(_noop)
        gc.collect()
        pc = time.perf_counter_ns
        samples: list[int] = []
        for _ in range(n):
            t0 = pc()
            loop.call(_noop)
            samples.append(pc() - t0)
    finally:
        loop.stop()
    return WarmResult(Stats.of(ns_to_ms(samples)), 0)
