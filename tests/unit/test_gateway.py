"""The gateway's pure parts: webhook signatures and target checks, status mapping, options, the task
registry with a fake emulator (retries, follow/resume, close), and the checked-in OpenAPI copy."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from emulators.clock import Clock
from emulators.errors import ConfigError
from emulators.gateway import (
    GatewayOptions,
    TaskRegistry,
    async_request_limit,
    async_retry_delays,
    check_target,
    sign,
    verify,
)
from emulators.gateway.app import harness_headers, status_for
from emulators.gateway.openapi import openapi_document
from emulators.gateway.streams import parse_last_event_id
from emulators.records import Record, Result

from .conftest import ROOT


class FakeEmulator:
    """Answers each call with the next outcome from a list, emitting two events per call."""

    pattern = "serverless"

    def __init__(self, outcomes: list[str]) -> None:
        self.outcomes = list(outcomes)
        self.records: list[Record] = []
        self.calls = 0

    async def invoke(self, task: Any, session_id: str | None = None, *, on_event: Any = None) -> Record:
        self.calls += 1
        for i in range(2):
            await asyncio.sleep(0)
            if on_event is not None:
                on_event({"call": self.calls, "i": i})
        outcome = self.outcomes.pop(0)
        rec = Record(ok=outcome == "ok", outcome=outcome, output=task, session_id=session_id)
        self.records.append(rec)
        return rec


def test_signature_round_trip_and_tamper_detection() -> None:
    """verify accepts our signature and refuses a changed body, timestamp, secret or an old timestamp."""
    body, ts = b'{"a":1}', "1700000000"
    sig = sign("s3cret", ts, body)
    assert sig.startswith("v1=")
    assert verify("s3cret", body, ts, sig, now=1700000010)
    assert not verify("s3cret", b'{"a":2}', ts, sig, now=1700000010)
    assert not verify("s3cret", body, "1700000001", sig, now=1700000010)
    assert not verify("other", body, ts, sig, now=1700000010)
    assert not verify("s3cret", body, ts, sig, now=1700000000 + 301)  # replayed later than the tolerance
    assert not verify("s3cret", body, None, sig) and not verify("s3cret", body, "x", sig)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x", "http://localhost/h", "https://[::1]:8443/h",
                                 "http://127.8.9.10/"])
def test_loopback_callbacks_are_allowed_by_default(url: str) -> None:
    """Loopback targets need no allow-list."""
    assert check_target(url) == url


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data", "http://10.0.0.1/",
                                 "http://example.com/hook", "ftp://127.0.0.1/", "127.0.0.1:80/x",
                                 "http://user:pw@127.0.0.1/", "http://127.0.0.1:99999/"])
def test_other_callbacks_are_refused_by_default(url: str) -> None:
    """Non-loopback hosts, other schemes, credentials and malformed URLs are a ConfigError."""
    with pytest.raises(ConfigError):
        check_target(url)


def test_allow_list_admits_named_hosts_and_networks() -> None:
    """Allow-list entries may be host names, IPs or CIDR networks; '*' allows everything."""
    assert check_target("https://hooks.example.com/x", ["hooks.example.com"])
    assert check_target("http://10.1.2.3/x", ["10.0.0.0/8"])
    assert check_target("http://192.0.2.1/x", ["*"])
    with pytest.raises(ConfigError):
        check_target("http://evil.example.com/x", ["hooks.example.com", "10.0.0.0/8"])


@pytest.mark.parametrize(("outcome", "status"), [
    ("ok", 200), ("throttled", 429), ("payload_too_large", 413), ("timeout", 504), ("gateway_timeout", 504),
    ("agent_error", 502), ("crash", 502), ("oom", 502), ("init_error", 502)])
def test_outcomes_map_to_platform_status_codes(outcome: str, status: int) -> None:
    """Each outcome kind answers the platform's HTTP status."""
    assert status_for(outcome) == status


def test_harness_headers_are_empty_without_a_result() -> None:
    """Responses about no invocation still carry the four headers, empty."""
    assert harness_headers(None) == dict.fromkeys(
        ("x-harness-outcome", "x-harness-cold-start", "x-harness-instance", "x-harness-latency-ms"), "")
    h = harness_headers(Result(ok=True, outcome="ok", cold_start=True, instance_id="i-1", latency_ms=12.5))
    assert h == {"x-harness-outcome": "ok", "x-harness-cold-start": "true", "x-harness-instance": "i-1",
                 "x-harness-latency-ms": "12.500"}


def test_options_validate_and_default_to_loopback() -> None:
    """Defaults bind loopback with a random secret; bad values are a ConfigError."""
    a, b = GatewayOptions(), GatewayOptions()
    assert a.host == "127.0.0.1" and not a.exposed and a.webhook_secret != b.webhook_secret
    assert GatewayOptions(host="0.0.0.0").exposed
    for bad in ({"port": 70000}, {"webhook_attempts": 0}, {"keepalive_s": 0}, {"api_key": ""},
                {"webhook_allow": "example.com"}):
        with pytest.raises(ConfigError):
            GatewayOptions(**bad)


def test_async_limits_and_retries_come_from_platform_facts() -> None:
    """Lambda's async payload is 1 MB (A2, A23); Lambda async and Netlify background retry after 1 and 2 min."""
    assert async_request_limit("aws-lambda", 6291456) == 1_048_576
    assert async_request_limit("vercel-functions", 4718592) == 4718592
    assert async_retry_delays("netlify-functions") == (60.0, 120.0)
    assert async_retry_delays("aws-lambda") == (60.0, 120.0)  # 2 retries, 1 then 2 min (A54, A55)
    assert async_retry_delays("vercel-functions") == ()


def test_last_event_id_parsing() -> None:
    """A missing or malformed Last-Event-ID restarts from the start; a number resumes after it."""
    assert parse_last_event_id(None) == -1 and parse_last_event_id("junk") == -1
    assert parse_last_event_id(" 4 ") == 4


def test_registry_retries_a_failed_task_after_the_delays() -> None:
    """A background task that fails is run again after each delay; the result counts every attempt."""

    async def main() -> tuple[Any, FakeEmulator]:
        emu = FakeEmulator(["agent_error", "crash", "ok"])
        reg = TaskRegistry(emu, Clock(0.001), retry_delays_s=(60.0, 120.0))  # type: ignore[arg-type]
        t = reg.submit({"q": 1}, "s1")
        rec = await t.wait(5)
        await reg.close()
        return (t, rec), emu

    (t, rec), emu = asyncio.run(main())
    assert emu.calls == 3 and rec.ok and rec.attempts == 3 and t.state == "succeeded"
    assert len(t.events) == 6  # the events of every attempt, in order
    assert [r.outcome for r in emu.records] == ["agent_error", "crash", "ok"]  # one record per invocation


def test_registry_does_not_retry_payload_too_large_or_streams() -> None:
    """A refused payload is final, and a stream (retries=False) is a single attempt."""

    async def main() -> list[Record]:
        reg = TaskRegistry(FakeEmulator(["payload_too_large", "agent_error", "ok"]),  # type: ignore[arg-type]
                           Clock(0.001), retry_delays_s=(1.0,))
        a = await reg.submit({}).wait(5)
        b = await reg.submit({}, retries=False).wait(5)
        await reg.close()
        return [a, b]

    a, b = asyncio.run(main())
    assert (a.outcome, a.attempts) == ("payload_too_large", 1)
    assert (b.outcome, b.attempts) == ("agent_error", 1)


def test_follow_resumes_after_an_id_and_close_ends_unfinished_tasks() -> None:
    """follow(after=i) yields from id i+1; closing the registry gives a waiting follower a 'lost' result."""

    class Hanging(FakeEmulator):
        async def invoke(self, task: Any, session_id: str | None = None, *, on_event: Any = None) -> Record:
            on_event({"first": True})
            await asyncio.sleep(3600)
            raise AssertionError("unreachable")

    async def main() -> tuple[list[Any], list[Any]]:
        reg = TaskRegistry(FakeEmulator(["ok"]), Clock(0.001))  # type: ignore[arg-type]
        t = reg.submit({"x": 1})
        await t.wait(5)
        resumed = [(i, kind) async for i, kind, _ in t.follow(after=0)]
        hang = TaskRegistry(Hanging([]), Clock(0.001))  # type: ignore[arg-type]
        h = hang.submit({})
        await asyncio.sleep(0.01)
        asyncio.get_running_loop().call_later(0.02, lambda: asyncio.ensure_future(hang.close()))
        followed = [(kind, getattr(item, "outcome", item)) async for _, kind, item in h.follow()]
        return resumed, followed

    resumed, followed = asyncio.run(main())
    assert resumed == [(1, "progress"), (2, "result")]
    assert followed == [("progress", {"first": True}), ("result", "lost")]


def test_checked_in_openapi_matches_the_code() -> None:
    """docs/gateway-openapi.json is exactly openapi_document() (regenerate it when the routes change)."""
    assert json.loads((ROOT / "docs" / "gateway-openapi.json").read_text()) == openapi_document()
    doc = openapi_document()
    assert {"/invoke", "/invoke/stream", "/tasks", "/tasks/{task_id}", "/tasks/{task_id}/events", "/stats",
            "/healthz", "/metrics", "/openapi.json", "/_harness/dashboard", "/_harness/timeline",
            "/_harness/charts"} == set(doc["paths"])


def test_the_invoke_answers_header_pairs_are_harness_headers_encoded() -> None:
    """harness_header_bytes (POST /invoke's hot path) gives exactly harness_headers' names and values, encoded."""
    from emulators.gateway.app import harness_header_bytes, harness_headers

    for r in (Record(ok=True, outcome="ok", latency_ms=1.23456, instance_id="i-0001", cold_start=True),
              Record(ok=False, outcome="gateway_timeout", latency_ms=29000.0)):
        assert harness_header_bytes(r) == [(k.encode(), v.encode("latin-1")) for k, v in harness_headers(r).items()]
