"""Waiting and streaming at the emulated pace: latency waits that end early when the client leaves or the
endpoint stops, a paced SSE response, and a response cut mid-body.

A stream sends frame ``k`` once ``ttft + tokens_k / tokens_per_s`` platform seconds have passed since it
began (frames marked ``lead`` go at once). Deadlines are absolute, so time spent sending does not add up.
Frames due within ``BATCH_WALL_S`` of wall time of each other are held and sent together when the last of
them is due (at ``time_scale=0.01`` a token at 50 tok/s is 0.2 ms of wall time, too little to sleep and send
for each): no frame goes early, and the final one goes exactly on time.

To cut a body the response stops sending without its final frame and returns; uvicorn then closes the
connection mid-body, which is what a client sees when a provider drops a stream. uvicorn logs that as an
error; ``quiet_cut_logs`` filters exactly those deliberate cuts out of its log.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..clock import Clock
from .sse import Frame

__all__ = ["BATCH_WALL_S", "VIRTUAL_BATCH_S", "PartialResponse", "StreamResponse", "Waiter", "quiet_cut_logs"]

BATCH_WALL_S = 0.005
VIRTUAL_BATCH_S = 0.1  # on the virtual clock: frames due within 100 platform ms go together (one jump, not ten)
_UNFINISHED = "ASGI callable returned without completing response."
_CUT: contextvars.ContextVar[bool] = contextvars.ContextVar("llm_cut", default=False)


class _DeliberateCut(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (_CUT.get() and record.getMessage() == _UNFINISHED)


_FILTER = _DeliberateCut()


def quiet_cut_logs() -> None:
    """Keep uvicorn from logging an error for a body the simulator cut on purpose (idempotent)."""
    logger = logging.getLogger("uvicorn.error")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class Waiter:
    """Sleeps in platform seconds until done, the client disconnects, or the endpoint stops."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._stopped = asyncio.Event()

    def reset(self) -> None:
        """A fresh stop flag (for a (re)start, possibly in another event loop)."""
        self._stopped = asyncio.Event()

    def stop(self) -> None:
        """End every wait in progress, and make later ones return at once."""
        self._stopped.set()

    @staticmethod
    def watch(receive: Receive) -> asyncio.Task[None]:
        """A task that ends when the client disconnects."""
        return asyncio.ensure_future(_until_disconnect(receive))

    async def wait(self, platform_s: float, receive: Receive | None = None, *,
                   watch: asyncio.Task[None] | None = None) -> str:
        """Wait; returns ``done``, ``disconnected`` or ``stopped``."""
        own = watch is None and receive is not None
        if own and receive is not None:
            watch = self.watch(receive)
        sleeper = asyncio.ensure_future(self.clock.sleep(platform_s))
        stopper = asyncio.ensure_future(self._stopped.wait())
        waits: set[asyncio.Future[Any]] = {sleeper, stopper}
        if watch is not None:
            waits.add(watch)
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            stopper.cancel()
            if own and watch is not None:
                watch.cancel()
        if watch is not None and watch in done:
            return "disconnected"
        if stopper in done:
            return "stopped"
        return "done"


class StreamResponse(Response):
    """A 200 ``text/event-stream`` response whose frames go out at the emulated pace."""

    media_type = "text/event-stream"

    def __init__(self, frames: Iterator[Frame], *, waiter: Waiter, ttft_s: float, tokens_per_s: float,
                 total_tokens: int, cut: bool, headers: Mapping[str, str],
                 on_begin: Callable[[float], None], on_end: Callable[[float, int, str], None]) -> None:
        self.status_code = 200
        self.background = None
        self.init_headers({**headers, "cache-control": "no-cache"})
        self.frames, self.waiter = frames, waiter
        self.ttft_s, self.tokens_per_s, self.total_tokens, self.cut = ttft_s, tokens_per_s, total_tokens, cut
        self.on_begin, self.on_end = on_begin, on_end

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the head at once, then the frames on schedule; announce the wait's begin and end."""
        clock = self.waiter.clock
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        plan = self.ttft_s + self.total_tokens / self.tokens_per_s
        self.on_begin(plan)
        began = clock.now()
        watch = self.waiter.watch(receive)
        how, sent, held, buffer = "done", 0, 0, bytearray()
        first_due = last_due = 0.0  # platform due times of the first and last frame held in ``buffer``
        half = self.total_tokens // 2
        window = VIRTUAL_BATCH_S if clock.virtual else clock.to_platform(BATCH_WALL_S)
        try:
            for frame in self.frames:
                if self.cut and not frame.lead and (frame.tokens > half or half == 0):
                    how = "cut"
                    break
                due = 0.0 if frame.lead else self.ttft_s + frame.tokens / self.tokens_per_s
                if buffer and (due - first_due > window or (first_due == 0.0 and not frame.lead)):
                    how = await self._flush(send, buffer, last_due, began, watch)
                    if how != "done":
                        break
                    sent = held
                if not buffer:
                    first_due = due
                buffer += frame.data
                last_due = max(last_due, due)
                held = max(held, frame.tokens)
            if how == "done":
                how = await self._flush(send, buffer, last_due, began, watch, last=True)
            elif how in ("cut", "stopped") and buffer:
                await send({"type": "http.response.body", "body": bytes(buffer), "more_body": True})
            if how in ("done", "cut"):
                sent = held
        except BaseException:
            how = "disconnected" if how == "done" else how
            raise
        finally:
            watch.cancel()
            waited = plan if how == "done" else clock.now() - began
            self.on_end(waited, sent, how)
        if how != "done":
            _CUT.set(True)  # returning now leaves the body unfinished: uvicorn closes the connection

    async def _flush(self, send: Send, buffer: bytearray, due: float, began: float, watch: asyncio.Task[None],
                     *, last: bool = False) -> str:
        """Wait until ``due`` (platform seconds after ``began``, a platform time), then send the held frames."""
        clock = self.waiter.clock
        ahead = due - (clock.now() - began)
        if ahead > 0:
            how = await self.waiter.wait(ahead, watch=watch)
            if how != "done":
                return how
        await send({"type": "http.response.body", "body": bytes(buffer), "more_body": not last})
        buffer.clear()
        return "done"


class PartialResponse(Response):
    """A 200 JSON response that announces its full length, sends half of it, and drops the connection."""

    media_type = "application/json"

    def __init__(self, payload: bytes, *, headers: Mapping[str, str]) -> None:
        self.status_code = 200
        self.background = None
        self.body = payload
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the head and the first half of the body, then return unfinished."""
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body[: len(self.body) // 2], "more_body": True})
        _CUT.set(True)
