"""Container failures with real replica processes: a replica killed from outside, the memory cap,
CrashLoopBackOff, rolling restart, the ingress timeout and a full pool."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import harness

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "agents"
SLEEPER = str(FIXTURES / "sleeper.py") + ":agent"
PID_SLEEPER = str(FIXTURES / "pid_sleeper.py") + ":agent"
CRASHER = str(FIXTURES / "crasher.py") + ":agent"
HOG = str(FIXTURES / "memory_hog.py") + ":agent"


def events(d: harness.Deployment) -> list[str]:
    return [p.event for p in d.summary().replica_timeline]


def wait_for(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert cond(), "condition not reached in time"


def test_replica_killed_mid_request_is_a_crash_and_comes_back_and_nothing_else_fails() -> None:
    """SIGKILL of the replica process serving a request: that request is "crash", the replica restarts after
    its back-off, and every other request (queued on it or elsewhere) succeeds."""
    with harness.deploy(PID_SLEEPER, pattern="container", time_scale=0.01, min_replicas=2, replica_concurrency=1,
                        restart_backoff_s=1, gateway=False) as d:
        stream = d.stream({"seconds": 60})
        pid = next(stream)["pid"]
        others = [d.submit({"seconds": 2}) for _ in range(6)]  # round robin: some queue behind the victim
        time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
        victim = list(stream)[-1]
        rest = [d.wait(t, 30) for t in others]
        wait_for(lambda: d.summary().replica_timeline[-1].ready == 2)
        after = [d.invoke({"seconds": 1}) for _ in range(4)]
        timeline = events(d)

    assert victim.outcome == "crash" and not victim.ok
    assert victim.error is not None and "SIGKILL" in victim.error
    assert all(r.ok for r in rest), [(r.outcome, r.error) for r in rest]
    assert all(r.ok for r in after)
    assert {r.output["pid"] for r in rest + after}.isdisjoint({pid})
    assert "crash" in timeline and "restart" in timeline
    assert timeline.index("crash") < timeline.index("restart")


def test_memory_cap_is_oom_and_the_replica_is_restarted() -> None:
    """A request past the replica's memory cap ends "oom"; the replica restarts and serves again."""
    with harness.deploy(HOG, pattern="container", time_scale=0.01, min_replicas=1, memory_mb=128,
                        restart_backoff_s=1, gateway=False) as d:
        small = d.invoke({"mb": 5})
        big = d.invoke({"mb": 400})
        later = d.invoke({"mb": 5})
        timeline = events(d)

    assert small.ok, small.error
    assert big.outcome == "oom", (big.outcome, big.error)
    assert later.ok, later.error
    assert later.instance_id != small.instance_id
    assert "oom" in timeline and "restart" in timeline


def test_crash_loop_backs_off_exponentially() -> None:
    """Consecutive crashes of one replica restart it after 10 s, then 20 s, then 40 s (CrashLoopBackOff)."""
    # On the virtual clock a restart's own start (real time, a few ms) counts as a few ms, whatever the host.
    with harness.deploy(CRASHER, pattern="container", min_replicas=1, gateway=False) as d:
        crashes = []
        for _ in range(3):
            crashes.append(d.invoke({"how": "exit"}))
        points = d.summary().replica_timeline

    assert [r.outcome for r in crashes] == ["crash"] * 3
    crash_t = [p.t_s for p in points if p.event == "crash"]
    restart_t = [p.t_s for p in points if p.event == "restart"]
    delays = [r - c for c, r in zip(crash_t, restart_t, strict=False)]
    assert len(delays) >= 2
    assert delays[0] == pytest.approx(10, abs=0.5)
    assert delays[1] == pytest.approx(20, abs=0.5)
    if len(delays) > 2:
        assert delays[2] == pytest.approx(40, abs=0.5)


def test_rolling_restart_replaces_every_replica_without_a_failed_request() -> None:
    """d.restart() under steady traffic: every replica is new afterwards and no request failed."""
    with harness.deploy(SLEEPER, pattern="container", time_scale=0.005, min_replicas=3, gateway=False) as d:
        before = {d.invoke({"seconds": 1}).instance_id for _ in range(3)}
        results: list[harness.Record] = []
        stop = threading.Event()

        def traffic() -> None:
            while not stop.is_set():
                results.append(d.invoke({"seconds": 5}))

        threads = [threading.Thread(target=traffic) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.05)
        d.restart()
        time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join(30)
        after = {d.invoke({"seconds": 1}).instance_id for _ in range(3)}
        s = d.summary()

    assert len(results) > 10
    assert all(r.ok for r in results), {r.outcome for r in results}
    assert len(before) == 3 and len(after) == 3 and before.isdisjoint(after)
    assert s.failures == 0
    assert [p.event for p in s.replica_timeline].count("drain") == 3


def test_ingress_timeout_is_gateway_timeout_and_the_replica_survives() -> None:
    """A request past timeout_s gets "gateway_timeout" (504) at the limit; the replica is not killed."""
    with harness.deploy(SLEEPER, pattern="container", time_scale=0.002, min_replicas=1, timeout_s=30,
                        gateway=False) as d:
        slow = d.invoke({"seconds": 100})
        fast = d.invoke({"seconds": 1})
        s = d.summary()

    assert slow.outcome == "gateway_timeout"
    assert slow.latency_ms == pytest.approx(30_000)
    assert "504" in (slow.error or "")
    assert fast.ok and not fast.cold_start  # the same warm replica, not restarted
    assert [p.event for p in s.replica_timeline].count("crash") == 0


def test_full_replicas_throttle() -> None:
    """With every replica's slots and queue full, the next request is "throttled" at once."""
    with harness.deploy(SLEEPER, pattern="container", time_scale=0.01, min_replicas=1, max_replicas=1,
                        replica_concurrency=1, replica_queue_limit=1, gateway=False) as d:
        busy = [d.submit({"seconds": 5}) for _ in range(2)]
        time.sleep(0.02)
        r = d.invoke({"seconds": 1})
        done = [d.wait(t, 30) for t in busy]

    assert r.outcome == "throttled" and "429" in (r.error or "")
    assert all(x.ok for x in done)
