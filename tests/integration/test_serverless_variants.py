"""Serverless behaviours beyond the Lambda defaults: the RSS-poller memory cap, several calls per instance."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

import harness
from emulators.profiles import profile_pattern

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "agents"
SLEEPER = str(FIXTURES / "sleeper.py") + ":agent"
MEMORY_HOG = str(FIXTURES / "memory_hog.py") + ":agent"


def test_memory_cap_without_cgroups_is_enforced_by_the_poller(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where no cgroup can be made, 300 MB under 128 MB is still "oom" and 40 MB is still "ok"."""
    monkeypatch.setenv("HARNESS_NO_CGROUP", "1")
    with harness.deploy(MEMORY_HOG, time_scale=0.01) as d:
        assert d._async._emulator.pool.memory_enforcement == "poll"  # type: ignore[attr-defined]
        big = d.invoke({"mb": 300})
        small = d.invoke({"mb": 40})
    assert big.outcome == "oom", big.error
    assert big.peak_memory_mb > 128
    assert "128 MB" in (big.error or "")
    assert small.ok, small.error
    assert small.cold_start  # the oom discarded the instance


def test_instance_concurrency_serves_overlapping_calls_on_one_instance() -> None:
    """With instance_concurrency=80 (Cloud Run's own default, R14; functions default to 1, R24) calls share one."""
    with harness.deploy(SLEEPER, profile="gcp-cloud-run-functions", time_scale=0.01, instance_concurrency=80) as d:
        first = d.invoke({"seconds": 0.1})
        barrier = threading.Barrier(6)
        results: list[harness.Record] = []
        lock = threading.Lock()

        def call() -> None:
            barrier.wait(timeout=10)
            r = d.invoke({"seconds": 20})
            with lock:
                results.append(r)

        threads = [threading.Thread(target=call) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    assert len(results) == 6
    assert all(r.ok for r in results), [r.error for r in results]
    assert {r.instance_id for r in results} == {first.instance_id}
    assert not any(r.cold_start for r in results)
    # Cloud Run bills whole 100 ms units (R3): a 20 s call bills 20,000 or 20,100 ms.
    assert all(r.billed_ms % 100 == 0 and 20_000 <= r.billed_ms <= 20_100 for r in results)


def test_same_agent_runs_on_every_shipped_serverless_profile() -> None:
    """Every shipped serverless profile runs the echo agent and prices it from its own numbers."""
    for name in [n for n in harness.list_profiles() if profile_pattern(n) == "serverless"]:
        with harness.deploy(str(FIXTURES / "echo.py") + ":agent", profile=name, time_scale=0.01) as d:
            r = d.invoke({"q": name})
        assert r.ok, (name, r.error)
        assert r.profile == name
        assert r.output == {"echo": {"q": name}}


def test_host_cpu_contention_does_not_inflate_platform_time() -> None:
    """Time an instance waits for a host core is not platform time: 200 ms of CPU stays ~200 ms under load."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(3)]
    try:
        with harness.deploy(str(FIXTURES / "cpu_burner.py") + ":agent", memory_mb=1769, timeout_s=30,
                            time_scale=0.01) as d:
            d.invoke({"cpu_ms": 1})
            r = d.invoke({"cpu_ms": 200})
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    assert r.ok, r.error
    assert 170 <= r.duration_ms <= 300, r.duration_ms
    assert r.wall_ms > r.duration_ms  # the host really was contended


def test_init_longer_than_the_init_limit_is_an_init_error() -> None:
    """An init phase past init_timeout_s (Lambda: 10 s) is "init_error" saying so, and the next call retries."""
    with harness.deploy(SLEEPER, time_scale=0.001, cold_start_overhead_ms=20_000) as d:
        r = d.invoke({"seconds": 0.1})
    assert r.outcome == "init_error", r.error
    assert "10 s init limit" in (r.error or "")
    assert r.cold_start


def test_checkpoints_reach_the_state_store() -> None:
    """ctx.checkpoint() writes go to the deployment's state store as they happen, keyed by the invocation."""
    agent = str(Path(__file__).parent / "agents" / "checkpointer.py") + ":agent"
    with harness.deploy(agent, time_scale=0.01, state="memory://") as d:
        r = d.invoke({"steps": 3})
        saved = d._async._emulator.state.get_checkpoints(r.invocation_id)  # type: ignore[attr-defined]
    assert r.ok and r.output == {"restored": None}
    assert saved == {"step": 2}


def test_an_allocation_larger_than_the_machine_is_oom() -> None:
    """An allocation the OS refuses outright (100 GB) is "oom", not an agent error."""
    with harness.deploy(MEMORY_HOG, time_scale=0.01) as d:
        r = d.invoke({"mb": 100_000})
        after = d.invoke({"mb": 1})
    assert r.outcome == "oom", r.error
    assert "MemoryError" in (r.error or "")
    assert after.ok
