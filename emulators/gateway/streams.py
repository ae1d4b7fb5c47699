"""Progress streams of a task: Server-Sent Events and WebSocket, the same events in the same order.

Both read ``Task.follow``: event ``i`` (the agent's i-th ``ctx.emit``) has id ``i``, the final result the
next id. SSE frames are ``id: <i>\\nevent: progress|result\\ndata: <json>\\n\\n``; a comment line
(``: keep-alive``) goes out after ``keepalive_s`` wall seconds without an event, so proxies keep the
connection and a departed client is noticed. A client that reconnects with ``Last-Event-ID: <i>`` gets
everything after ``i``. WebSocket messages are JSON ``{"id", "type": "progress"|"result", "data"}``;
``?after=<i>`` resumes the same way; the server closes with 1000 after the result.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.responses import StreamingResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..records import Record
from .tasks import Task, result_json

__all__ = ["SSE_HEADERS", "parse_last_event_id", "sse_response", "ws_follow"]

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def parse_last_event_id(value: str | None) -> int:
    """The id to resume after (-1: from the start); a malformed value restarts from the start."""
    if value is None:
        return -1
    try:
        return max(-1, int(value.strip()))
    except ValueError:
        return -1


def _data(kind: str, item: Any, task: Task) -> Any:
    if kind == "result":
        assert isinstance(item, Record)
        return {"task_id": task.task_id, **result_json(item)}
    return item


async def _sse_frames(task: Task, after: int, keepalive_s: float) -> AsyncIterator[bytes]:
    # The reconnection delay hint rides on the first event (a frame of its own would reach some clients,
    # httpx-sse among them, as an event with no data).
    retry = "retry: 1000\n"
    async for i, kind, item in task.follow(after, keepalive_s):
        if kind == "keepalive":
            yield b": keep-alive\n\n"
            continue
        data = json.dumps(_data(kind, item, task), separators=(",", ":"), default=str)
        yield f"{retry}id: {i}\nevent: {kind}\ndata: {data}\n\n".encode()
        retry = ""


def sse_response(task: Task, after: int, keepalive_s: float, headers: Mapping[str, str]) -> StreamingResponse:
    """A ``text/event-stream`` of the task's events after id ``after``, then its result."""
    return StreamingResponse(_sse_frames(task, after, keepalive_s), media_type="text/event-stream",
                             headers={**SSE_HEADERS, **headers})


async def ws_follow(ws: WebSocket, task: Task, after: int, keepalive_s: float) -> None:
    """Send the task's events after id ``after`` and its result over an accepted WebSocket, then close."""

    async def pump() -> None:
        async for i, kind, item in task.follow(after, keepalive_s):
            if kind == "keepalive":
                continue  # the WebSocket layer pings on its own; the loop just re-checks for a departed client
            await ws.send_text(json.dumps({"id": i, "type": kind, "data": _data(kind, item, task)},
                                          separators=(",", ":"), default=str))

    async def watch() -> None:
        # Drain what the client sends (nothing is expected) until it leaves.
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    return

    sender = asyncio.create_task(pump())
    watcher = asyncio.create_task(watch())
    try:
        await asyncio.wait((sender, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (sender, watcher):
            t.cancel()
        for t in (sender, watcher):
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError, OSError):
                await t
    if sender.done() and not sender.cancelled() and sender.exception() is None:
        with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
            await ws.close(1000)
