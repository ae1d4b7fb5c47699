"""App mode: when the agent is an HTTP app, every request is the app's, as behind API Gateway.

With ``adapter="asgi"`` (a FastAPI/Starlette app) or ``adapter="apigw-v1"`` / ``"apigw-v2"`` (a Lambda
handler behind a REST / HTTP API), the gateway stops being the harness's task API: any method and path
becomes an API Gateway proxy event (``emulators.runtime.httpevents``), runs through the pattern like any
invocation (its limits, cold starts, gateway timeout, cost), and the handler's answer becomes the HTTP
response, status, headers, cookies and body, as API Gateway maps it. The app's own ``/healthz`` or
``/openapi.json`` answers as in production; the harness's routes move under ``/_harness/``.

On the container pattern an ASGI app is not fed events: its replicas serve it with uvicorn, and each
request is forwarded to one of them as is, the answer streamed back (``emulators/appcalls.py``,
``emulators/forward.py``; WebSockets ``emulators/wsforward.py``); only the platform's own refusals and
failures are answered here.

When the platform fails the call rather than the app answering, the body is API Gateway's JSON
``{"message": ...}`` with the gateway's usual statuses (429, 413, 504, 502), plus the ``x-harness-*``
headers that say which outcome it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from starlette.types import Message, Receive, Scope, Send

from ..forward import HttpRequest
from ..pattern import rejected_record, traced
from ..records import Result
from ..runtime.httpevents import proxy_response, request_event
from ..tracing import GatewayCall
from .invoke import JSON_HEADER, json_body, read_body

if TYPE_CHECKING:
    from .app import GatewayApp

__all__ = ["HARNESS_PREFIX", "SESSION_HEADER", "AppFront"]

HARNESS_PREFIX = "/_harness"  # where the harness's own routes are in app mode
SESSION_HEADER = "x-harness-session-id"  # the session a request belongs to (sticky sessions, ctx.state)
# API Gateway's own answers when the platform, not the function, ends the call.
_PLATFORM_ANSWERS = {
    "throttled": (429, "Too Many Requests"),
    "payload_too_large": (413, "Request Too Long"),
    "timeout": (504, "Endpoint request timed out"),
    "gateway_timeout": (504, "Endpoint request timed out"),
}

class AppFront:
    """The ASGI handler of app mode: a request -> a proxy event -> the pattern -> the app's HTTP answer."""

    def __init__(self, gateway: GatewayApp, version: str) -> None:
        self.gateway = gateway
        self.version = version

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gw = self.gateway
        if scope["type"] == "websocket":
            forward_ws = getattr(gw.emulator, "forward_websocket", None)
            if forward_ws is not None:  # a container whose replicas serve the app: relayed to one of them
                headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope.get("headers", [])]
                with contextlib.suppress(asyncio.CancelledError):  # the server stops: the connection goes
                    async with gw.clock.caller():
                        await forward_ws(scope, receive, send,
                                         session_id=next((v for k, v in headers if k == SESSION_HEADER), None))
                return
            await send({"type": "websocket.close", "code": 1003})  # API Gateway's HTTP/REST APIs carry none
            return
        method, path = scope.get("method", "GET"), scope.get("path", "/")
        entry = GatewayCall(method, path)
        limit = gw.emulator.profile.request_limit_bytes
        cap = limit if limit is not None else gw.options.max_body_bytes
        t0, started_at = time.monotonic(), time.time()
        got = await read_body(receive, cap)
        if got is None:
            return  # the client went away before sending its body: nothing ran
        body, size = got
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", [])]
        session_id = next((v for k, v in headers if k.lower() == SESSION_HEADER), None)
        if size > cap:
            rec = rejected_record(pattern=gw.emulator.pattern, profile=gw.emulator.profile,
                                  outcome="payload_too_large", started_at=started_at, session_id=session_id,
                                  wall_s=time.monotonic() - t0, error=f"request of {size} bytes exceeds the "
                                  f"{cap}-byte request limit of {gw.emulator.profile.name}")
            gw.emulator.records.append(rec)  # one record per call, refused ones included
            traced(gw.emulator.pool, rec)
            await gw._send_raw(send, gw.responses, entry, *self.render(rec))
            return
        forward = getattr(gw.emulator, "forward_http", None)
        if forward is not None:  # a container whose replicas serve the app: the request goes to one as is
            await self._forward(forward, scope, receive, send, body, session_id, entry)
            return
        client = scope.get("client") or ("127.0.0.1", 0)
        event = request_event(self.version, method, path, scope.get("query_string", b"").decode("latin-1"),
                              headers, body, source_ip=str(client[0]))
        await gw.run_sync(scope, send, gw.responses, entry, event, session_id, self.render)

    async def _forward(self, forward: Any, scope: Scope, receive: Receive, send: Send, body: bytes,
                       session_id: str | None, entry: GatewayCall) -> None:
        """Forward the request to a replica's own server (``emulators/appcalls.py``), the answer streamed back."""
        from .app import SHUTTING_DOWN, counted, harness_headers

        gw = self.gateway
        target: bytes = scope.get("raw_path") or scope.get("path", "/").encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        req = HttpRequest(scope.get("method", "GET"), target, list(scope.get("headers", [])), body)
        # Once the body is read, the next receive() is the client's going away (or the response's end).
        gone = asyncio.ensure_future(receive())
        token = entry.enter()
        out = counted(send, gw.responses)
        began: list[bool] = []

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                began.append(True)
            await out(message)

        me = asyncio.current_task()
        if me is not None:
            gw._calls.add(me)  # the gateway's close cancels it, as a /invoke in flight
        try:
            async with gw.clock.caller():  # on the virtual clock, a waiting HTTP caller lets time jump
                record, started = await forward(req, sending, session_id=session_id, disconnected=gone.done)
        except asyncio.CancelledError:
            # The server is stopping with this request open: say so if nothing went out yet; a stream is cut.
            if not began:
                await gw._send(send, gw.responses, entry, SHUTTING_DOWN, 503, harness_headers(None))
            return
        finally:
            entry.leave(token)
            gone.cancel()
            if me is not None:
                gw._calls.discard(me)
        if started:
            entry.end, entry.status = time.time(), 200
        else:  # the platform refused or failed it before the app answered: API Gateway-style JSON
            await gw._send_raw(send, gw.responses, entry, *self.render(record))

    def render(self, result: Result) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """The HTTP answer for a finished call: the app's own response, or API Gateway's for a failure."""
        from .app import harness_header_bytes

        marks = harness_header_bytes(result)
        if result.ok:
            made = proxy_response(self.version, result.output)
            if not isinstance(made, str):
                status, pairs, body = made
                return status, [*((k.encode("latin-1"), v.encode("latin-1")) for k, v in pairs), *marks], body
            # A malformed proxy answer is API Gateway's 502; say why in a header (the body is the platform's).
            marks.append((b"x-harness-error", made.encode("latin-1", errors="replace")))
            return 502, [*marks, JSON_HEADER], json_body({"message": "Internal server error"})
        status, message = _PLATFORM_ANSWERS.get(result.outcome, (502, "Internal server error"))
        return status, [*marks, JSON_HEADER], json_body({"message": message})
