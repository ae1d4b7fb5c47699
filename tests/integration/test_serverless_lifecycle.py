"""Serverless lifecycle with real instance processes: cold and warm starts, idle expiry, failures and
how instances are replaced after them, init, async agents, submit/stream, Lambda handlers, provisioned
concurrency and keep-warm pings."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest

import harness

pytestmark = [pytest.mark.integration, pytest.mark.both_loops]  # the engine runs on either loop

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "agents"
SLEEPER = str(FIXTURES / "sleeper.py") + ":agent"
CRASHER = str(FIXTURES / "crasher.py") + ":agent"
HEAVY_INIT = str(FIXTURES / "heavy_init.py") + ":agent"
ASYNC_ECHO = str(FIXTURES / "async_echo.py") + ":agent"
LAMBDA_HANDLER = str(FIXTURES / "lambda_handler.py") + ":handler"


# ---- cold, warm, idle expiry ---------------------------------------------------------------------------

def test_cold_then_warm_then_cold_after_idle_expiry() -> None:
    """The first call is cold, the next is warm on the same instance, and after idle expiry a new one is cold."""
    with harness.deploy(SLEEPER, idle_expiry_s=5) as d:  # virtual time: a slow host adds no idle time
        first = d.invoke({"seconds": 1})
        second = d.invoke({"seconds": 1})
        d.advance(50)  # 50 platform seconds idle: past the 5 s idle expiry, the instance is recycled
        third = d.invoke({"seconds": 1})

    assert first.ok, first.error
    assert first.cold_start and first.init_ms > 0
    assert second.ok, second.error
    assert not second.cold_start and second.init_ms == 0
    assert second.instance_id == first.instance_id
    assert third.ok, third.error
    assert third.cold_start
    assert third.instance_id not in (None, first.instance_id)


# ---- failures: what each one is, and that the instance is replaced -------------------------------------

@pytest.mark.parametrize(
    ("how", "names"),
    [("exit", "code 13"), ("signal", "SIGTERM"), ("segfault", "SIGSEGV")],
)
def test_instance_death_is_a_crash_and_the_next_call_is_cold(how: str, names: str) -> None:
    """An agent ending its process is a "crash" naming the exit code/signal with the agent's last log line."""
    with harness.deploy(CRASHER, time_scale=0.01, timeout_s=3) as d:
        warm = d.invoke({"how": "ok"})
        r = d.invoke({"how": how})
        after = d.invoke({"how": "ok"})

    assert warm.ok, warm.error
    assert r.outcome == "crash" and not r.ok
    assert r.instance_id == warm.instance_id and not r.cold_start
    assert r.error is not None
    assert names in r.error
    assert f"crasher: about to {how}" in r.error
    assert after.ok, after.error
    assert after.cold_start
    assert after.instance_id != r.instance_id


def test_agent_exception_is_agent_error_and_the_instance_survives() -> None:
    """An exception raised by the agent is "agent_error" with its type, and the instance stays warm."""
    with harness.deploy(CRASHER, time_scale=0.01, timeout_s=3) as d:
        r = d.invoke({"how": "raise"})
        after = d.invoke({"how": "ok"})

    assert r.outcome == "agent_error"
    assert r.error is not None and "ValueError" in r.error
    assert "the agent failed on purpose" in r.error
    assert after.ok and not after.cold_start and after.instance_id == r.instance_id


def test_non_json_output_is_agent_error() -> None:
    """An agent returning a value that is not JSON-serializable gets "agent_error" saying so."""
    with harness.deploy(CRASHER, time_scale=0.01, timeout_s=3) as d:
        r = d.invoke({"how": "nonjson"})
        after = d.invoke({"how": "ok"})

    assert r.outcome == "agent_error"
    assert r.error is not None and "not JSON-serializable" in r.error
    assert r.output is None
    assert after.ok and not after.cold_start and after.instance_id == r.instance_id


def test_busy_loop_hang_is_a_timeout_and_the_next_call_is_cold() -> None:
    """A busy loop that never returns is killed at timeout_s ("timeout"); the next call starts a new instance."""
    with harness.deploy(CRASHER, time_scale=0.01, timeout_s=3) as d:
        r = d.invoke({"how": "hang"})
        after = d.invoke({"how": "ok"})

    assert r.outcome == "timeout"
    assert r.duration_ms == pytest.approx(3000, rel=0.05)
    assert after.ok, after.error
    assert after.cold_start and after.instance_id != r.instance_id


# ---- init ----------------------------------------------------------------------------------------------

def test_failing_import_is_init_error_with_the_traceback_tail() -> None:
    """An agent whose import raises gives "init_error" carrying the exception message from its traceback."""
    with harness.deploy(HEAVY_INIT, time_scale=0.01, env={"HEAVY_INIT_FAIL": "1"}) as d:
        r = d.invoke({})

    assert r.outcome == "init_error" and not r.ok
    assert r.cold_start
    assert r.error is not None
    assert "model file not found" in r.error
    assert "Traceback" in r.error or "RuntimeError" in r.error


def test_heavy_init_is_paid_once_on_the_cold_start() -> None:
    """Real import-time work counts in init_ms of the cold call, and the next call is warm without it."""
    with harness.deploy(HEAVY_INIT, time_scale=0.01, env={"HEAVY_INIT_CPU_MS": "200"}) as d:
        first = d.invoke({})
        second = d.invoke({})

    assert first.ok, first.error
    assert first.cold_start and first.init_ms >= 200
    assert first.latency_ms >= first.init_ms
    assert second.ok, second.error
    assert not second.cold_start and second.init_ms == 0
    assert second.output == first.output  # the same loaded module: init did not run again


# ---- async agents, submit/status/wait, stream ----------------------------------------------------------

def test_async_agent_runs() -> None:
    """An ``async def`` agent is awaited and its emulated wait counts in platform time."""
    with harness.deploy(ASYNC_ECHO, time_scale=0.01) as d:
        r = d.invoke({"seconds": 0.5, "x": 1})

    assert r.ok, r.error
    assert r.output == {"echo": {"seconds": 0.5, "x": 1}}
    assert r.duration_ms >= 500


def test_adeploy_runs_the_same_engine_from_asyncio() -> None:
    """``async with harness.adeploy(...)`` invokes the agent as the sync facade does."""

    async def main() -> list[harness.Record]:
        async with harness.adeploy(SLEEPER, time_scale=0.01) as d:
            return [await d.invoke({"seconds": 0.2}), await d.invoke({"seconds": 0.2})]

    first, second = asyncio.run(main())
    assert first.ok and first.cold_start
    assert second.ok and not second.cold_start and second.instance_id == first.instance_id


def test_submit_status_wait() -> None:
    """submit returns an id at once; status is running until wait returns the Record, then succeeded."""
    with harness.deploy(SLEEPER, time_scale=0.01, timeout_s=30) as d:
        tid = d.submit({"seconds": 10})
        early = d.status(tid)
        r = d.wait(tid, timeout_s=30)
        done = d.status(tid)

    assert isinstance(tid, str) and tid
    assert early.state in ("queued", "running") and early.result is None
    assert r.ok, r.error
    assert r.output["slept"] == 10
    assert r.events == ({"step": "sleeping", "seconds": 10.0},)
    assert done.state == "succeeded" and done.result == r


def test_submit_of_a_failing_task_ends_failed() -> None:
    """A submitted task that times out ends in state "failed" with its timeout Record."""
    with harness.deploy(SLEEPER, time_scale=0.001, timeout_s=3) as d:
        tid = d.submit({"seconds": 20})
        r = d.wait(tid, timeout_s=30)
        st = d.status(tid)

    assert r.outcome == "timeout"
    assert st.state == "failed" and st.result is not None and st.result.outcome == "timeout"


def test_stream_yields_events_then_the_record() -> None:
    """stream() yields the agent's emitted progress event, then the final Record."""
    with harness.deploy(SLEEPER, time_scale=0.01) as d:
        items = list(d.stream({"seconds": 0.5}))

    assert len(items) == 2
    assert items[0] == {"step": "sleeping", "seconds": 0.5}
    final = items[-1]
    assert isinstance(final, harness.Record)
    assert final.ok and final.output["slept"] == 0.5
    assert final.events == (items[0],)


# ---- Lambda-style handlers -----------------------------------------------------------------------------

@pytest.mark.parametrize("adapter", ["auto", "lambda"])
def test_lambda_handler_context_is_as_on_aws(adapter: str) -> None:
    """handler(event, context) gets an AWS-like context: remaining time, request id, name, memory, ARN, logs."""
    with harness.deploy(LAMBDA_HANDLER, time_scale=0.01, timeout_s=3, adapter=adapter) as d:
        r = d.invoke({})

    assert r.ok, r.error
    out = r.output
    assert out["statusCode"] == 200
    assert isinstance(out["remaining_before_ms"], int)
    assert out["remaining_before_ms"] == pytest.approx(3000, rel=0.05)
    assert out["remaining_after_ms"] < out["remaining_before_ms"]
    assert out["aws_request_id"] == r.invocation_id
    assert out["function_name"] == "handler"
    assert out["memory_limit_in_mb"] == "128"
    assert re.fullmatch(r"arn:aws:lambda:[a-z]{2}(-[a-z]+)+-\d:\d{12}:function:handler",
                        out["invoked_function_arn"])
    assert out["log_group_name"] == "/aws/lambda/handler"


def test_lambda_context_uses_the_configured_function_name_and_memory() -> None:
    """function_name= and memory_mb= show in the AWS context as on AWS (memory as a string)."""
    with harness.deploy(LAMBDA_HANDLER, time_scale=0.01, timeout_s=3, function_name="my-fn",
                        memory_mb=512) as d:
        r = d.invoke({})

    assert r.ok, r.error
    assert r.output["function_name"] == "my-fn"
    assert r.output["memory_limit_in_mb"] == "512"
    assert r.output["invoked_function_arn"].endswith(":function:my-fn")
    assert r.output["log_group_name"] == "/aws/lambda/my-fn"


def test_agent_adapter_forced_on_a_lambda_handler_gives_it_the_harness_ctx() -> None:
    """adapter="agent" passes the harness ctx, which has no AWS methods, so the handler fails (agent_error)."""
    with harness.deploy(LAMBDA_HANDLER, time_scale=0.01, timeout_s=3, adapter="agent") as d:
        r = d.invoke({})

    assert r.outcome == "agent_error"
    assert r.error is not None and "get_remaining_time_in_millis" in r.error


# ---- provisioned concurrency and keep-warm pings -------------------------------------------------------

def test_provisioned_concurrency_is_warm_from_the_first_call_and_costs() -> None:
    """With provisioned instances the first call is warm, and the deployment has a fixed cost."""
    with harness.deploy(SLEEPER, time_scale=0.001, provisioned_concurrency=2) as d:
        r = d.invoke({"seconds": 0.1})
        s = d.summary()

    assert r.ok, r.error
    assert not r.cold_start and r.init_ms == 0
    assert s.cold_starts == 0
    assert s.fixed_cost_usd > 0
    # 2 instances x 5 min minimum billing x 0.125 GB x the provisioned GB-s price
    assert s.fixed_cost_usd == pytest.approx(2 * 300 * 128 / 1024 * 0.0000041667, rel=1e-6)


def test_two_simultaneous_calls_on_two_provisioned_instances_are_both_warm() -> None:
    """Two overlapping calls use the two provisioned instances, neither cold."""
    with harness.deploy(SLEEPER, time_scale=0.01, timeout_s=30, provisioned_concurrency=2) as d:
        a, b = d.submit({"seconds": 10}), d.submit({"seconds": 10})
        ra, rb = d.wait(a, 30), d.wait(b, 30)

    assert ra.ok and rb.ok
    assert not ra.cold_start and not rb.cold_start
    assert ra.instance_id != rb.instance_id


def test_provisioned_instances_do_not_idle_expire() -> None:
    """A provisioned instance is still warm long after the idle expiry."""
    with harness.deploy(SLEEPER, time_scale=0.001, provisioned_concurrency=1, idle_expiry_s=5) as d:
        first = d.invoke({"seconds": 0.1})
        time.sleep(0.05)
        later = d.invoke({"seconds": 0.1})

    assert first.ok and later.ok
    assert not later.cold_start and later.instance_id == first.instance_id


def test_warmup_pings_keep_the_instance_warm_and_are_billed() -> None:
    """Keep-warm pings run every warmup_interval_s, are billed, and keep an instance past the idle expiry."""
    with harness.deploy(SLEEPER, time_scale=0.001, warmup_interval_s=60, idle_expiry_s=300) as d:
        first = d.invoke({"seconds": 0.1})
        time.sleep(0.5)  # 500 platform seconds: past the 300 s idle expiry, ~8 ping periods
        later = d.invoke({"seconds": 0.1})
        s = d.summary()
        records = d.records()

    assert first.ok and later.ok
    pings = [r for r in records if r.trigger == "warmup"]
    assert s.warmup_pings == len(pings) > 0
    assert all(p.ok and p.billed_ms > 0 and p.cost.total_usd > 0 for p in pings)
    assert s.calls == 2  # pings are billed but are not calls
    assert s.cost_usd == pytest.approx(sum(r.cost.total_usd for r in records), rel=1e-9)
    assert not later.cold_start
    assert later.instance_id == first.instance_id


def test_a_burst_of_two_hundred_cold_starts_all_run() -> None:
    """200 calls at once on an empty fleet: 200 cold starts, all ok (the zygote's request queue holds ~10)."""
    import asyncio

    async def burst() -> list[harness.Record]:
        async with harness.adeploy(str(FIXTURES / "sleeper.py") + ":agent", time_scale=0.01, gateway=False,
                                   llm="off") as d:
            return list(await asyncio.gather(*(d.invoke({"seconds": 1}) for _ in range(200))))

    records = asyncio.run(burst())
    assert [r.outcome for r in records] == ["ok"] * 200
    assert sum(r.cold_start for r in records) == 200
