"""The gateway's ASGI app: the same routes in front of every pattern, talking only to the Emulator Protocol.

``POST /invoke`` is the platform's synchronous path: the profile's ``gateway_timeout_s`` applies. When it
passes, the caller gets 504 ``gateway_timeout`` at once while the work goes on, as behind API Gateway
(the function is not told and is billed to its end; it stops only at the pattern's own ``timeout_s``).
That invocation's one record is then marked ``gateway_timeout`` (with the latency the caller saw) when it
ends, so reports count what the caller experienced and bill what the platform charged. The gateway never
cancels work; where a platform ties the two limits (Cloud Run, Vercel, Netlify: the request limit is the
execution limit) the pattern's own timeout ends it at the same moment.

Outcome -> status: ok 200, throttled 429, payload_too_large 413, timeout/gateway_timeout 504, any other
failure 502; the body is the Result as JSON, naming the outcome. Input errors are 400 with
``{"error", "code"}``; a body over the request limit is 413 before the platform sees it (recorded as a
``payload_too_large`` call, as the pattern itself records one). Every response carries the
``x-harness-*`` headers; they are empty where no invocation result belongs to the response.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from ..clock import Clock
from ..errors import ConfigError
from ..jsonfast import loads
from ..pattern import Emulator, Gated, rejected_record, traced
from ..records import Record, Result
from ..runtime.agent import HTTP_ADAPTERS
from ..tracing import GatewayCall
from .appmode import HARNESS_PREFIX, AppFront
from .dashboard import DashboardRoutes
from .invoke import JSON_HEADER, json_body, query_value, read_body, send_response
from .metrics import PROMETHEUS_CONTENT_TYPE, prometheus_text, stats_json
from .openapi import openapi_document
from .options import GatewayOptions
from .streams import parse_last_event_id, sse_response, ws_follow
from .tasks import TaskRegistry, async_request_limit, result_json

__all__ = ["HARNESS_HEADERS", "SHUTTING_DOWN", "GatewayApp", "Render", "harness_headers", "status_for"]

HARNESS_HEADERS = ("x-harness-outcome", "x-harness-cold-start", "x-harness-instance", "x-harness-latency-ms")
_STATUS = {"ok": 200, "throttled": 429, "payload_too_large": 413, "timeout": 504, "gateway_timeout": 504}
SHUTTING_DOWN = {"error": "the gateway is shutting down; the call may not have finished", "code": "shutting_down"}
Render = Callable[[Result], tuple[int, list[tuple[bytes, bytes]], bytes]]  # a result -> status, headers, body
_OPEN_PATHS = frozenset({"/healthz"})  # reachable without the API key, for readiness probes


def status_for(outcome: str) -> int:
    """The HTTP status the platform answers for an outcome (502 for any failure not named)."""
    return _STATUS.get(outcome, 502)


def harness_header_bytes(result: Result) -> list[tuple[bytes, bytes]]:
    """``harness_headers(result)`` as ASGI header pairs, built directly (every ``POST /invoke`` answer)."""
    return [(b"x-harness-outcome", result.outcome.encode("latin-1")),
            (b"x-harness-cold-start", b"true" if result.cold_start else b"false"),
            (b"x-harness-instance", (result.instance_id or "").encode("latin-1")),
            (b"x-harness-latency-ms", b"%.3f" % result.latency_ms)]


def harness_headers(result: Result | None) -> dict[str, str]:
    """The ``x-harness-*`` headers for a response about ``result`` (empty values when there is none)."""
    if result is None:
        return dict.fromkeys(HARNESS_HEADERS, "")
    return {k.decode(): v.decode("latin-1") for k, v in harness_header_bytes(result)}


class _Asgi:
    """Mounts a plain ASGI handler as a Starlette route (a bound method would be taken for a request handler)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def _error(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message, "code": code}, status, headers=headers or None)


class _Edge:
    """Pure-ASGI outer layer: API-key check, default ``x-harness-*`` headers, response counts."""

    def __init__(self, app: ASGIApp, api_key: str | None, responses: Counter[int], invoke: ASGIApp,
                 front: ASGIApp | None = None, native: frozenset[str] = frozenset()) -> None:
        self.app, self.api_key, self.responses, self.invoke = app, api_key, responses, invoke
        self.front = front  # app mode: the agent's own HTTP app takes every path outside /_harness/
        self.native = native  # routes already under /_harness/ (not stripped in app mode)

    def _authorized(self, scope: Scope) -> bool:
        if self.api_key is None or scope.get("path") in _OPEN_PATHS:
            return True
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        given = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), self.api_key.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if self.front is not None:
            path = scope.get("path", "")
            if path != HARNESS_PREFIX and not path.startswith(HARNESS_PREFIX + "/"):
                if not self._authorized(scope):
                    await self._refuse(scope, receive, send)
                    return
                await self.front(scope, receive, send)
                return
            if path not in self.native:  # /_harness/dashboard etc. live there in both modes
                # The harness's task routes, under the prefix: served as at the root in task mode.
                scope = {**scope, "path": path[len(HARNESS_PREFIX):] or "/",
                         "root_path": scope.get("root_path", "") + HARNESS_PREFIX}
        if not self._authorized(scope):
            await self._refuse(scope, receive, send)
            return
        if scope["path"] == "/invoke" and scope.get("method") == "POST":
            await self.invoke(scope, receive, send)  # sets every header and counts its own response
            return

        await self.app(scope, receive, counted(send, self.responses))

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        resp = _error(401, "unauthorized", "missing or wrong API key; send it as 'x-api-key: KEY' or "
                      "'Authorization: Bearer KEY'", **{"www-authenticate": "Bearer"}, **harness_headers(None))
        self.responses[401] += 1
        await resp(scope, receive, send)


def counted(send: Send, responses: Counter[int]) -> Send:
    """``send`` that adds the ``x-harness-*`` headers a response lacks (empty) and counts its status."""

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = {k.decode("latin-1").lower() for k, _ in message.get("headers", [])}
            extra = [(h.encode(), b"") for h in HARNESS_HEADERS if h not in present]
            message = {**message, "headers": [*message.get("headers", []), *extra]}
            responses[int(message["status"])] += 1
        await send(message)

    return send_with_headers


class GatewayApp:
    """The routes of one deployment's gateway; ``asgi`` is the app to serve."""

    def __init__(self, emulator: Emulator, registry: TaskRegistry, clock: Clock, options: GatewayOptions) -> None:
        self.emulator, self.registry, self.clock, self.options = emulator, registry, clock, options
        # Checked once: a runtime Protocol's isinstance costs ~12 us, and run_sync is every /invoke's path.
        self._gated: Gated | None = emulator if isinstance(emulator, Gated) else None
        self.url: str | None = None
        self.responses: Counter[int] = Counter()
        self.streams = 0
        self._calls: set[asyncio.Task[Any]] = set()  # /invoke requests in flight (cancelled on stop)
        self.dashboard = DashboardRoutes(emulator)  # /_harness/: the run over time, sampled once someone looks
        self.timeline = self.dashboard.timeline
        routes = [
            # Reached only when the path is spelled otherwise (a root_path): _Edge serves POST /invoke itself.
            Route("/invoke", _Asgi(self._invoke_routed), methods=["POST"]),
            Route("/invoke/stream", self.invoke_stream, methods=["POST"]),
            Route("/tasks", self.submit, methods=["POST"]),
            Route("/tasks/{task_id}", self.task_status, methods=["GET"], name="task_status"),
            Route("/tasks/{task_id}/events", self.task_events, methods=["GET"], name="task_events"),
            WebSocketRoute("/tasks/{task_id}/ws", self.task_ws, name="task_ws"),
            Route("/stats", self.stats, methods=["GET"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
            *self.dashboard.routes(lambda: self.url),
        ]
        app = Starlette(routes=routes, exception_handlers={HTTPException: self._http_error,
                                                          Exception: self._server_error})
        version = HTTP_ADAPTERS.get(getattr(emulator.pool, "adapter", "auto"))
        # An HTTP-app agent takes the root (appmode.py); routes already under /_harness/ stay where they are.
        front = AppFront(self, version) if version is not None else None
        native = frozenset(p for r in routes if (p := getattr(r, "path", "")).startswith(HARNESS_PREFIX + "/"))
        self.asgi: ASGIApp = _Edge(app, options.api_key, self.responses, self.invoke, front, native)

    # ---- input ------------------------------------------------------------------------------------------

    async def _read_task(self, receive: Receive, session_id: str | None, limit: int | None) -> Any:
        """The JSON task from the body, or the error Response to answer instead."""
        got = await self._read_json(receive, session_id, limit)
        return got if isinstance(got, Response) else got[0]

    async def _read_json(self, receive: Receive, session_id: str | None, limit: int | None
                         ) -> tuple[Any, bytes | None] | Response:
        """The JSON task from the body and the body itself where it can be the task's JSON as is (UTF-8 without
        a BOM: what a frame carries), or the error Response to answer instead."""
        cap = limit if limit is not None else self.options.max_body_bytes
        t0, started_at = time.monotonic(), time.time()
        got = await read_body(receive, cap)
        if got is None:
            raise ClientDisconnect()
        body, size = got
        if size > cap:
            whose = f"the {limit}-byte request limit of {self.emulator.profile.name}" if limit is not None \
                else f"the gateway's {cap}-byte body cap (GatewayOptions.max_body_bytes)"
            rec = rejected_record(pattern=self.emulator.pattern, profile=self.emulator.profile,
                                  outcome="payload_too_large", started_at=started_at,
                                  session_id=session_id, wall_s=time.monotonic() - t0,
                                  error=f"request of {size} bytes exceeds {whose}")
            self.emulator.records.append(rec)  # one record per call, refused ones included
            traced(self.emulator.pool, rec)
            return self._result_response(rec)
        if not body or body.isspace():  # (no stripped copy of a large body)
            return _error(400, "empty_body", "the body must be the task as JSON, e.g. {\"question\": \"2+2?\"}")
        try:
            task = loads(body, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            return _error(400, "invalid_json", f"the body is not valid JSON ({exc}); send the task as JSON")
        # The stdlib also reads UTF-16/32 (every one has NUL bytes) and a UTF-8 BOM: those are encoded anew.
        return task, None if body.startswith(b"\xef\xbb\xbf") or b"\x00" in body else body

    def _callback(self, request: Request) -> str | Response | None:
        url = request.query_params.get("callback_url")
        if url is None:
            return None
        try:
            return self.registry.deliverer.check(url) if self.registry.deliverer is not None else url
        except ConfigError as exc:
            return _error(400, "callback_url_refused", str(exc))

    def _result_response(self, result: Result, status: int | None = None) -> JSONResponse:
        return JSONResponse(result_json(result), status or status_for(result.outcome),
                            headers=harness_headers(result))

    # ---- routes -----------------------------------------------------------------------------------------

    async def _invoke_routed(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.invoke(scope, receive, send, count=False)  # _Edge's wrapper counts this one

    async def invoke(self, scope: Scope, receive: Receive, send: Send, *, count: bool = True) -> None:
        """Sync invocation under the profile's gateway timeout (plain ASGI: the hot path, see ``invoke.py``)."""
        counts = self.responses if count else Counter[int]()
        entry = GatewayCall("POST", "/invoke")  # the root span of the invocation's trace
        session_id = query_value(scope, "session_id")
        try:
            got = await self._read_json(receive, session_id, self.emulator.profile.request_limit_bytes)
        except ClientDisconnect:
            return  # nothing ran; nobody to answer
        if isinstance(got, Response):
            await entry.answered(got)(scope, receive, counted(send, counts))
            return
        await self.run_sync(scope, send, counts, entry, got[0], session_id, self._render_result, body=got[1])

    @staticmethod
    def _render_result(result: Result) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """``POST /invoke``'s answer: the Result as JSON, its outcome's status, the ``x-harness-*`` headers."""
        headers = harness_header_bytes(result)
        return status_for(result.outcome), [*headers, JSON_HEADER], json_body(result_json(result))

    async def run_sync(self, scope: Scope, send: Send, counts: Counter[int], entry: GatewayCall, task: Any,
                       session_id: str | None, render: Render, *, body: bytes | None = None) -> None:
        """Invoke ``task`` under the profile's gateway timeout and answer with ``render(result)``.

        ``body``: the task's JSON as the request carried it, handed on so the pattern need not encode it again.
        """
        # The invocation runs in this request's own task (uvicorn cancels it only when the server stops, not
        # when the caller goes away, so the work runs to its end as on the platform). A timer answers 504 if
        # the profile's gateway timeout passes first; the work goes on and its record is relabelled.
        gateway_s = self.emulator.profile.gateway_timeout_s
        early: list[asyncio.Task[None]] = []  # the 504, once sent

        def time_out() -> None:
            assert gateway_s is not None
            early.append(asyncio.ensure_future(self._send_raw(send, counts, entry,
                                                              *render(self._gateway_timeout_result(gateway_s)))))

        # On a scaled clock a timer here would count the instance's real work at 1/time_scale; a pattern that
        # can measures the gateway's timeout in platform time itself (``Gated``). On the virtual clock real
        # work already passes 1:1, so the timer is exact.
        gated = self._gated if gateway_s is not None and not self.clock.virtual else None
        timer = self.clock.call_later(gateway_s, time_out) if gateway_s is not None and gated is None else None
        me = asyncio.current_task()
        if me is not None:
            self._calls.add(me)  # aclose() cancels it: the gateway is closing
        token = entry.enter()
        try:
            async with self.clock.caller():  # on the virtual clock, a waiting HTTP caller lets time jump
                if gated is not None:
                    assert gateway_s is not None
                    record = await gated.invoke_gated(task, session_id, gateway_s, time_out, body=body)
                else:
                    record = await self.emulator.invoke(task, session_id)
        except asyncio.CancelledError:
            # The server is stopping with this request open: say so rather than leave a traceback in the log.
            if not early:
                await self._send(send, counts, entry, SHUTTING_DOWN, 503, harness_headers(None))
            return
        except Exception as exc:  # a harness bug: answer as the routes' exception handler does
            if not early:
                await self._send(send, counts, entry, {"error": _failed(exc), "code": "internal_error"}, 500,
                                 harness_headers(None))
            return
        finally:
            entry.leave(token)
            if timer is not None:
                timer.cancel()
            if me is not None:
                self._calls.discard(me)
            for answered in early:
                await answered
        if early:
            assert gateway_s is not None
            self._mark_gateway_timeout(record, gateway_s)
            return
        await self._send_raw(send, counts, entry, *render(record))

    def _gateway_timeout_result(self, gateway_s: float) -> Result:
        return Result(
            ok=False, outcome="gateway_timeout", latency_ms=gateway_s * 1000.0,
            error=f"Endpoint request timed out: the gateway of {self.emulator.profile.name} answers 504 after "
                  f"{gateway_s:g} s; the invocation goes on without the caller (use POST /tasks, a "
                  f"webhook or SSE for long tasks)")

    @staticmethod
    async def _send(send: Send, counts: Counter[int], entry: GatewayCall, content: Any, status: int,
                    headers: dict[str, str]) -> None:
        pairs = [(k.encode(), v.encode("latin-1")) for k, v in headers.items()]
        await GatewayApp._send_raw(send, counts, entry, status, [*pairs, JSON_HEADER], json_body(content))

    @staticmethod
    async def _send_raw(send: Send, counts: Counter[int], entry: GatewayCall, status: int,
                        headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        entry.end, entry.status = time.time(), status
        counts[status] += 1
        await send_response(send, status, headers, body)

    def _mark_gateway_timeout(self, rec: Record, gateway_s: float) -> None:
        """Re-label the finished invocation's record with what its caller saw (one record per call)."""
        self.emulator.records.replace(rec, dataclasses.replace(
            rec, ok=False, outcome="gateway_timeout", latency_ms=gateway_s * 1000.0,
            error=f"the gateway answered 504 after {gateway_s:g} s; the invocation went on and ended "
                  f"{rec.outcome} after {rec.latency_ms / 1000:.3f} s" + (f": {rec.error}" if rec.error else "")))

    async def invoke_stream(self, request: Request) -> Response:
        """Sync invocation answered as SSE: progress events, then the result (resumable via its task id)."""
        session_id = request.query_params.get("session_id")
        task = await self._read_task(request.receive, session_id, self.emulator.profile.request_limit_bytes)
        if isinstance(task, Response):
            return task
        entry = GatewayCall("POST", "/invoke/stream")
        t = entry.context().run(self.registry.submit, task, session_id, retries=False)
        entry.status, entry.end = 200, time.time()
        return self._stream(t.task_id, -1, {"x-harness-task-id": t.task_id,
                                            "content-location": str(request.url_for("task_status", task_id=t.task_id))})

    async def submit(self, request: Request) -> Response:
        """Background run: 202 with the task id and where to poll, stream or listen."""
        p = self.emulator.profile
        session_id = request.query_params.get("session_id")
        task = await self._read_task(request.receive, session_id, async_request_limit(p.name, p.request_limit_bytes))
        if isinstance(task, Response):
            return task
        callback = self._callback(request)
        if isinstance(callback, Response):
            return callback
        entry = GatewayCall("POST", "/tasks")
        t = entry.context().run(self.registry.submit, task, session_id, callback)
        entry.status, entry.end = 202, time.time()
        status_url = str(request.url_for("task_status", task_id=t.task_id))
        ws_url = str(request.url_for("task_ws", task_id=t.task_id)).replace("http", "ws", 1)
        return JSONResponse({"task_id": t.task_id, "status_url": status_url,
                             "events_url": str(request.url_for("task_events", task_id=t.task_id)),
                             "ws_url": ws_url}, 202, headers={"location": status_url})

    async def task_status(self, request: Request) -> Response:
        """Poll a task: state, events so far, result once finished."""
        t = self.registry.find(request.path_params["task_id"])
        if t is None:
            return _unknown_task(request.path_params["task_id"])
        return JSONResponse(t.to_json(), headers=harness_headers(t.result))

    async def task_events(self, request: Request) -> Response:
        """SSE of a task's events, resuming after ``Last-Event-ID``."""
        task_id = request.path_params["task_id"]
        if self.registry.find(task_id) is None:
            return _unknown_task(task_id)
        last = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
        return self._stream(task_id, parse_last_event_id(last), {})

    def _stream(self, task_id: str, after: int, headers: dict[str, str]) -> Response:
        t = self.registry.get(task_id)
        resp = sse_response(t, after, self.options.keepalive_s, headers)
        inner = resp.body_iterator

        async def counted() -> Any:
            self.streams += 1
            try:
                async for chunk in inner:
                    yield chunk
            finally:
                self.streams -= 1

        resp.body_iterator = counted()
        return resp

    async def task_ws(self, ws: WebSocket) -> None:
        """The same events over a WebSocket; ``?after=<id>`` resumes."""
        t = self.registry.find(ws.path_params["task_id"])
        if t is None:
            await ws.close(4404, reason="unknown task id")
            return
        await ws.accept()
        self.streams += 1
        try:
            await ws_follow(ws, t, parse_last_event_id(ws.query_params.get("after")), self.options.keepalive_s)
        finally:
            self.streams -= 1

    async def stats(self, request: Request) -> Response:
        """Live summary JSON."""
        return JSONResponse(stats_json(self.emulator, self.registry, url=self.url, streams=self.streams,
                                       responses=self.responses))

    async def healthz(self, request: Request) -> Response:
        """Liveness: the gateway answers and knows its deployment."""
        return JSONResponse({"status": "ok", "pattern": self.emulator.pattern,
                             "profile": self.emulator.profile.name})

    async def metrics(self, request: Request) -> Response:
        """Prometheus text exposition."""
        text = prometheus_text(self.emulator, self.registry, streams=self.streams, responses=self.responses)
        return Response(text, media_type=PROMETHEUS_CONTENT_TYPE)

    async def openapi(self, request: Request) -> Response:
        """The OpenAPI document of these routes."""
        return JSONResponse(openapi_document())

    # ---- errors and shutdown ----------------------------------------------------------------------------

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, f"{request.method} {request.url.path}: {exc.detail}",
                      **(exc.headers or {}))

    async def _server_error(self, request: Request, exc: Exception) -> Response:
        return _error(500, "internal_error", _failed(exc))

    async def aclose(self) -> None:
        """Cancel the /invoke calls still in flight (their callers are gone with the server)."""
        await self.timeline.stop()
        calls = list(self._calls)
        for c in calls:
            c.cancel()
        await asyncio.gather(*calls, return_exceptions=True)


def _unknown_task(task_id: str) -> JSONResponse:
    return _error(404, "unknown_task", f"no task with id {task_id!r}; use the task_id POST /tasks returned (a "
                                       f"finished task is kept for GatewayOptions.task_retention_s, then expires)")


def _failed(exc: BaseException) -> str:
    """The message of a 500: the gateway itself failed (a harness bug, not the agent's)."""
    return f"the gateway failed: {type(exc).__name__}: {exc}"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")
