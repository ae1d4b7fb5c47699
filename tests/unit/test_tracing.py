"""Spans built from records after the fact: the record's trace id, the tree (gateway, task, queue waits,
attempts, init, LLM and ctx.http spans), redaction of every string, OTLP/JSON lines, and the options."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from emulators import tracing
from emulators.errors import ConfigError
from emulators.llm.server import LLMCall
from emulators.pattern import traced
from emulators.records import Record
from emulators.tracing import GatewayCall, TraceOptions, Tracer, keep, otlp_endpoint, take, task_trace_id

SECRET = "svc-live-0123456789abcdef"


def _tracer(path: Path | None = None) -> Tracer:
    return Tracer(resource={"service.name": "probe"}, env={"MY_API_KEY": SECRET}, path=path)


def _record(t0: float, **kw: Any) -> Record:
    base: dict[str, Any] = {"ok": True, "outcome": "ok", "trace_id": "ab" * 16, "invocation_id": "inv-1",
                            "pattern": "serverless", "profile": "aws-lambda", "started_at": t0, "ended_at": t0 + 1.0}
    return Record(**{**base, **kw})


def _llm(start: float, status: int = 200, **kw: Any) -> LLMCall:
    return LLMCall("i-0001", "inv-1", "openai", "chat.completions", "gpt-4o-mini", status,
                   12 if status == 200 else 0, 8 if status == 200 else 0, 0.3, 0.05, False, started_at=start, **kw)


def _by_kind(spans: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return sorted((s for s in spans if s["attributes"]["harness.kind"] == kind),
                  key=lambda s: s["start_time_unix_nano"])


def test_a_cold_call_becomes_one_trace_with_the_records_id() -> None:
    """Agent root, init from the instance's boot, an LLM span per call and a ctx.http span, all one trace id."""
    t0 = time.time()
    rec = _record(t0, cold_start=True, init_ms=250.0, instance_id="i-0001")
    call = (t0 + 0.3, t0 + 0.9, (t0 + 0.01, t0 + 0.29), [["GET", "api.example.com", t0 + 0.6, t0 + 0.7, 404]])
    tr = _tracer()
    tr.add(rec, [(rec, [_llm(t0 + 0.3), _llm(t0 + 0.4, 429, fault="rate_limited", retry_after_s=2.0)], call)])
    spans = tr.spans()
    assert {s["trace_id"] for s in spans} == {"ab" * 16}
    root = _by_kind(spans, "agent")[0]
    assert root["parent_span_id"] is None and root["kind"] == "SERVER"
    assert all(s["parent_span_id"] == root["span_id"] for s in spans if s is not root)
    init = _by_kind(spans, "init")[0]
    assert init["start_time_unix_nano"] == int((t0 + 0.01) * 1e9) and init["attributes"]["harness.init_ms"] == 250.0
    ok, refused = _by_kind(spans, "llm")
    assert ok["name"] == "chat gpt-4o-mini" and ok["attributes"]["gen_ai.usage.input_tokens"] == 12
    assert refused["status"]["code"] == "ERROR" and refused["attributes"]["harness.llm.retry_after_s"] == 2.0
    http = _by_kind(spans, "http")[0]
    assert http["name"] == "GET api.example.com" and http["status"]["code"] == "ERROR"
    assert http["attributes"]["http.response.status_code"] == 404


def test_a_daemon_task_has_queue_waits_and_an_attempt_span_per_delivery() -> None:
    """The task root spans submit to end; each delivery is a queue wait then an attempt, children of the task."""
    t0 = time.time() - 2.0
    first = _record(t0 + 0.1, pattern="daemon", ok=False, outcome="crash", error="the instance process died",
                    ended_at=t0 + 0.2)
    second = _record(t0 + 0.5, pattern="daemon", ended_at=t0 + 0.6)
    task = _record(t0 + 0.5, pattern="daemon", attempts=2, latency_ms=200_000.0, ended_at=t0 + 0.6)
    tr = _tracer()
    tr.add(task, [(first, [], None), (second, [], None)])
    spans = tr.spans()
    root = _by_kind(spans, "task")[0]
    assert root["parent_span_id"] is None and len(spans) == 5
    assert all(s["parent_span_id"] == root["span_id"] for s in spans if s is not root)
    assert root["duration_ms"] == pytest.approx(2000.0, rel=0.05)  # 200 platform s at 0.01
    waits, attempts = _by_kind(spans, "queue_wait"), _by_kind(spans, "attempt")
    assert [a["name"] for a in attempts] == ["attempt 1", "attempt 2"]
    assert attempts[0]["status"] == {"code": "ERROR", "message": "the instance process died"}
    assert waits[1]["start_time_unix_nano"] == attempts[0]["end_time_unix_nano"]
    assert waits[1]["end_time_unix_nano"] == attempts[1]["start_time_unix_nano"]


def test_the_gateway_request_is_the_root_when_the_call_came_over_http() -> None:
    """A GatewayCall becomes the root SERVER span; the agent span is its INTERNAL child."""
    t0 = time.time()
    gw = GatewayCall("POST", "/invoke", start=t0 - 0.01, end=t0 + 1.01, status=200)
    tr = _tracer()
    tr.add(_record(t0), [], gw)
    spans = tr.spans()
    root, agent = _by_kind(spans, "gateway")[0], _by_kind(spans, "agent")[0]
    assert root["parent_span_id"] is None and root["name"] == "gateway POST /invoke" and root["kind"] == "SERVER"
    assert agent["parent_span_id"] == root["span_id"] and agent["kind"] == "INTERNAL"


def test_secrets_never_reach_a_span_nor_the_json_file(tmp_path: Path) -> None:
    """Env secrets and key shapes in error text, model names or hosts are redacted in spans and in the file."""
    path = tmp_path / "t.jsonl"
    t0 = time.time()
    rec = _record(t0, ok=False, outcome="agent_error", error=f"refused {SECRET} and sk-abcdefghijklmnop0123")
    tr = _tracer(path)
    tr.add(rec, [(rec, [], (t0, t0 + 1, None, [["GET", f"{SECRET}.example.com", t0, t0 + 0.1, 200]]))])
    tr.close()
    text = path.read_text()
    assert SECRET not in json.dumps(tr.spans()) and SECRET not in text and "sk-abcdefghijklmnop" not in text
    assert "[REDACTED]" in text


def test_the_file_holds_one_otlp_json_request_per_batch(tmp_path: Path) -> None:
    """Each flush appends one ExportTraceServiceRequest line: resource, scope, spans with hex ids."""
    path = tmp_path / "t.jsonl"
    tr = _tracer(path)
    tr.add(_record(time.time()), [])
    tr.flush()
    tr.add(_record(time.time(), trace_id="cd" * 16), [])
    tr.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 2
    rs = lines[0]["resourceSpans"][0]
    assert {"key": "service.name", "value": {"stringValue": "probe"}} in rs["resource"]["attributes"]
    span = rs["scopeSpans"][0]["spans"][0]
    assert span["traceId"] == "ab" * 16 and len(span["spanId"]) == 16 and span["kind"] == 2  # SERVER
    assert int(span["endTimeUnixNano"]) > int(span["startTimeUnixNano"])


def test_traced_hands_the_material_over_and_keeps_nothing_without_a_tracer() -> None:
    """finish_record's material is taken by the record's hook, with or without a tracer."""
    rec = _record(time.time(), trace_id="ef" * 16)
    keep(rec, {"llm": [], "trace": None})
    traced(SimpleNamespace(tracer=None), rec)  # type: ignore[arg-type]
    assert take(rec.trace_id) == []
    tr = _tracer()
    keep(rec, {"llm": [], "trace": None})
    traced(SimpleNamespace(tracer=tr), rec)  # type: ignore[arg-type]
    assert len(tr.spans()) == 1


def test_kept_material_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Material whose record never comes (a task still retrying at close) is forgotten oldest first."""
    monkeypatch.setattr(tracing, "_MAX_KEPT", 3)
    ids = [f"{i:032x}" for i in range(5)]
    for tid in ids:
        keep(_record(0.0, trace_id=tid), {})
    assert take(ids[0]) == [] and take(ids[1]) == [] and len(take(ids[4])) == 1
    for tid in ids:
        take(tid)


def test_a_daemon_tasks_trace_id_is_stable_per_task() -> None:
    """Every attempt of a task, in any process, joins one trace: 32 hex digits derived from the task id."""
    assert task_trace_id("t-1") == task_trace_id("t-1") != task_trace_id("t-2")
    assert len(task_trace_id("t-1")) == 32 and int(task_trace_id("t-1"), 16)


@pytest.mark.parametrize(("given", "env", "expected"), [
    ("otlp://127.0.0.1:4318", {}, "http://127.0.0.1:4318/v1/traces"),
    ("otlp+https://collector.example:443/custom", {}, "https://collector.example:443/custom"),
    (None, {"HARNESS_OTLP_ENDPOINT": "http://c:4318"}, "http://c:4318/v1/traces"),
    (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}, "http://c:4318/v1/traces"),
    (None, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:9/x"}, "http://c:9/x"),
    (None, {}, None),
    ("out.jsonl", {}, None),
])
def test_the_otlp_endpoint_comes_from_the_argument_or_the_environment(given: str | None, env: dict[str, str],
                                                                      expected: str | None) -> None:
    """otlp:// and otlp+https:// URLs, then HARNESS_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_* as the SDK reads them."""
    assert otlp_endpoint(given, env) == expected


def test_trace_options_accept_off_a_path_or_an_endpoint_and_refuse_the_rest() -> None:
    """False/'off' turn traces off; a path is a file; a bad value or a hostless otlp URL is a ConfigError."""
    assert TraceOptions.parse(False) is None and TraceOptions.parse("off") is None
    assert TraceOptions.parse("t.jsonl", {}) == TraceOptions(path="t.jsonl")
    assert TraceOptions.parse(None, {}) == TraceOptions()
    assert TraceOptions.parse("otlp://h:1", {}) == TraceOptions(otlp="http://h:1/v1/traces")
    with pytest.raises(ConfigError, match="traces must be"):
        TraceOptions.parse(3, {})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="names no host"):
        TraceOptions.parse("otlp://", {})
