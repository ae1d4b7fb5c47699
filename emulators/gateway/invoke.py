"""The pieces of ``POST /invoke`` as a plain ASGI handler; the body reading every task-taking route shares.

The sync path is the one a load test hammers, so it skips Starlette's per-request layers (its two
exception middlewares, the router, a ``Request`` and a ``JSONResponse``): measured under ``wrk -c8`` they
were a fifth of the gateway's own CPU per request (``docs/performance.md``). What it answers is exactly
what the Starlette route answered: the same statuses, JSON bodies and ``x-harness-*`` headers; any other
method or path still goes through the router.

The invocation runs in the request's own task, with a timer for the profile's gateway timeout, rather
than in a task of its own raced with ``asyncio.wait_for(asyncio.shield(call))`` (two more futures, a
task and an event-loop turn per request). uvicorn cancels a request's task only when the server stops,
never because the caller went away, so the work still runs to its end as on the platform.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from starlette.types import Receive, Scope, Send

from ..jsonfast import dumps

__all__ = ["JSON_HEADER", "json_body", "query_value", "read_body", "send_response"]

JSON_HEADER = (b"content-type", b"application/json")


def json_body(content: Any) -> bytes:
    """The JSON value Starlette's ``JSONResponse`` renders for ``content`` (same separators, UTF-8, no NaN)."""
    return dumps(content)


def query_value(scope: Scope, name: str) -> str | None:
    """One query parameter (the last if repeated, as Starlette's ``QueryParams.get``), or None."""
    qs: bytes = scope.get("query_string", b"")
    if not qs:
        return None
    return dict(parse_qsl(qs.decode("latin-1"), keep_blank_values=True)).get(name)


async def read_body(receive: Receive, cap: int) -> tuple[bytes, int] | None:
    """The request body up to ``cap`` bytes and its full size; None when the client went away first.

    Past the cap the rest is read and dropped, so the client gets the 413 rather than a reset.
    """
    first = await receive()
    if first["type"] != "http.request":
        return None
    body: bytes = first.get("body", b"")
    if not first.get("more_body", False) and len(body) <= cap:
        return body, len(body)  # the usual case: one message holds the whole body
    size = len(body)
    kept = bytearray(body if size <= cap else b"")
    more = first.get("more_body", False)
    while more:
        msg = await receive()
        if msg["type"] != "http.request":
            return None
        chunk = msg.get("body", b"")
        size += len(chunk)
        if size <= cap:
            kept += chunk
        more = msg.get("more_body", False)
    return bytes(kept), size


async def send_response(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    """Answer with ``body`` whole (``content-length`` set here; the caller's headers give the rest)."""
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
