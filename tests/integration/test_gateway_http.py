"""The HTTP gateway against real deployments with an httpx client: the four modes (sync, tasks + polling,
webhook, SSE) for every implemented pattern, the wire contract, status codes, webhook signatures and
retries, auth, and the long task that only the async modes can carry past a 29 s gateway."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

import harness
from emulators.gateway import GatewayOptions, verify
from emulators.profiles import IMPLEMENTED_PATTERNS

pytestmark = [pytest.mark.integration, pytest.mark.both_loops]  # the engine runs on either loop

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "agents"
SLEEPER = f"{FIXTURES / 'sleeper.py'}:agent"
ECHO = f"{FIXTURES / 'echo.py'}:agent"
EMITTER = f"{FIXTURES / 'emitter.py'}:agent"
CRASHER = f"{FIXTURES / 'crasher.py'}:agent"
HEADERS = ("x-harness-outcome", "x-harness-cold-start", "x-harness-instance", "x-harness-latency-ms")


class Receiver:
    """A real local webhook receiver: verifies signatures, fails the first ``fail_first`` deliveries with 500."""

    def __init__(self, secret: str, fail_first: int = 0) -> None:
        self.secret, self.fail_first = secret, fail_first
        self.hits: list[dict[str, Any]] = []  # every request: status answered, headers, body
        self.accepted: list[dict[str, Any]] = []
        self.got = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                ok = verify(outer.secret, body, self.headers.get("x-harness-timestamp"),
                            self.headers.get("x-harness-signature"))
                status = 401 if not ok else (500 if len(outer.hits) < outer.fail_first else 200)
                outer.hits.append({"status": status, "headers": dict(self.headers), "body": body})
                if status == 200:
                    outer.accepted.append(json.loads(body))
                    outer.got.set()
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


@pytest.fixture
def receiver_factory() -> Iterator[Any]:
    """Make webhook receivers that are shut down after the test."""
    made: list[Receiver] = []

    def make(secret: str, fail_first: int = 0) -> Receiver:
        made.append(Receiver(secret, fail_first))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _poll(client: httpx.Client, status_url: str, timeout_s: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(status_url).json()
        if body["state"] in ("succeeded", "failed"):
            return body
        time.sleep(0.02)
    raise AssertionError(f"task at {status_url} did not finish in {timeout_s} s")


def _sse(client: httpx.Client, method: str, url: str, **kw: Any) -> list[tuple[str, str, Any]]:
    with connect_sse(client, method, url, **kw) as source:
        return [(e.id, e.event, json.loads(e.data)) for e in source.iter_sse()]


# ---- the four modes, every pattern ----------------------------------------------------------------------

@pytest.mark.parametrize("pattern", IMPLEMENTED_PATTERNS)
def test_sync_invoke_answers_the_result_with_harness_headers(pattern: str) -> None:
    """POST /invoke takes the task as the body and session_id in the query; 200 with the Result and headers."""
    with harness.deploy(SLEEPER, pattern, time_scale=0.01) as d, httpx.Client(base_url=d.url) as c:
        r = c.post("/invoke", params={"session_id": "s1"}, json={"seconds": 0.5})
        again = c.post("/invoke", json={"seconds": 0.5})
        [first, _] = d.records()

    assert r.status_code == 200
    body = r.json()
    assert body["ok"] and body["outcome"] == "ok" and body["output"]["slept"] == 0.5
    assert r.headers["x-harness-outcome"] == "ok"
    assert r.headers["x-harness-cold-start"] == ("true" if body["cold_start"] else "false")
    assert r.headers["x-harness-instance"] == body["instance_id"]
    assert float(r.headers["x-harness-latency-ms"]) == pytest.approx(body["latency_ms"], abs=0.001)
    assert again.headers["x-harness-cold-start"] == "false"  # warm on every pattern by the second call
    assert first.session_id == "s1"


@pytest.mark.parametrize("pattern", IMPLEMENTED_PATTERNS)
def test_tasks_then_polling_returns_events_and_result(pattern: str) -> None:
    """POST /tasks answers 202 with a task id and status URL; polling shows the events and the result."""
    with harness.deploy(EMITTER, pattern, time_scale=0.01) as d, httpx.Client(base_url=d.url) as c:
        r = c.post("/tasks", json={"n": 3, "every": 0.5})
        assert r.status_code == 202
        accepted = r.json()
        early = c.get(accepted["status_url"])
        done = _poll(c, accepted["status_url"])
        final = c.get(accepted["status_url"])

    assert set(HEADERS) <= set(r.headers)
    assert accepted["status_url"].endswith(f"/tasks/{accepted['task_id']}")
    assert early.json()["state"] in ("queued", "running") and early.json()["result"] is None
    assert early.headers["x-harness-outcome"] == ""
    assert done["state"] == "succeeded"
    assert done["events"] == [{"i": i, "of": 3} for i in range(3)]
    assert done["result"]["output"] == {"events": 3}
    assert final.headers["x-harness-outcome"] == "ok"


@pytest.mark.parametrize("pattern", IMPLEMENTED_PATTERNS)
def test_webhook_delivers_the_signed_result(pattern: str, receiver_factory: Any) -> None:
    """A callback_url in the query gets the final task JSON, signed with the deployment's secret."""
    with harness.deploy(EMITTER, pattern, time_scale=0.01) as d, httpx.Client(base_url=d.url) as c:
        rx = receiver_factory(d.webhook_secret)
        r = c.post("/tasks", params={"callback_url": rx.url}, json={"n": 2, "every": 0.5})
        assert rx.got.wait(20), "no webhook arrived"
        status = _poll(c, r.json()["status_url"])
        deadline = time.monotonic() + 5  # the receiver counts the hit before its answer reaches the sender
        while time.monotonic() < deadline and not status["webhook"]["delivered"]:
            status = c.get(r.json()["status_url"]).json()

    [hit] = rx.hits
    assert hit["status"] == 200
    [payload] = rx.accepted
    assert payload["task_id"] == r.json()["task_id"] and payload["state"] == "succeeded"
    assert payload["events"] == [{"i": 0, "of": 2}, {"i": 1, "of": 2}]
    assert payload["result"]["output"] == {"events": 2}
    assert status["webhook"]["delivered"] is True and status["webhook"]["attempts"] == 1


@pytest.mark.parametrize("pattern", IMPLEMENTED_PATTERNS)
def test_invoke_stream_sends_events_then_the_result(pattern: str) -> None:
    """POST /invoke/stream is an SSE stream of the emitted events (ids 0..n-1), then the result (id n)."""
    with harness.deploy(EMITTER, pattern, time_scale=0.01) as d, httpx.Client(base_url=d.url) as c:
        events = _sse(c, "POST", "/invoke/stream", json={"n": 3, "every": 0.5})

    assert [(i, kind) for i, kind, _ in events] == [("0", "progress"), ("1", "progress"), ("2", "progress"),
                                                    ("3", "result")]
    assert [data for _, kind, data in events if kind == "progress"] == [{"i": i, "of": 3} for i in range(3)]
    assert events[-1][2]["outcome"] == "ok" and events[-1][2]["output"] == {"events": 3}


# ---- the long task: 504 on the sync path, fine on every async path ------------------------------------

def test_a_60_s_task_is_504_on_invoke_but_succeeds_async(receiver_factory: Any) -> None:
    """On aws-lambda (29 s gateway) a 60 s task is a 504 on /invoke but succeeds via /tasks, webhook and SSE."""
    with harness.deploy(SLEEPER, "serverless", "aws-lambda", time_scale=0.005, timeout_s=900) as d, \
            httpx.Client(base_url=d.url, timeout=30) as c:
        # Warm: the gateway counts a cold start's init at its platform length, and the real seconds a loaded
        # host takes to start an instance would otherwise sit before the timed answer.
        assert c.post("/invoke", json={"seconds": 0}).status_code == 200
        t0 = time.monotonic()
        sync = c.post("/invoke", json={"seconds": 60})
        sync_wall = time.monotonic() - t0
        polled = _poll(c, c.post("/tasks", json={"seconds": 60}).json()["status_url"])
        rx = receiver_factory(d.webhook_secret)
        c.post("/tasks", params={"callback_url": rx.url}, json={"seconds": 60})
        assert rx.got.wait(20)
        streamed = _sse(c, "POST", "/invoke/stream", json={"seconds": 60})
        deadline = time.monotonic() + 10  # the 504'd call goes on; its record is labelled when it ends
        while time.monotonic() < deadline and not any(r.outcome == "gateway_timeout" for r in d.records()):
            time.sleep(0.02)
        records = d.records()

    assert sync.status_code == 504
    assert sync.json()["outcome"] == "gateway_timeout" and sync.headers["x-harness-outcome"] == "gateway_timeout"
    assert sync_wall < 60 * 0.005  # answered at the gateway limit, before the work ended
    assert polled["state"] == "succeeded" and polled["result"]["output"]["slept"] == 60
    assert rx.accepted[0]["result"]["output"]["slept"] == 60
    assert streamed[-1][1] == "result" and streamed[-1][2]["ok"]
    [gw] = [r for r in records if r.outcome == "gateway_timeout"]
    assert gw.latency_ms == 29000 and gw.duration_ms >= 60000  # the caller waited 29 s; the work ran on, billed
    assert gw.cost.compute_usd > 0 and "went on and ended ok" in (gw.error or "")
    assert sum(r.outcome == "ok" for r in records) == 4


# ---- status codes and input errors -------------------------------------------------------------------

def test_failures_map_to_platform_status_codes() -> None:
    """agent_error 502 and an oversized body 413, each with a JSON body naming the outcome."""
    with harness.deploy(CRASHER, time_scale=0.01, timeout_s=2, request_limit_bytes=1000) as d, \
            httpx.Client(base_url=d.url) as c:
        raised = c.post("/invoke", json={"how": "raise"})
        big = c.post("/invoke", content=b'{"pad": "' + b"x" * 5000 + b'"}')
        records = d.records()

    assert (raised.status_code, raised.json()["outcome"]) == (502, "agent_error")
    assert raised.headers["x-harness-outcome"] == "agent_error"
    assert (big.status_code, big.json()["outcome"]) == (413, "payload_too_large")
    assert big.headers["x-harness-outcome"] == "payload_too_large"
    assert "payload_too_large" in {r.outcome for r in records}  # refused calls are records too


def test_throttled_is_429() -> None:
    """A call beyond max_concurrency is a 429 whose body names the throttled outcome."""
    with harness.deploy(SLEEPER, time_scale=0.01, timeout_s=30, max_concurrency=1) as d, \
            httpx.Client(base_url=d.url) as c:
        busy = c.post("/tasks", json={"seconds": 20})
        time.sleep(0.05)
        throttled = c.post("/invoke", json={"seconds": 0.1})
        _poll(c, busy.json()["status_url"])
    assert (throttled.status_code, throttled.json()["outcome"]) == (429, "throttled")
    assert throttled.headers["x-harness-outcome"] == "throttled"


def test_timeout_is_504() -> None:
    """A call past the execution limit (timeout) is a 504 whose body names the outcome."""
    # Warm first and keep the scale at 0.01: the gateway's 29-second timer (290 ms here) also covers a cold
    # start, whose real spawn time is not scaled, so at 0.001 a slow machine's cold start alone passes it.
    with harness.deploy(SLEEPER, time_scale=0.01, timeout_s=3) as d, httpx.Client(base_url=d.url) as c:
        assert c.post("/invoke", json={"seconds": 0}).status_code == 200
        r = c.post("/invoke", json={"seconds": 20})
    assert (r.status_code, r.json()["outcome"]) == (504, "timeout")


@pytest.mark.parametrize(
    ("path", "content", "code"),
    [("/invoke", b"{not json", "invalid_json"), ("/tasks", b"", "empty_body"), ("/invoke", b"NaN", "invalid_json")],
)
def test_bad_input_is_a_clear_400(path: str, content: bytes, code: str) -> None:
    """A body that is empty or not JSON is a 400 with an error message and code, and every x-harness header."""
    with harness.deploy(SLEEPER, time_scale=0.01) as d, httpx.Client(base_url=d.url) as c:
        r = c.post(path, content=content)
        missing = c.get("/tasks/nope")
    assert r.status_code == 400 and r.json()["code"] == code and r.json()["error"]
    assert set(HEADERS) <= set(r.headers)
    assert missing.status_code == 404 and missing.json()["code"] == "unknown_task"


@pytest.mark.parametrize("pattern", ["serverless", "edge"])
def test_every_encoding_of_a_json_body_reaches_the_agent_as_the_same_task(pattern: str) -> None:
    """The body is handed on as the task's JSON where it can be (pretty, with a long integer or a lone
    surrogate escape); UTF-16 and a UTF-8 BOM, which the stdlib also reads, are encoded anew: one task each."""
    task = {"n": 123456789012345678901234567890, "s": "\ud800 é", "list": [1, 2.5, None]}
    text = json.dumps(task, indent=2)
    bodies = [text.encode(), text.encode("utf-16"), b"\xef\xbb\xbf" + text.encode(), b"  " + text.encode() + b"\n"]
    with harness.deploy(ECHO, pattern=pattern, time_scale=0.01) as d, httpx.Client(base_url=d.url) as c:
        answers = [c.post("/invoke", content=b, headers={"content-type": "application/json"}) for b in bodies]
    assert [a.status_code for a in answers] == [200] * 4
    assert [json.loads(a.content)["output"] for a in answers] == [{"echo": task}] * 4


def test_non_loopback_callback_is_refused_unless_allow_listed() -> None:
    """A webhook to a non-loopback host is a 400 (no SSRF by default); the Python API raises ConfigError."""
    with harness.deploy(SLEEPER, time_scale=0.01) as d, httpx.Client(base_url=d.url) as c:
        r = c.post("/tasks", params={"callback_url": "http://169.254.169.254/latest"}, json={})
        with pytest.raises(harness.ConfigError, match="not allowed"):
            d.submit({}, callback_url="http://10.0.0.1/hook")
    assert r.status_code == 400 and r.json()["code"] == "callback_url_refused"


# ---- webhooks: signature, tampering, retries ---------------------------------------------------------

def test_webhook_signature_verifies_and_a_tampered_body_is_rejected(receiver_factory: Any) -> None:
    """The receiver verifies the real delivery; the same headers with a changed body fail verification."""
    with harness.deploy(SLEEPER, time_scale=0.01) as d:
        rx = receiver_factory(d.webhook_secret)
        tid = d.submit({"seconds": 0.1}, callback_url=rx.url)
        assert rx.got.wait(20)
        d.wait(tid, 10)
    [hit] = rx.hits
    tampered = hit["body"].replace(b'"succeeded"', b'"failed"')
    assert tampered != hit["body"]
    h = hit["headers"]
    resp = httpx.post(rx.url, content=tampered, headers={k: h[k] for k in ("x-harness-timestamp",
                                                                          "x-harness-signature")})
    assert resp.status_code == 401
    assert not verify("another-secret", hit["body"], h["x-harness-timestamp"], h["x-harness-signature"])
    assert h["x-harness-task-id"] == tid


def test_a_receiver_failing_twice_gets_the_result_on_the_third_try(receiver_factory: Any) -> None:
    """Deliveries answered 500 are retried with back-off; the third attempt lands, with the same delivery id."""
    opts = GatewayOptions(webhook_backoff_s=1.0)
    with harness.deploy(SLEEPER, time_scale=0.01, gateway=opts) as d:
        rx = receiver_factory(d.webhook_secret, fail_first=2)
        tid = d.submit({"seconds": 0.1}, callback_url=rx.url)
        assert rx.got.wait(20)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and d.status(tid).state != "succeeded":
            time.sleep(0.01)
        state = httpx.get(f"{d.url}/tasks/{tid}").json()

    assert [h["status"] for h in rx.hits] == [500, 500, 200]
    assert len({h["headers"]["x-harness-delivery"] for h in rx.hits}) == 1
    assert rx.accepted[0]["result"]["ok"]
    assert state["webhook"] == {"url": rx.url, "attempts": 3, "delivered": True, "last_status": 200,
                                "last_error": "HTTP 500"}


# ---- auth, stats, metrics, health ----------------------------------------------------------------------

def test_api_key_is_required_when_set_except_for_healthz() -> None:
    """With an API key, requests without it get 401; x-api-key and Bearer both work; /healthz stays open."""
    with harness.deploy(SLEEPER, time_scale=0.01, gateway=GatewayOptions(api_key="k3y")) as d, \
            httpx.Client(base_url=d.url) as c:
        denied = c.post("/invoke", json={"seconds": 0.1})
        by_header = c.post("/invoke", json={"seconds": 0.1}, headers={"x-api-key": "k3y"})
        by_bearer = c.get("/stats", headers={"authorization": "Bearer k3y"})
        health = c.get("/healthz")
    assert denied.status_code == 401 and denied.json()["code"] == "unauthorized"
    assert set(HEADERS) <= set(denied.headers)
    assert by_header.status_code == 200 and by_bearer.status_code == 200 and health.status_code == 200


def test_stats_metrics_and_healthz_reflect_the_records() -> None:
    """/stats is the live summary JSON, /metrics the same in Prometheus text, /healthz names the deployment."""
    with harness.deploy(SLEEPER, time_scale=0.01) as d, httpx.Client(base_url=d.url) as c:
        c.post("/invoke", json={"seconds": 0.1})
        c.post("/invoke", json={"seconds": 0.1})
        stats = c.get("/stats")
        metrics = c.get("/metrics")
        health = c.get("/healthz").json()
        url = d.url

    s = stats.json()
    assert s["summary"]["calls"] == 2 and s["summary"]["outcomes"] == {"ok": 2} and s["url"] == url
    assert set(HEADERS) <= set(stats.headers)
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = metrics.text.splitlines()
    assert 'harness_invocations_total{pattern="serverless",profile="aws-lambda",outcome="ok"} 2' in lines
    assert 'harness_cold_starts_total{pattern="serverless",profile="aws-lambda"} 1' in lines
    assert "# TYPE harness_latency_ms summary" in lines
    assert health == {"status": "ok", "pattern": "serverless", "profile": "aws-lambda"}


def test_gateway_false_serves_no_http_but_tasks_still_work() -> None:
    """deploy(gateway=False) has no URL (ConfigError says why) while submit/wait/stream keep working."""
    with harness.deploy(EMITTER, time_scale=0.01, gateway=False) as d:
        with pytest.raises(harness.ConfigError, match="gateway=False"):
            _ = d.url
        r = d.wait(d.submit({"n": 2, "every": 0.1}), 20)
        items = list(d.stream({"n": 2, "every": 0.1}))
    assert r.ok and r.events == ({"i": 0, "of": 2}, {"i": 1, "of": 2})
    assert items[:2] == [{"i": 0, "of": 2}, {"i": 1, "of": 2}] and isinstance(items[2], harness.Record)


def test_closing_with_a_call_open_answers_503_without_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """Closing the deployment while POST /invoke waits answers that caller 503 shutting_down, logging no error."""
    got: list[httpx.Response] = []
    with harness.deploy(SLEEPER, time_scale=0.01, timeout_s=900) as d:
        client = httpx.Client(base_url=d.url, timeout=30)
        caller = threading.Thread(target=lambda: got.append(client.post("/invoke", json={"seconds": 600})))
        caller.start()
        deadline = time.monotonic() + 10
        while client.get("/stats").json()["instances"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # the call is in the instance, its agent asleep
    caller.join(10)
    client.close()
    (r,) = got
    assert (r.status_code, r.json()["code"]) == (503, "shutting_down")
    assert set(HEADERS) <= set(r.headers)
    assert not [rec for rec in caplog.records if rec.levelname == "ERROR"], caplog.text


def test_invoke_reads_session_id_from_the_query_and_counts_its_responses() -> None:
    """POST /invoke?session_id=... reaches the agent's session, and /stats counts the answers by status."""
    chat = f"{FIXTURES / 'chat_state.py'}:agent"
    with harness.deploy(chat, time_scale=0.01) as d, httpx.Client(base_url=d.url) as c:
        turns = [c.post("/invoke", params={"session_id": "s1"}, json={"message": "hi"}).json()["output"]
                 for _ in range(3)]
        c.post("/invoke", content=b"{not json")
        stats = c.get("/stats").json()
    assert [t["turn"] for t in turns] == [1, 2, 3]
    assert stats["http_responses"]["200"] >= 3 and stats["http_responses"]["400"] == 1


def test_the_gateway_timeout_counts_platform_time_on_a_scaled_clock() -> None:
    """At time_scale=0.005 the 29 s gateway is 0.145 s of wall time, yet 0.4 s of real CPU work is 0.4 s: a 200."""
    burner = f"{FIXTURES / 'cpu_burner.py'}:agent"
    with harness.deploy(burner, "serverless", "aws-lambda", time_scale=0.005, timeout_s=60, memory_mb=1769) as d, \
            httpx.Client(base_url=d.url, timeout=30) as c:
        cold = c.post("/invoke", json={"cpu_ms": 400})  # a cold start too: its init counts at platform length
        warm = c.post("/invoke", json={"cpu_ms": 400})
    for r in (cold, warm):
        assert r.status_code == 200 and r.json()["outcome"] == "ok", r.text
        assert r.json()["latency_ms"] < 29_000


def test_an_edge_gateway_limit_counts_platform_time_on_a_scaled_clock() -> None:
    """vercel-edge's 25 s at time_scale=0.002 are 50 ms of wall time; 60 ms of real CPU is still a 200."""
    burner = f"{FIXTURES / 'cpu_burner.py'}:agent"
    with harness.deploy(burner, "edge", "vercel-edge", time_scale=0.002) as d, \
            httpx.Client(base_url=d.url, timeout=30) as c:
        c.post("/invoke", json={"cpu_ms": 1})
        r = c.post("/invoke", json={"cpu_ms": 60})
    assert r.status_code == 200 and r.json()["outcome"] == "ok", r.text
