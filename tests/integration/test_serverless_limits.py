"""Serverless limits enforced on real processes: execution timeout, memory cap, account concurrency,
request and response size, and CPU tied to memory."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import harness

pytestmark = [pytest.mark.integration, pytest.mark.both_loops]  # the engine runs on either loop

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "agents"
LOCAL_AGENTS = Path(__file__).resolve().parent / "agents"
SLEEPER = str(FIXTURES / "sleeper.py") + ":agent"
MEMORY_HOG = str(FIXTURES / "memory_hog.py") + ":agent"
CPU_BURNER = str(FIXTURES / "cpu_burner.py") + ":agent"
BIG_RESPONSE = str(LOCAL_AGENTS / "big_response.py") + ":agent"


# ---- timeout -------------------------------------------------------------------------------------------

def test_call_past_the_timeout_is_killed_and_the_instance_replaced() -> None:
    """A 20 s task under a 10 s limit is a "timeout" billed at 10 s; the next call cold-starts a new instance."""
    t0 = time.monotonic()
    with harness.deploy(SLEEPER, timeout_s=10, time_scale=0.001) as d:
        r = d.invoke({"seconds": 20})
        after = d.invoke({"seconds": 1})
    wall = time.monotonic() - t0

    assert r.outcome == "timeout" and not r.ok
    assert r.duration_ms == pytest.approx(10_000, rel=0.05)
    assert r.latency_ms >= 10_000
    assert r.error is not None and "timed out" in r.error
    assert r.output is None
    assert after.ok, after.error
    assert after.cold_start
    assert after.instance_id not in (None, r.instance_id)
    assert wall < 2.0, f"the timeout check took {wall:.2f} s of wall time"


# ---- memory --------------------------------------------------------------------------------------------

def test_allocation_over_the_memory_cap_is_oom_and_the_next_call_is_cold() -> None:
    """300 MB under the default 128 MB cap is "oom", and the killed instance is replaced by a cold one."""
    # A generous time limit: near the cap the kernel reclaims before it kills, and that CPU time, stretched by
    # the 128 MB CPU share (13.8x), could reach the default 3 s limit first on a loaded machine.
    with harness.deploy(MEMORY_HOG, time_scale=0.01, timeout_s=60) as d:
        r = d.invoke({"mb": 300})
        after = d.invoke({"mb": 40})

    assert r.outcome == "oom" and not r.ok
    assert r.error is not None and "128 MB" in r.error
    assert after.ok, after.error
    assert after.cold_start and after.instance_id != r.instance_id


def test_allocation_under_the_memory_cap_is_ok() -> None:
    """40 MB under the default 128 MB cap runs fine and the peak memory is reported."""
    with harness.deploy(MEMORY_HOG, time_scale=0.01) as d:
        r = d.invoke({"mb": 40})

    assert r.ok, r.error
    assert r.output == {"allocated_mb": 40, "checksum": 1}
    assert 40 <= r.peak_memory_mb < 128


def test_memory_override_raises_the_cap() -> None:
    """With memory_mb=512 the same 300 MB allocation is "ok"."""
    with harness.deploy(MEMORY_HOG, time_scale=0.01, memory_mb=512) as d:
        r = d.invoke({"mb": 300})

    assert r.ok, r.error
    assert r.peak_memory_mb >= 300


# ---- concurrency ---------------------------------------------------------------------------------------

def test_calls_over_max_concurrency_are_throttled() -> None:
    """With max_concurrency=2, of 5 simultaneous calls exactly 2 run and 3 are "throttled" (not run, not billed)."""
    n = 5
    barrier = threading.Barrier(n)
    results: list[harness.Record] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    with harness.deploy(SLEEPER, time_scale=0.01, timeout_s=30, max_concurrency=2) as d:

        def call() -> None:
            try:
                barrier.wait(timeout=10)
                r = d.invoke({"seconds": 20})  # 0.2 s wall: every other call arrives while these run
            except BaseException as exc:  # surfaced by the assert below
                with lock:
                    errors.append(exc)
            else:
                with lock:
                    results.append(r)

        threads = [threading.Thread(target=call) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)

    assert not errors, errors
    assert len(results) == n
    counts = Counter(r.outcome for r in results)
    assert counts == {"ok": 2, "throttled": 3}
    ok = [r for r in results if r.ok]
    assert ok[0].instance_id != ok[1].instance_id
    for r in results:
        if r.outcome == "throttled":
            assert r.instance_id is None and not r.cold_start
            assert r.cost.total_usd == 0 and r.billed_ms == 0
            assert r.error is not None and "429" in r.error


# ---- payload sizes -------------------------------------------------------------------------------------

def test_request_over_the_limit_is_rejected_before_anything_runs(harness_procs: Any) -> None:
    """A 7 MB request under the 6 MB limit is "payload_too_large" and starts no instance."""
    before = harness_procs.own_zygote_pids()
    with harness.deploy(SLEEPER, time_scale=0.01) as d:
        zygote = harness_procs.new_zygote(before)
        deadline = time.monotonic() + 5  # the pool pre-forks one spare process (not yet an instance)
        while len(harness_procs.instances(zygote)) < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        forked_before = harness_procs.instances(zygote)
        r = d.invoke({"blob": "x" * 7 * 1024 * 1024})
        forked_after_reject = harness_procs.instances(zygote)
        after = d.invoke({"seconds": 0.1})
        s = d.summary()
        records = d.records()

    assert r.outcome == "payload_too_large" and not r.ok
    assert r.error is not None and "6291456" in r.error
    assert r.instance_id is None and not r.cold_start
    assert r.cost.total_usd == 0 and r.billed_ms == 0
    assert len(forked_before) == 1  # the spare
    assert forked_after_reject == forked_before  # nothing was started for the rejected call
    assert after.ok, after.error
    assert after.cold_start  # still the deployment's first cold start
    assert s.cold_starts == 1
    assert {x.instance_id for x in records if x.instance_id is not None} == {after.instance_id}


def test_response_over_the_limit_is_payload_too_large() -> None:
    """An output larger than response_limit_bytes is "payload_too_large"; the instance stays usable."""
    with harness.deploy(BIG_RESPONSE, time_scale=0.01, response_limit_bytes=1000) as d:
        big = d.invoke({"size": 5000})
        small = d.invoke({"size": 10})

    assert big.outcome == "payload_too_large" and not big.ok
    assert big.output is None
    assert big.error is not None and "1000" in big.error
    assert small.ok, small.error
    assert small.output == {"text": "y" * 10}
    assert not small.cold_start and small.instance_id == big.instance_id


# ---- CPU tied to memory --------------------------------------------------------------------------------

@pytest.mark.parametrize(("memory_mb", "low", "high"), [(128, 2_400, 3_300), (1769, 170, 300)])
def test_cpu_bound_work_is_slower_with_less_memory(memory_mb: int, low: float, high: float) -> None:
    """200 ms of real CPU takes ~2.8 s of platform time at 128 MB (1/13.8 vCPU) and ~200 ms at 1,769 MB."""
    with harness.deploy(CPU_BURNER, time_scale=0.01, timeout_s=30, memory_mb=memory_mb) as d:
        warmup = d.invoke({"cpu_ms": 200})
        r = d.invoke({"cpu_ms": 200})

    assert warmup.ok, warmup.error
    assert r.ok, r.error
    assert not r.cold_start
    assert low <= r.duration_ms <= high
    assert r.cpu_ms >= 200


def test_warm_calls_take_the_run_queue_baseline_from_the_instance(
        count_calls: Callable[[type], Counter[type]]) -> None:
    """The limit's mirror starts from the run-queue clock the instance read at its last call's end: warm calls
    read no /proc/<pid>/schedstat from the control process, and still end ok with their time measured."""
    from emulators.runtime import limits

    reads = count_calls(limits.QueuedClock)
    with harness.deploy(f"{FIXTURES / 'echo.py'}:agent", time_scale=0.01, gateway=False) as d:
        d.invoke({})  # cold: the first call's mirror reads the clock
        reads.clear()
        records = [d.invoke({"n": i}) for i in range(20)]
    assert all(r.ok and not r.cold_start and r.duration_ms > 0 for r in records)
    assert reads[limits.QueuedClock] == 0
