"""No process of a deployment outlives it: not after the ``with`` block, not after an exception inside
it, not after ``close()`` with calls still in flight in other threads.

A deployment's processes (its zygote and the instances forked from it) all carry the run id on their
command line (``python -m emulators.runtime.zygote FD RUN_ID``); the ``harness_procs`` fixture finds them.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

import harness

pytestmark = [pytest.mark.integration, pytest.mark.both_loops]  # the engine runs on either loop

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "agents"
SLEEPER = str(FIXTURES / "sleeper.py") + ":agent"


def test_no_process_remains_after_the_with_block(harness_procs: Any) -> None:
    """Leaving the ``with`` block ends the zygote and every instance of the run."""
    before = harness_procs.own_zygote_pids()
    with harness.deploy(SLEEPER, time_scale=0.01, timeout_s=30) as d:
        run_id = harness_procs.new_zygote(before).run_id
        a, b = d.submit({"seconds": 5}), d.submit({"seconds": 5})
        d.wait(a, 30)
        d.wait(b, 30)
        deadline = time.monotonic() + 5
        while len(harness_procs.of_run(run_id)) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        # the zygote, two instances kept warm, and the pre-forked spare
        assert len(harness_procs.of_run(run_id)) == 4

    assert harness_procs.wait_run_gone(run_id) == []


def test_no_process_remains_after_an_exception_in_the_with_block(harness_procs: Any) -> None:
    """An exception raised inside the ``with`` block propagates and still ends every process of the run."""
    before = harness_procs.own_zygote_pids()
    with pytest.raises(RuntimeError, match="boom"), harness.deploy(SLEEPER, time_scale=0.01, timeout_s=300) as d:
        run_id = harness_procs.new_zygote(before).run_id
        assert d.invoke({"seconds": 0.1}).ok
        d.submit({"seconds": 100})  # still running when the exception leaves the block
        raise RuntimeError("boom")

    assert harness_procs.wait_run_gone(run_id) == []


def test_no_process_remains_after_close_with_calls_in_flight(harness_procs: Any) -> None:
    """close() while other threads wait on invoke ends every process and releases those threads."""
    n = 3
    before = harness_procs.own_zygote_pids()
    d = harness.deploy(SLEEPER, time_scale=0.01, timeout_s=300)
    outcomes: list[Any] = []
    lock = threading.Lock()
    threads: list[threading.Thread] = []
    try:
        zygote = harness_procs.new_zygote(before)
        run_id = zygote.run_id
        started = threading.Barrier(n + 1)

        def call() -> None:
            started.wait(timeout=10)
            try:
                r: Any = d.invoke({"seconds": 100})  # 1 s wall: still running when close() comes
            except harness.HarnessError as exc:
                r = exc
            with lock:
                outcomes.append(r)

        threads.extend(threading.Thread(target=call, daemon=True) for _ in range(n))
        for t in threads:
            t.start()
        started.wait(timeout=10)
        # Wait until all three instances are forked and running their call.
        deadline = time.monotonic() + 5
        # (n instances plus the pool's pre-forked spare)
        while len(harness_procs.instances(zygote)) < n + 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(harness_procs.instances(zygote)) == n + 1
        assert not outcomes  # nothing finished yet
    finally:
        d.close()

    for t in threads:
        t.join(timeout=5)
    assert not any(t.is_alive() for t in threads), "a thread is still blocked in invoke() after close()"
    assert len(outcomes) == n
    for r in outcomes:
        # An interrupted call either reports its (failed) Record or is told the deployment closed.
        assert isinstance(r, harness.DeploymentClosedError) or (isinstance(r, harness.Record) and not r.ok)
    assert harness_procs.wait_run_gone(run_id) == []


def test_close_is_idempotent_and_use_after_close_raises(harness_procs: Any) -> None:
    """close() twice is fine, and invoking a closed deployment raises DeploymentClosedError."""
    before = harness_procs.own_zygote_pids()
    d = harness.deploy(SLEEPER, time_scale=0.01)
    run_id = harness_procs.new_zygote(before).run_id
    assert d.invoke({"seconds": 0.1}).ok
    d.close()
    d.close()

    with pytest.raises(harness.DeploymentClosedError):
        d.invoke({"seconds": 0.1})
    assert harness_procs.wait_run_gone(run_id) == []
