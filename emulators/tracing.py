"""Traces: every invocation is an OpenTelemetry trace whose trace id is its Record's ``trace_id``.

Spans are built in the control process after the fact, from what the harness records anyway: the Record
(wall ``started_at``/``ended_at``), the instance's call (its wall start and end, its cold start, its
``ctx.http`` requests), the LLM endpoint's ``LLMCall``s (wall start, status, tokens, fault, retry-after) and,
for a call that came over HTTP, the gateway's request. The instance process needs no exporter.

Per call the hot path only keeps references (``finish_record`` -> ``keep``; the pattern's ``_add`` ->
``traced`` -> ``Tracer.add``: a dict pop and a list append). Spans are made lazily, in a batch, when someone
asks (``Tracer.spans()``, ``flush()``, ``close()``) or, with an OTLP endpoint, on a background thread every
``flush_interval_s``; export runs on the SDK's ``BatchSpanProcessor`` thread. Spans are built as SDK
``ReadableSpan``s directly (a third of the cost of ``start_span``) with the record's trace id, and handed to
the deployment's ``TracerProvider``'s span processors: the in-memory JSON exporter always, OTLP/HTTP when
asked (``traces="otlp://host:4318"``, ``HARNESS_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT``).

Every string that reaches a span (names, attributes, status messages) passes the report redaction rules
(``emulators.redact``): headers, URL paths and queries, outputs and events are never put in a span at all.
"""

from __future__ import annotations

import contextvars
import json
import os
import pickle
import random
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from .errors import ConfigError
from .records import Record
from .redact import Redactor, secret_values

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan, SynchronousMultiSpanProcessor, TracerProvider
    from opentelemetry.trace import SpanContext

__all__ = ["GatewayCall", "JsonSpanExporter", "TraceOptions", "Tracer", "current_gateway", "keep", "otlp_endpoint",
           "span_dict", "take", "task_trace_id"]

R = TypeVar("R")
SCOPE = "agent-deploy-harness"
_MAX_KEPT = 10_000  # traces whose material waits for their record (a daemon task between its attempts)
# Memory bounds of a long run: spans kept for d.traces() (a file or OTLP gets every one), and, when spans go
# nowhere else, the latest calls whose spans are built only if asked (building them all would cost CPU).
MAX_SPANS_KEPT = 50_000
MAX_TRACES_PENDING = 10_000
# Memory only: the pending calls are pickled this many at a time into one bytes object. Kept as live objects,
# 10,000 calls' Records, Costs, GatewayCalls, tuples and dicts (~11 per call) were a ring the garbage collector
# could not see through: each call's survivors were matched by an evicted call's deaths, so CPython's
# allocation count stayed near zero, young collections came rarely and found 30,000-76,000 objects (16-135 ms)
# and the full ones 115,000+ (50-160 ms); the serverless p99 under load doubled (docs/performance.md). Bytes are
# not tracked: the ring costs the collector nothing. ~6 us a call to pickle, about 470 bytes a call kept.
_PACK = 64
_MAX_TEXT = 500  # characters of an error kept in a span's status
_OTLP_TIMEOUT_S = 2.0  # per OTLP export, retries included, unless OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT says
_FILE_LOCK = threading.Lock()  # deployments of one process may append to one traces file

# ---- material: what finish_record saw, until the pattern hands the final record over -------------------

# trace id -> [(record as built, LLM calls, (call wall start, end, boot, http requests) | None)]
_KEPT: OrderedDict[str, list[tuple[Record, Sequence[Any], Any]]] = OrderedDict()


def keep(record: Record, result: Mapping[str, Any]) -> None:
    """Keep what one executed call left for its spans (called by ``finish_record``; microseconds)."""
    entry = (record, result.get("llm") or (), result.get("trace"))
    got = _KEPT.get(record.trace_id)
    if got is None:
        _KEPT[record.trace_id] = [entry]
        if len(_KEPT) > _MAX_KEPT:  # a record that never came (a task still retrying at close): forget the oldest
            _KEPT.popitem(last=False)
    else:
        got.append(entry)  # a daemon task's attempts share its trace


def take(trace_id: str) -> list[tuple[Record, Sequence[Any], Any]]:
    """The material kept for ``trace_id`` (removed)."""
    return _KEPT.pop(trace_id, [])


def task_trace_id(task_id: str) -> str:
    """The trace id of a daemon task: every attempt (any worker, any process) joins the task's one trace."""
    import hashlib

    return hashlib.blake2b(task_id.encode(), digest_size=16).hexdigest()


# ---- the gateway's request, carried to the pattern by a context variable ---------------------------------

@dataclass
class GatewayCall:
    """One HTTP request to the gateway that ran an invocation (the root span of its trace)."""

    method: str
    route: str
    start: float = field(default_factory=time.time)
    end: float | None = None
    status: int | None = None

    def context(self) -> contextvars.Context:
        """A copy of the current context in which invocations know they came through this request."""
        ctx = contextvars.copy_context()
        ctx.run(_GATEWAY.set, self)
        return ctx

    def enter(self) -> contextvars.Token[GatewayCall | None]:
        """Make invocations in the current task know they came through this request (``leave`` undoes it)."""
        return _GATEWAY.set(self)

    @staticmethod
    def leave(token: contextvars.Token[GatewayCall | None]) -> None:
        """Undo ``enter``."""
        _GATEWAY.reset(token)

    def answered(self, response: R) -> R:
        """Note the response's status and time; returns the response."""
        self.end = time.time()
        self.status = getattr(response, "status_code", None)
        return response


_GATEWAY: contextvars.ContextVar[GatewayCall | None] = contextvars.ContextVar("harness_gateway_call", default=None)


def current_gateway() -> GatewayCall | None:
    """The gateway request the running invocation came through, if it came over HTTP."""
    return _GATEWAY.get()


# ---- configuration ---------------------------------------------------------------------------------------

def otlp_endpoint(traces: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The OTLP/HTTP traces URL: from ``traces="otlp://host:port"`` (``otlp+https://`` for TLS), else the
    environment (``HARNESS_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, ``OTEL_EXPORTER_OTLP_ENDPOINT``).
    """
    env = os.environ if environ is None else environ
    if traces is not None and traces.startswith(("otlp://", "otlp+http://", "otlp+https://")):
        parts = urlsplit(traces)
        if not parts.netloc:
            raise ConfigError(f"traces={traces!r} names no host; expected e.g. 'otlp://127.0.0.1:4318'")
        scheme = "https" if parts.scheme == "otlp+https" else "http"
        return f"{scheme}://{parts.netloc}{parts.path.rstrip('/') or '/v1/traces'}"
    if env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
    base = env.get("HARNESS_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not base:
        return None
    base = base.rstrip("/")
    return base if base.endswith("/v1/traces") else f"{base}/v1/traces"


@dataclass(frozen=True)
class TraceOptions:
    """Where a deployment's spans go besides memory: a JSON-lines file and/or an OTLP/HTTP endpoint."""

    path: str | None = None
    otlp: str | None = None

    @classmethod
    def parse(cls, traces: str | Path | bool | None, environ: Mapping[str, str] | None = None) -> TraceOptions | None:
        """``deploy(traces=...)``: None/True (memory, + OTLP if the environment names an endpoint), False or
        ``"off"`` (no traces: None), ``"otlp://host:port"``, or a path (OTLP/JSON lines appended to it)."""
        if traces is False or traces == "off":
            return None
        if traces is not None and traces is not True and not isinstance(traces, str | Path):
            raise ConfigError(f"traces must be None, False, 'off', 'otlp://HOST:PORT' or a file path, got {traces!r}")
        text = None if traces is None or traces is True else str(traces)
        otlp = otlp_endpoint(text, environ)
        path = text if text is not None and not text.startswith("otlp") else None
        if otlp is not None:
            try:
                import opentelemetry.exporter.otlp.proto.http.trace_exporter  # noqa: F401
            except ImportError:
                raise ConfigError(f"exporting traces to {otlp} needs the OTLP exporter: "
                                  f"pip install 'agent-deploy-harness[otel]'") from None
        return cls(path, otlp)


# ---- the JSON exporter -----------------------------------------------------------------------------------

_KINDS = ("INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")  # SpanKind values 0-4; OTLP numbers them +1
_CODES = ("UNSET", "OK", "ERROR")


def _any_value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    return {"stringValue": str(v)}


def _kvs(attrs: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    return [{"key": k, "value": _any_value(v)} for k, v in (attrs or {}).items()]


def span_dict(span: ReadableSpan) -> dict[str, Any]:
    """A span as a plain dict: hex ids, wall times in UNIX nanoseconds, attributes as a dict."""
    ctx, parent = span.context, span.parent
    assert ctx is not None
    start, end = span.start_time or 0, span.end_time or 0
    return {
        "trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}",
        "parent_span_id": f"{parent.span_id:016x}" if parent is not None else None,
        "name": span.name, "kind": _KINDS[span.kind.value],
        "start_time_unix_nano": start, "end_time_unix_nano": end, "duration_ms": (end - start) / 1e6,
        "attributes": dict(span.attributes or {}),
        "status": {"code": _CODES[span.status.status_code.value], "message": span.status.description or ""},
        "events": [{"name": e.name, "time_unix_nano": e.timestamp, "attributes": dict(e.attributes or {})}
                   for e in span.events],
    }


def otlp_json(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """An OTLP/JSON ``ExportTraceServiceRequest`` of ``spans`` (all of one resource)."""
    out = []
    for s in spans:
        d = span_dict(s)
        item = {"traceId": d["trace_id"], "spanId": d["span_id"], "name": d["name"],
                "kind": s.kind.value + 1, "startTimeUnixNano": str(d["start_time_unix_nano"]),
                "endTimeUnixNano": str(d["end_time_unix_nano"]), "attributes": _kvs(d["attributes"]),
                "status": {"code": s.status.status_code.value, **({"message": d["status"]["message"]}
                                                                  if d["status"]["message"] else {})}}
        if d["parent_span_id"]:
            item["parentSpanId"] = d["parent_span_id"]
        if d["events"]:
            item["events"] = [{"name": e["name"], "timeUnixNano": str(e["time_unix_nano"]),
                               "attributes": _kvs(e["attributes"])} for e in d["events"]]
        out.append(item)
    resource = spans[0].resource.attributes if spans else {}
    return {"resourceSpans": [{"resource": {"attributes": _kvs(resource)},
                               "scopeSpans": [{"scope": {"name": SCOPE}, "spans": out}]}]}


class JsonSpanExporter:
    """Keeps the latest ``max_spans`` spans in memory; appends each batch to ``path`` as one OTLP/JSON line if given.

    A ``SpanExporter`` (duck-typed: the SDK class is imported only when tracing is used).
    """

    def __init__(self, path: str | Path | None = None, max_spans: int = MAX_SPANS_KEPT) -> None:
        self.path = Path(path) if path is not None else None
        self.spans: deque[ReadableSpan] = deque(maxlen=max_spans)  # memory: the latest spans of a long run
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        with self._lock:
            self.spans.extend(spans)
        if self.path is not None and spans:
            line = json.dumps(otlp_json(spans), separators=(",", ":"))
            with _FILE_LOCK, self.path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Every span is exported synchronously."""
        return True

    def dicts(self) -> list[dict[str, Any]]:
        """Every span so far as a plain dict."""
        with self._lock:
            spans = list(self.spans)
        return [span_dict(s) for s in spans]


# ---- the tracer ------------------------------------------------------------------------------------------

_Item = tuple[Record, list[tuple[Record, Sequence[Any], Any]], GatewayCall | None, float]


class Tracer:
    """The traces of one deployment: its TracerProvider, the JSON exporter and (optionally) OTLP/HTTP."""

    def __init__(self, *, resource: Mapping[str, str], env: Mapping[str, str] = {},
                 path: str | Path | None = None, otlp: str | None = None, flush_interval_s: float = 1.0) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import SynchronousMultiSpanProcessor, TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        self.resource = Resource.create(dict(resource))
        self.exporter = JsonSpanExporter(path)
        self._processor: SynchronousMultiSpanProcessor = SynchronousMultiSpanProcessor()  # type: ignore[no-untyped-call]
        # Our spans go to the provider's processors; users may add their own (provider.add_span_processor).
        self.provider: TracerProvider = TracerProvider(resource=self.resource, active_span_processor=self._processor,
                                                       shutdown_on_exit=False)
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))  # type: ignore[arg-type]
        self.otlp = otlp
        if otlp is not None:  # TraceOptions.parse checked the exporter is installed
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            # A collector that is down must not hold a deployment's close for the SDK's 10 s (its env vars win).
            timeout = None if {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"} & os.environ.keys() \
                else _OTLP_TIMEOUT_S
            self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp, timeout=timeout)))
        self._redactor = Redactor(secret_values(env) if env else ())
        self._texts: dict[str, str] = {}
        # Exported (a file, OTLP): a flusher thread drains it every flush_interval_s. Memory only: the latest
        # MAX_TRACES_PENDING calls, built when d.traces() asks.
        self._pending_max = MAX_TRACES_PENDING if path is None and otlp is None else None
        self._pending: deque[_Item] = deque(maxlen=self._pending_max)
        # Memory only: older pending calls, _PACK at a time: (how many, pickled list or, unpicklable, the list).
        self._packed: deque[tuple[int, bytes | list[_Item]]] = deque()
        self._packed_n = 0
        self._lock = threading.Lock()  # the pending lists (appended on the loop, swapped by flush)
        self._build_lock = threading.Lock()
        self._ids = random.Random(int.from_bytes(os.urandom(8), "big"))
        self._closed = False
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        if path is not None or otlp is not None:  # stream spans out during a long run, off the event loop
            self._flusher = threading.Thread(target=self._flush_loop, args=(flush_interval_s,),
                                             name="harness-traces", daemon=True)
            self._flusher.start()

    # ---- hot path ----------------------------------------------------------------------------------------

    def add(self, record: Record, material: list[tuple[Record, Sequence[Any], Any]],
            gateway: GatewayCall | None = None) -> None:
        """A final record (and what its call left): its spans are made later."""
        with self._lock:
            self._pending.append((record, material, gateway, time.time()))
            if self._pending_max is not None and len(self._pending) >= _PACK:
                self._pack(self._pending_max)

    def _pack(self, keep: int) -> None:
        """Pickle the pending calls into one bytes object; forget packs older than the latest ``keep`` calls."""
        items = list(self._pending)
        self._pending.clear()
        blob: bytes | list[_Item]
        try:
            blob = pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # an agent's output that does not pickle: these calls stay as they are
            blob = items
        self._packed.append((len(items), blob))
        self._packed_n += len(items)
        while self._packed and self._packed_n - self._packed[0][0] >= keep:
            self._packed_n -= self._packed.popleft()[0]

    # ---- building and exporting --------------------------------------------------------------------------

    def flush(self) -> None:
        """Build the spans of every record so far and hand them to the span processors."""
        with self._build_lock:
            with self._lock:
                packed, self._packed, self._packed_n = self._packed, deque(), 0
                items: Sequence[_Item] = self._pending
                self._pending = deque(maxlen=self._pending_max)
            if packed:
                older = [it for _, blob in packed for it in (pickle.loads(blob) if isinstance(blob, bytes) else blob)]
                both = older + list(items)
                items = both[-self._pending_max:] if self._pending_max is not None else both
            if not items:
                return
            spans: list[ReadableSpan] = []
            for item in items:
                self._build(item, spans)
            for s in spans:
                self._processor.on_end(s)

    def spans(self) -> list[dict[str, Any]]:
        """Every span of this deployment so far, as plain dicts (``span_dict``)."""
        self.flush()
        return self.exporter.dicts()

    def close(self) -> None:
        """Build what is left, export it and shut the exporters down (blocking: call it off the event loop)."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join()
        # Spans kept only in memory are built when asked (spans() works after close); a file, OTLP or a
        # processor a user added gets them now.
        if self.exporter.path is not None or self.otlp is not None or len(
                getattr(self._processor, "_span_processors", ())) > 1:
            self.flush()
        self.provider.shutdown()

    def _flush_loop(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self.flush()

    # ---- span construction -------------------------------------------------------------------------------

    def _text(self, s: str) -> str:
        out = self._texts.get(s)
        if out is None:
            out = self._redactor.text(s[:4 * _MAX_TEXT])
            if len(self._texts) < 4096:  # model names, hosts, outcomes repeat; errors rarely do
                self._texts[s] = out
        return out

    def _attrs(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        return {k: self._text(v) if isinstance(v, str) else v for k, v in attrs.items() if v is not None}

    def _span(self, out: list[ReadableSpan], name: str, trace_id: int, parent: SpanContext | None, start: float,
              end: float, attrs: Mapping[str, Any], kind: int = 0, error: str | None = None) -> SpanContext:
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

        ctx = SpanContext(trace_id, self._ids.getrandbits(64) or 1, False, TraceFlags(TraceFlags.SAMPLED))
        status = Status(StatusCode.UNSET) if error is None else Status(StatusCode.ERROR, self._text(error)[:_MAX_TEXT])
        out.append(ReadableSpan(self._text(name), ctx, parent, self.resource, self._attrs(attrs), kind=SpanKind(kind),
                                status=status, start_time=int(start * 1e9), end_time=int(max(start, end) * 1e9)))
        return ctx

    def _build(self, item: _Item, out: list[ReadableSpan]) -> None:
        record, material, gw, added = item
        try:
            trace_id = int(record.trace_id, 16) or self._ids.getrandbits(128)
        except ValueError:
            trace_id = self._ids.getrandbits(128)
        parent: SpanContext | None = None
        if gw is not None:
            parent = self._span(out, f"gateway {gw.method} {gw.route}", trace_id, None, gw.start,
                                gw.end if gw.end is not None else record.ended_at,
                                {"harness.kind": "gateway", "http.request.method": gw.method, "http.route": gw.route,
                                 "http.response.status_code": gw.status}, kind=1,
                                error=f"HTTP {gw.status}" if gw.status is not None and gw.status >= 500 else None)
        daemon_task = record.pattern == "daemon" and record.trigger == "invoke" and bool(material)
        root_kind = 0 if parent is not None else 1
        if daemon_task:
            submitted = min(record.started_at, material[0][0].started_at)  # a task's record starts at submit
            root = self._span(out, "task", trace_id, parent, submitted, added, self._record_attrs(record, "task"),
                              kind=root_kind, error=None if record.ok else record.error or record.outcome)
            # The waits' platform time is what the task's latency has beyond its attempts, shared by wall time.
            gaps, prev = [], submitted
            for attempt, _, _ in material:
                gaps.append(max(0.0, attempt.started_at - prev))
                prev = attempt.ended_at
            waited_ms = max(0.0, record.latency_ms - sum(a.duration_ms for a, _, _ in material))
            prev = submitted
            for n, (attempt, llm, call) in enumerate(material, 1):
                share = gaps[n - 1] / sum(gaps) if sum(gaps) > 0 else 1.0 / len(gaps)
                self._span(out, "queue wait", trace_id, root, prev, attempt.started_at,
                           {"harness.kind": "queue_wait", "harness.attempt": n,
                            "harness.platform_ms": waited_ms * share})
                ctx = self._span(out, f"attempt {n}", trace_id, root, attempt.started_at, attempt.ended_at,
                                 {**self._record_attrs(attempt, "attempt"), "harness.attempt": n}, kind=4,
                                 error=None if attempt.ok else attempt.error or attempt.outcome)
                self._children(out, trace_id, ctx, attempt, llm, call)
                prev = attempt.ended_at
            return
        root = self._span(out, "agent", trace_id, parent, record.started_at, record.ended_at,
                          self._record_attrs(record, "agent"), kind=root_kind,
                          error=None if record.ok else record.error or record.outcome)
        last = material[-1] if material else None
        self._children(out, trace_id, root, record, last[1] if last else (), last[2] if last else None)

    def _children(self, out: list[ReadableSpan], trace_id: int, parent: SpanContext, record: Record,
                  llm: Sequence[Any], call: Any) -> None:
        """The init, LLM and ctx.http spans of one executed call."""
        call_start, call_end, boot, http = call if call is not None else (None, record.ended_at, None, ())
        if record.cold_start:
            if boot is not None:
                start, end = boot
            else:  # the start failed: it is all the call was
                start, end = record.started_at, call_start if call_start is not None else record.ended_at
            self._span(out, "init", trace_id, parent, start, end,
                       {"harness.kind": "init", "harness.init_ms": record.init_ms,
                        "harness.instance_id": record.instance_id},
                       error=record.error if record.outcome == "init_error" else None)
        for c in llm:
            start = c.started_at or (call_start if call_start is not None else record.started_at)
            op = "chat" if c.api in ("chat.completions", "messages") else c.api
            self._span(out, f"{op} {c.model}", trace_id, parent, start, start + c.wall_s,
                       {"harness.kind": "llm", "gen_ai.system": c.provider, "gen_ai.operation.name": op,
                        "gen_ai.request.model": c.model, "gen_ai.usage.input_tokens": c.input_tokens,
                        "gen_ai.usage.output_tokens": c.output_tokens, "http.response.status_code": c.status,
                        "harness.llm.api": c.api, "harness.llm.platform_ms": c.platform_s * 1000.0,
                        "harness.llm.stream": c.stream, "harness.llm.fault": c.fault,
                        "harness.llm.retry_after_s": c.retry_after_s, "harness.llm.upstream": c.upstream or None},
                       kind=2, error=f"HTTP {c.status}" + (f" ({c.fault})" if c.fault else "")
                       if c.status != 200 or c.fault else None)
        for method, host, start, end, status in http:
            self._span(out, f"{method} {host}", trace_id, parent, start, end if end is not None else call_end,
                       {"harness.kind": "http", "http.request.method": method, "server.address": host,
                        "http.response.status_code": status}, kind=2,
                       error="no response" if status is None else f"HTTP {status}" if status >= 400 else None)

    @staticmethod
    def _record_attrs(r: Record, kind: str) -> dict[str, Any]:
        return {
            "harness.kind": kind, "harness.pattern": r.pattern, "harness.profile": r.profile,
            "harness.outcome": r.outcome, "harness.invocation_id": r.invocation_id,
            "harness.instance_id": r.instance_id, "harness.session_id": r.session_id, "harness.trigger": r.trigger,
            "harness.cold_start": r.cold_start, "harness.attempts": r.attempts, "harness.latency_ms": r.latency_ms,
            "harness.duration_ms": r.duration_ms, "harness.init_ms": r.init_ms, "harness.cpu_ms": r.cpu_ms,
            "harness.peak_memory_mb": r.peak_memory_mb, "harness.llm_calls": r.llm_calls,
            "gen_ai.usage.input_tokens": r.input_tokens, "gen_ai.usage.output_tokens": r.output_tokens,
            "harness.cost_usd": r.cost.total_usd, "error.type": None if r.ok else r.outcome,
        }
