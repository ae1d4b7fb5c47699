"""Every invocation is an OpenTelemetry trace with the record's trace id: cold starts, LLM calls (a 429 and its
retry included), ctx.http requests, daemon attempts and queue waits, the gateway's request as the root; no
secret reaches a span; and the spans reach an OTLP/HTTP receiver."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

import harness

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROBE = f"{ROOT / 'fixtures' / 'agents' / 'trace_probe.py'}:agent"
KEY = "svc-live-7f3a9c1e5b2d4f60"  # a secret-looking env value the agent sends and prints


def _trace(d: harness.Deployment, trace_id: str) -> list[dict[str, Any]]:
    return [s for s in d.traces() if s["trace_id"] == trace_id]


def _kinds(spans: list[dict[str, Any]]) -> list[str]:
    return sorted(s["attributes"]["harness.kind"] for s in spans)


class _Server:
    """A tiny HTTP server on a free port: answers 200 to any GET and keeps every POST body by path."""

    def __init__(self) -> None:
        bodies: list[tuple[str, bytes]] = []
        self.bodies = bodies

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def do_POST(self) -> None:
                bodies.append((self.path, self.rfile.read(int(self.headers.get("content-length", 0)))))
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    try:
        yield s
    finally:
        s.close()


def test_a_cold_call_with_two_llm_calls_is_one_trace_of_init_agent_and_two_llm_spans() -> None:
    """A cold serverless call making two LLM calls yields one trace (the record's id): agent, init, 2 llm."""
    with harness.deploy(PROBE, time_scale=0.01, timeout_s=60) as d:
        r = d.invoke({"llm": 2})
        spans = _trace(d, r.trace_id)
    assert r.ok and r.cold_start, r.error
    assert _kinds(spans) == ["agent", "init", "llm", "llm"]
    root = next(s for s in spans if s["attributes"]["harness.kind"] == "agent")
    assert root["parent_span_id"] is None and root["attributes"]["harness.invocation_id"] == r.invocation_id
    assert all(s["parent_span_id"] == root["span_id"] for s in spans if s is not root)
    llm = [s for s in spans if s["attributes"]["harness.kind"] == "llm"]
    assert all(s["attributes"]["gen_ai.request.model"] == "gpt-4o-mini" for s in llm)
    assert sum(s["attributes"]["gen_ai.usage.output_tokens"] for s in llm) == r.output_tokens
    assert llm[0]["end_time_unix_nano"] <= llm[1]["start_time_unix_nano"]
    assert root["start_time_unix_nano"] <= min(s["start_time_unix_nano"] for s in llm)


def test_a_daemon_task_retried_after_a_crash_has_an_attempt_span_per_delivery_and_queue_waits() -> None:
    """A daemon task whose first attempt crashes its worker: task root, two attempts, a queue wait before each."""
    with harness.deploy(PROBE, pattern="daemon", time_scale=0.01, workers=1, state="memory://") as d:
        r = d.invoke({"crash_once": True})
        spans = _trace(d, r.trace_id)
    assert r.ok and r.attempts == 2, r.error
    assert _kinds(spans) == ["attempt", "attempt", "queue_wait", "queue_wait", "task"]
    root = next(s for s in spans if s["attributes"]["harness.kind"] == "task")
    assert root["parent_span_id"] is None
    attempts = sorted((s for s in spans if s["attributes"]["harness.kind"] == "attempt"),
                      key=lambda s: s["attributes"]["harness.attempt"])
    assert all(s["parent_span_id"] == root["span_id"] for s in spans if s is not root)
    assert [a["attributes"]["harness.outcome"] for a in attempts] == ["crash", "ok"]
    assert attempts[0]["status"]["code"] == "ERROR" and attempts[1]["status"]["code"] == "UNSET"
    assert attempts[0]["end_time_unix_nano"] <= attempts[1]["start_time_unix_nano"]


def test_a_call_through_the_gateway_has_the_gateway_span_as_root(server: _Server) -> None:
    """POST /invoke: the trace's root is the gateway request; the agent and its ctx.http GET hang below it."""
    # Real time counts 100x here: a first call pays ctx.http's client import (a few hundred ms of wall time on a
    # loaded machine, past the 29 s gateway timeout), so the traced call is the second, on a warm instance.
    with harness.deploy(PROBE, time_scale=0.01, timeout_s=900) as d:
        d.invoke({"http": 1, "url": f"{server.url}/data"})
        resp = httpx.post(f"{d.url}/invoke", json={"http": 1, "url": f"{server.url}/data?token=abc"}, timeout=30)
        r = d.records()[-1]
        spans = _trace(d, r.trace_id)
    assert resp.status_code == 200 and r.ok, r.error
    roots = [s for s in spans if s["parent_span_id"] is None]
    assert len(roots) == 1 and roots[0]["attributes"]["harness.kind"] == "gateway"
    assert roots[0]["attributes"]["http.response.status_code"] == 200
    agent = next(s for s in spans if s["attributes"]["harness.kind"] == "agent")
    assert agent["parent_span_id"] == roots[0]["span_id"]
    http = next(s for s in spans if s["attributes"]["harness.kind"] == "http")
    assert http["parent_span_id"] == agent["span_id"]
    assert http["attributes"]["http.request.method"] == "GET"
    assert http["attributes"]["server.address"] == "127.0.0.1"
    assert http["attributes"]["http.response.status_code"] == 200
    assert "token" not in str(http)  # the URL's path and query never reach a span


def test_a_429_retried_by_the_sdk_shows_the_refused_call_and_the_retry(tmp_path: Path) -> None:
    """At 1 request per minute the second call is refused (429, retry-after) and the SDK's retry is answered."""
    script = tmp_path / "one_rpm.toml"
    script.write_text("[limits]\nrpm = 1\nburst_s = 60.0\n\n[defaults]\nttft_s = 0.1\ntokens_per_s = 1000\n")
    with harness.deploy(PROBE, time_scale=0.002, timeout_s=600, llm_script=script) as d:
        r = d.invoke({"llm": 2})
        spans = _trace(d, r.trace_id)
    assert r.ok, r.error
    llm = sorted((s for s in spans if s["attributes"]["harness.kind"] == "llm"),
                 key=lambda s: s["start_time_unix_nano"])
    assert [s["attributes"]["http.response.status_code"] for s in llm] == [200, 429, 200]
    refused = llm[1]
    assert refused["attributes"]["harness.llm.fault"] == "rate_limited"
    assert refused["attributes"]["harness.llm.retry_after_s"] > 0
    assert refused["status"]["code"] == "ERROR"
    assert refused["end_time_unix_nano"] <= llm[2]["start_time_unix_nano"]


def test_an_api_key_the_agent_sends_and_prints_appears_in_no_span(server: _Server, tmp_path: Path) -> None:
    """The key goes in the agent's headers, its log and its error text: the exported JSON file has none of it."""
    path = tmp_path / "traces.jsonl"
    with harness.deploy(PROBE, time_scale=0.01, timeout_s=60, env={"MY_SERVICE_API_KEY": KEY}, traces=path,
                        keep_logs=True) as d:
        r = d.invoke({"llm": 1, "http": 1, "url": server.url, "key_env": "MY_SERVICE_API_KEY",
                      "fail_with_key": True})
        log = (d.run_dir / f"{r.instance_id}.log").read_text()
    text = path.read_text()
    assert r.outcome == "agent_error" and KEY in (r.error or "") and KEY in log  # the leak is real
    assert KEY not in text and "sk-live0123456789" not in text
    assert '"harness.kind"' in text and "[REDACTED]" in text  # the spans are there, the key is not
    assert "authorization" not in text.lower() and "x-api-key" not in text.lower()


def test_spans_are_exported_to_an_otlp_http_receiver(server: _Server) -> None:
    """traces="otlp://..." POSTs the spans as OTLP protobuf to /v1/traces, with the records' trace ids."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    endpoint = server.url.replace("http://", "otlp://")
    with harness.deploy(PROBE, time_scale=0.01, traces=endpoint) as d:
        records = [d.invoke({}) for _ in range(2)]
    got: dict[str, list[str]] = {}
    for path, body in server.bodies:
        assert path == "/v1/traces"
        req = ExportTraceServiceRequest.FromString(body)
        for rs in req.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    got.setdefault(span.trace_id.hex(), []).append(span.name)
    assert {r.trace_id for r in records} <= set(got)
    assert sorted(got[records[0].trace_id]) == ["agent", "init"]
    assert got[records[1].trace_id] == ["agent"]


def test_memory_traces_keep_only_the_latest_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Spans kept only in memory are those of the latest MAX_TRACES_PENDING calls (a long run stays flat)."""
    from emulators import tracing

    monkeypatch.setattr(tracing, "MAX_TRACES_PENDING", 3)
    with harness.deploy(f"{ROOT / 'fixtures' / 'agents' / 'echo.py'}:agent", "serverless") as d:
        records = [d.invoke({"i": i}) for i in range(6)]
        traced = {s["trace_id"] for s in d.traces()}
    assert traced == {r.trace_id for r in records[-3:]}


def test_memory_traces_packed_calls_build_the_same_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    """Calls kept pickled in packs (out of the collector's sight) give the latest MAX_TRACES_PENDING calls' spans."""
    from emulators import tracing

    monkeypatch.setattr(tracing, "MAX_TRACES_PENDING", 20)
    monkeypatch.setattr(tracing, "_PACK", 4)
    with harness.deploy(f"{ROOT / 'fixtures' / 'agents' / 'echo.py'}:agent", "serverless") as d:
        records = [d.invoke({"i": i}) for i in range(31)]  # 7 packs and 3 calls not packed yet
        spans = d.traces()
    assert {s["trace_id"] for s in spans} == {r.trace_id for r in records[-20:]}
    by_id = {s["trace_id"]: s for s in spans if s["name"] == "agent"}
    for r in records[-20:]:  # what a span says came through the pickle unchanged
        attrs = by_id[r.trace_id]["attributes"]
        assert (attrs["harness.invocation_id"], attrs["harness.latency_ms"]) == (r.invocation_id, r.latency_ms)
