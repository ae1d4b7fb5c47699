"""Warm invoke through the Python API versus calling the agent function directly.

Every deployment here uses ``time_scale=0.01``; the serverless one also ``memory_mb=1769`` (one full vCPU
on the Lambda profile, so the emulated CPU throttle stretches nothing). The other patterns run with
their default profile (``PATTERN_KW`` adds what a pattern needs: one container replica, no autoscaling
noise). Each call is timed with ``perf_counter_ns`` around it, after a warm-up; a measured call that was
not a warm ``ok`` is counted in ``not_warm_ok``. The edge pattern's calls include the emulated caller
round trip of its region table (an injected wait: 3.4 platform ms, 34 µs of wall time at this scale).
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import harness
from emulators import loops
from harness._loop import LoopThread

from . import ECHO_PATH, ECHO_SPEC
from ._stats import Stats, ns_to_ms

__all__ = ["DEPLOY_KW", "PATTERNS", "PATTERN_KW", "WarmResult", "direct_call", "warm_interleaved"]

DEPLOY_KW: dict[str, Any] = {"time_scale": 0.01, "memory_mb": 1769}
PATTERNS = ("serverless", "container", "daemon", "edge")
TURN_WARMUP = 5  # untimed calls at the start of each turn: the first after another target's turn is slower
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


class _Target:
    """One thing timed in the rounds: a call to make, and its samples so far."""

    def __init__(self, call: Any, check: bool = True) -> None:
        self.call, self.check = call, check
        self.samples: list[int] = []
        self.round_p50_ms: list[float] = []
        self.bad = 0

    def run(self, n: int) -> None:
        pc = time.perf_counter_ns
        call, mine = self.call, []
        for _ in range(TURN_WARMUP):
            call()
        for _ in range(n):
            t0 = pc()
            r = call()
            mine.append(pc() - t0)
            if self.check and (not r.ok or r.cold_start):
                self.bad += 1
        self.samples += mine
        self.round_p50_ms.append(Stats.of(ns_to_ms(mine)).p50)


async def _noop() -> None:
    return None


def warm_interleaved(n: int, warmup: int, rounds: int) -> tuple[dict[str, WarmResult], dict[str, Any]]:
    """Every warm target open at once, timed in ``rounds`` turns of ``n // rounds`` calls each.

    Targets: ``d.invoke({})`` through the sync facade per pattern (``PATTERNS``), ``await d.invoke({})``
    through ``harness.adeploy`` (serverless, in an event loop of this thread: ``serverless_async``) and, for
    context, a no-op coroutine through the sync facade's loop thread (``hop``). A slow spell of the machine
    falls on all of them alike, as in the HTTP group; the order rotates each round, and each turn starts with
    ``TURN_WARMUP`` untimed calls (the first call after another target's turn finds its instance asleep).
    """
    per_round = max(1, n // rounds)
    loop = loops.new_event_loop()  # the loop the engine would make (uvloop where installed)
    hop_loop = LoopThread(name="bench-hop")
    adeploy = harness.adeploy(ECHO_SPEC, **DEPLOY_KW)
    try:
        with contextlib.ExitStack() as stack:
            deps = {p: stack.enter_context(harness.deploy(ECHO_SPEC, **PATTERN_KW[p])) for p in PATTERNS}
            ad = loop.run_until_complete(adeploy.__aenter__())
            try:
                targets = {p: _Target(lambda d=d: d.invoke({})) for p, d in deps.items()}
                targets["serverless_async"] = _Target(lambda: loop.run_until_complete(ad.invoke({})))
                targets["hop"] = _Target(lambda: hop_loop.call(_noop), check=False)
                for t in targets.values():
                    for _ in range(warmup):
                        t.call()
                gc.collect()
                order = list(targets)
                for r in range(rounds):
                    for key in order[r % len(order):] + order[:r % len(order)]:
                        targets[key].run(per_round)
            finally:
                loop.run_until_complete(adeploy.__aexit__(None, None, None))
            enforcement = deps["serverless"]._async._emulator.pool.memory_enforcement
    finally:
        loop.close()
        hop_loop.stop()
    out = {k: WarmResult(Stats.of(ns_to_ms(t.samples)), t.bad, enforcement) for k, t in targets.items()}
    spread = {k: t.round_p50_ms for k, t in targets.items()}
    return out, {"rounds": rounds, "per_round": per_round, "round_p50_ms": spread}
