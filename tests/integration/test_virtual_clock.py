"""The virtual clock with real instances: waits cost no wall time, limits fire at their platform time, and
the harness's own milliseconds are never magnified (the figures of issue 17, as behaviours)."""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

import pytest

import harness

pytestmark = pytest.mark.integration

AGENTS = Path(__file__).resolve().parents[2] / "fixtures" / "agents"
SLEEPER = f"{AGENTS / 'sleeper.py'}:agent"
ECHO = f"{AGENTS / 'echo.py'}:agent"
RESUMABLE = f"{AGENTS / 'resumable.py'}:agent"


def test_a_ten_minute_wait_takes_milliseconds_and_counts_ten_minutes() -> None:
    """On the default (virtual) clock a 600 s ctx.sleep is a 600 s call that returns within a few seconds."""
    wall = time.monotonic()
    with harness.deploy(SLEEPER, timeout_s=900) as d:
        r = d.invoke({"seconds": 600})
    assert r.ok, r.error
    assert 600_000 <= r.latency_ms < 600_000 + r.init_ms + 50
    assert time.monotonic() - wall < 10


def test_a_time_limit_fires_at_its_platform_time_during_a_wait() -> None:
    """A 90 s wait under a 10 s limit times out at exactly 10 s, without waiting any of it in wall time."""
    with harness.deploy(SLEEPER, timeout_s=10) as d:
        d.invoke({"seconds": 0})
        wall = time.monotonic()
        r = d.invoke({"seconds": 90})
        took = time.monotonic() - wall
    assert r.outcome == "timeout" and r.latency_ms == pytest.approx(10_000, abs=5)
    assert took < 3


def test_advance_passes_idle_time_and_recycles_the_instance() -> None:
    """d.advance(700) is past Lambda's 10-minute idle expiry: the module-global chat forgets, ctx.state does not."""
    outputs = {}
    for name in ("chat_global", "chat_state"):
        with harness.deploy(f"{AGENTS / name}.py:agent") as d:
            d.invoke({"message": "hi"}, session_id="s1")
            warm = d.invoke({"message": "my name is Ada"}, session_id="s1")
            wall = time.monotonic()
            d.advance(700)
            assert time.monotonic() - wall < 2
            r = d.invoke({"message": "what is my name?"}, session_id="s1")
        assert not warm.cold_start and r.cold_start
        outputs[name] = r.output
    assert outputs["chat_global"]["history"] == ["what is my name?"]
    assert outputs["chat_state"]["history"] == ["hi", "my name is Ada", "what is my name?"]


def test_a_wall_clock_sleep_between_calls_is_platform_time() -> None:
    """The caller's own time.sleep is real time, so it passes 1:1 on the virtual clock (not skipped, not scaled)."""
    with harness.deploy(ECHO, idle_expiry_s=0.2) as d:
        d.invoke({})
        kept = d.invoke({})
        time.sleep(0.3)  # 0.3 platform seconds: past the 0.2 s expiry
        expired = d.invoke({})
    assert not kept.cold_start and expired.cold_start


def test_a_two_hour_daemon_task_with_checkpoints_takes_milliseconds() -> None:
    """12 ten-minute waits on the daemon: a 2-hour task, every step's event, in well under a second of waiting."""
    with harness.deploy(RESUMABLE, pattern="daemon", workers=2) as d:
        wall = time.monotonic()
        r = d.invoke({"steps": 12, "step_s": 600})
        took = time.monotonic() - wall
    assert r.ok, r.error
    assert len(r.events) == 12
    assert r.latency_ms == pytest.approx(7_200_000, abs=1_000)
    assert took < 3


@pytest.mark.parametrize("time_scale", [None, 0.001], ids=["virtual", "scaled-0.001"])
def test_a_daemon_echo_is_not_magnified_by_the_time_scale(time_scale: float | None) -> None:
    """An empty queue's wait is the harness's own fraction of a millisecond, not 1 s at time_scale 0.001."""
    with harness.deploy(ECHO, pattern="daemon", time_scale=time_scale) as d:
        lat = [d.invoke({"q": i}).latency_ms for i in range(20)]
    assert statistics.median(lat) < 20, lat  # magnified, it was about 1,000 ms at 0.001


def test_the_hpa_scales_up_at_its_first_sync() -> None:
    """50 concurrent 20 s calls on k8s-hpa (target 5 per replica): the first scale-up comes at the 15 s sync.

    On the virtual clock, whatever the host does. (On a scaled clock a host stall of 40 ms is 20 platform s
    at 0.002: the benchmarks' timeline group measures that setting, a test would only measure the host.)
    """

    async def burst() -> harness.Summary:
        async with harness.adeploy(SLEEPER, pattern="container", profile="k8s-hpa",
                                   gateway=False, min_replicas=1, max_replicas=10, target_concurrency=5,
                                   replica_concurrency=5, timeout_s=300) as d:
            await asyncio.gather(*(d.invoke({"seconds": 20}) for _ in range(50)))
            return d.summary()

    summary = asyncio.run(burst())
    first = next(p for p in summary.replica_timeline if p.event == "sync" and p.desired > 1)
    assert 14.0 <= first.t_s <= 16.0, [(p.t_s, p.event, p.desired) for p in summary.replica_timeline[:6]]


def test_parallel_llm_calls_overlap_on_the_virtual_clock() -> None:
    """Three calls fired at once wait as long as the longest of them, not as long as their sum."""
    with harness.deploy(f"{AGENTS / 'llm_fanout.py'}:agent", timeout_s=60, memory_mb=1769) as d:
        d.invoke({"n": 1})  # the cold start (importing openai) out of the way
        r = d.invoke({"n": 3})
        calls = [c for c in d._async._emulator.pool.llm.calls if c.invocation_id == r.invocation_id]
    assert r.ok, r.error
    assert len(calls) == 3
    longest = max(c.platform_s for c in calls) * 1000.0
    total = sum(c.platform_s for c in calls) * 1000.0
    # The three start within real milliseconds of each other (more on a loaded host, where the agent's
    # threads fire one after another: that stagger is real time, counted 1:1), so the group lasts the
    # longest wait plus that stagger: never less than the longest, far below the sum.
    assert longest - 1.0 <= r.llm_ms <= longest + 0.25 * (total - longest), (r.llm_ms, [c.platform_s for c in calls])
    assert r.llm_ms < 0.8 * total


def test_a_wait_only_agent_gives_the_same_figures_twice() -> None:
    """With one seed, two runs of a wait-only agent on warm replicas give the same latencies to 0.1 ms."""

    def run() -> tuple[list[float], harness.Summary]:
        with harness.deploy(SLEEPER, pattern="container", seed=11, min_replicas=2, timeout_s=60) as d:
            for _ in range(2):  # one call per replica: its first call opens its per-thread counters
                d.invoke({"seconds": 0})
            lat = [d.invoke({"seconds": s}).latency_ms for s in (1, 2, 3, 5, 8)]
            return lat, d.summary()

    first, second = run(), run()
    diffs = sorted(abs(a - b) for a, b in zip(first[0], second[0], strict=True))
    # Every record agrees to 0.1 ms but, at most, one: the agent's own real time (tens of microseconds) now and
    # then catches a host spike (0.15 ms once in about 25 runs here); none may differ by a millisecond, which
    # is what counting the harness's own dispatch (0.2-2 ms, more with concurrency) used to do.
    assert diffs[-2] <= 0.1 and diffs[-1] < 0.5, (first[0], second[0])
    s1, s2 = first[1], second[1]
    assert s1.calls == s2.calls and s1.outcomes == s2.outcomes
    assert s1.latency_p50_ms == pytest.approx(s2.latency_p50_ms, abs=0.1)


def test_a_rolling_restart_takes_its_starts_not_a_runaway_clock() -> None:
    """Stopping a replica's process is real time the clock holds for: a restart is its starts, not minutes."""
    with harness.deploy(ECHO, pattern="container", min_replicas=2, gateway=False) as d:
        clock = d._async.clock
        before = clock.now()
        d.restart()
        took = clock.now() - before
    # two starts of k8s-hpa's 2 s overhead plus a real import each; with the process's ending unheld, time
    # jumped from sync to sync while the old replica's process exited: 10,000 platform s and more
    assert 4 <= took < 10, took


def test_stream_then_close_returns_promptly() -> None:
    """A stream read to its end, then the block's exit: the deployment closes (the idle sweep ends with it)."""
    for _ in range(5):
        wall = time.monotonic()
        with harness.deploy(SLEEPER) as d:
            items = list(d.stream({"seconds": 0.5}))
        assert len(items) == 2 and items[-1].ok
        assert time.monotonic() - wall < 10  # it hung in close, the idle sweep jumping from expiry to expiry


def test_a_stream_is_a_caller_only_while_it_waits_for_an_item() -> None:
    """Between two items the reader's own code runs in real time: an open stream does not let time jump."""
    with harness.deploy(SLEEPER, timeout_s=120) as d:
        clock = d._async.clock
        stream = d.stream({"seconds": 60})
        first = next(stream)  # the agent's "sleeping" event; its 60 s wait has begun
        before = clock.now()
        time.sleep(0.05)
        passed = clock.now() - before  # real time only: no caller is waiting
        rest = list(stream)  # now one is: the wait is jumped over
    assert first == {"step": "sleeping", "seconds": 60.0}
    assert passed < 1.0, passed
    assert rest[-1].ok and rest[-1].latency_ms >= 60_000
