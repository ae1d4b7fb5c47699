"""HTTP forwarding to a replica's own server: how an ASGI app is reached on the container pattern.

A container platform's ingress (ingress-nginx, an ALB, Cloud Run's front end) does not turn a request
into an event: it proxies the bytes to the app's server in the chosen replica. Here each replica of an
ASGI app runs uvicorn on a unix socket (``runtime/appserver.py``) and ``Forwarder.exchange`` relays one
request to it with httpx: method, raw path and query, headers and body as the client sent them (the
hop-by-hop headers aside, as RFC 9110 has proxies do), and the answer back as it comes: status, every
header (repeated ``set-cookie`` included), the body chunk by chunk with no buffering, so a
``StreamingResponse`` or server-sent events reach the client while the app is still writing. The request
body is read whole first (up to the profile's request limit), as nginx buffers it by default; a client
that goes away mid-response has the app's side closed too.

The app's time is all real (it runs no emulated waits the harness could see), so the limits below are
real seconds on any clock: on the virtual clock the relay holds time (it passes 1:1 while a request is in
flight), and on a scaled one an app's real second is a platform second, as its compute is in an instance.

The ingress's time limit is the profile's (``timeout_s``, or ``gateway_timeout_s`` if shorter): until the
response begins it is the time left after queueing, then the same limit applies to each silence between
chunks, as nginx's ``proxy_read_timeout`` and an ALB's idle timeout do. Past it before the response began
the caller gets 504 while the app's work runs on (its slot stays taken until the app answers); past it
mid-stream the stream is cut. A replica whose process dies mid-request fails it (502 if nothing was sent
yet); the instance's ending says whether memory (``oom``) or a crash ended it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx

from .clock import Clock
from .runtime import limits
from .runtime.instance import Instance

__all__ = ["Exchange", "Forwarder", "HttpRequest", "Sink", "end"]

Sink = Callable[[dict[str, Any]], Awaitable[None]]  # ASGI ``send``: the response goes out through it
# RFC 9110 7.6.1: meaningful for one connection only, so a proxy neither forwards nor copies them.
_HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer",
                         b"transfer-encoding", b"upgrade", b"proxy-authenticate", b"proxy-authorization"})
_DEATH_WAIT_S = 5.0  # wall seconds to learn how a replica ended after its connection broke
_MEMORY_POLL_S = 0.01  # RSS poll where no cgroup caps the replica (as the instance's own watch polls)


@dataclass
class HttpRequest:
    """One request as the client sent it."""

    method: str
    target: bytes  # raw path and query, as on the request line
    headers: list[tuple[bytes, bytes]]
    body: bytes


@dataclass
class Exchange:
    """How one forwarded request went."""

    outcome: str = "ok"  # ok | gateway_timeout | crash | oom
    error: str | None = None
    status: int | None = None  # the app's status, once its response began
    started: bool = False  # the response start went to the caller (a failure can no longer be answered)
    wall_s: float = 0.0  # real seconds from sending the request to the end of the response
    # The request the caller stopped waiting for (the 504 went out): it ends when the app answers, and holds
    # the replica's slot until then.
    lingering: asyncio.Future[Any] | None = None
    body: bytearray = field(default_factory=bytearray)  # the response body, when kept (a task's POST)
    complete: bool = False  # the app's whole body was relayed but ``tail``; the closing message is left to send
    tail: bytes = b""  # the last bytes of a body with a content-length, held until the call is recorded
    start: dict[str, Any] | None = None  # the response start of a bodiless answer (HEAD, 204, 304), held likewise


@dataclass
class _Watch:
    """The RSS poller of one replica and how many of its requests need it."""

    task: asyncio.Future[None]
    users: int = 0


async def end(send: Sink, out: Exchange) -> None:
    """Close the response of a complete exchange. A stream cut short stays unclosed: the server then drops
    the connection, so the client sees a truncated body, not a clean end."""
    if out.start is not None and (out.complete or out.outcome != "ok"):
        await send(out.start)
    if out.complete:
        await send({"type": "http.response.body", "body": out.tail, "more_body": False})


class Forwarder:
    """httpx clients to the replicas' sockets (one per instance, kept alive) and the relay of one request."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._clients: dict[str, tuple[Instance, httpx.AsyncClient]] = {}
        self._closing: set[asyncio.Future[None]] = set()  # closes in the background (kept from the GC)
        self._watches: dict[str, _Watch] = {}  # memory pollers of replicas without a cgroup, by instance id
        # httpcore's async client runs on anyio, whose asyncio backend is imported on the first request (~30 ms
        # here): imported now, at deploy time, so that the first forwarded request's latency does not count it.
        importlib.import_module("anyio._backends._asyncio")

    def _client(self, inst: Instance) -> httpx.AsyncClient:
        got = self._clients.get(inst.id)
        if got is not None:
            return got[1]
        for old, _ in list(self._clients.values()):  # a new instance: forget the clients of dead ones
            if not old.alive:
                self.drop(old)
        # No pool cap: the container's own slots bound what is in flight to a replica, not httpx.
        transport = httpx.AsyncHTTPTransport(uds=inst.cfg["app_socket"], retries=0, verify=False, limits=httpx.Limits(
            max_connections=None, max_keepalive_connections=64))
        client = httpx.AsyncClient(transport=transport, timeout=None)
        self._clients[inst.id] = inst, client
        return client

    def drop(self, inst: Instance) -> None:
        """``inst`` ended: its client goes (its connections point at a dead socket)."""
        got = self._clients.pop(inst.id, None)
        if got is not None:
            self._later(got[1].aclose())

    def _later(self, closing: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(closing)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _close_when_answered(self, pending: asyncio.Future[Any]) -> None:
        if not pending.cancelled() and pending.exception() is None:
            self._later(pending.result().aclose())

    def watch_memory(self, inst: Instance) -> Callable[[], None]:
        """Poll ``inst``'s RSS while requests to it are in flight (one poller per instance); the release."""
        watch = self._watches.get(inst.id)
        if watch is None:
            watch = self._watches[inst.id] = _Watch(asyncio.ensure_future(_watch_memory(inst)))
        watch.users += 1

        def release() -> None:
            watch.users -= 1
            if watch.users == 0:
                watch.task.cancel()
                self._watches.pop(inst.id, None)

        return release

    async def aclose(self) -> None:
        """Close every client (the deployment closes)."""
        clients, self._clients = [c for _, c in self._clients.values()], {}
        for c in clients:
            with contextlib.suppress(Exception):
                await c.aclose()

    async def exchange(self, inst: Instance, req: HttpRequest, send: Sink, *, first_s: float, idle_s: float,
                       marks: Callable[[], list[tuple[bytes, bytes]]], keep_body: bool = False,
                       disconnected: Callable[[], bool] = lambda: False) -> Exchange:
        """Relay ``req`` to ``inst``'s server and its answer to ``send``; never raises for the replica's failures.

        ``first_s``: platform seconds the response may take to begin; ``idle_s``: to each next chunk.
        ``marks()``: headers added to the response start (the ``x-harness-*`` ones).
        """
        out = Exchange()
        headers = [(k, v) for k, v in req.headers if k.lower() not in _HOP_BY_HOP and k.lower() != b"content-length"]
        url = httpx.URL(scheme="http", host="replica", raw_path=req.target)
        request = httpx.Request(req.method, url, headers=headers, content=req.body)
        client = self._client(inst)
        t0 = time.monotonic()
        # Real I/O to a real server: on the virtual clock time must pass 1:1 while it is in flight.
        with self.clock.busy():
            unwatch = None if inst.cap.kernel_enforced else self.watch_memory(inst)
            try:
                await self._relay(client, request, send, out, first_s, idle_s, marks, keep_body, disconnected)
            except (httpx.TransportError, OSError) as exc:
                await self._failed(inst, out, exc)
            finally:
                if unwatch is not None:
                    unwatch()
        out.wall_s = time.monotonic() - t0
        return out

    async def _relay(self, client: httpx.AsyncClient, request: httpx.Request, send: Sink, out: Exchange,
                     first_s: float, idle_s: float, marks: Callable[[], list[tuple[bytes, bytes]]],
                     keep_body: bool, disconnected: Callable[[], bool]) -> None:
        pending = asyncio.ensure_future(client.send(request, stream=True))
        try:
            response = await asyncio.wait_for(asyncio.shield(pending), first_s)
        except TimeoutError:
            out.outcome, out.lingering = "gateway_timeout", pending
            out.error = f"upstream request timeout: no response within {first_s:g} s (HTTP 504)"
            pending.add_done_callback(self._close_when_answered)
            return
        except BaseException:
            pending.cancel()
            raise
        try:
            out.status = response.status_code
            pairs = [(k, v) for k, v in response.headers.raw if k.lower() not in _HOP_BY_HOP]
            start = {"type": "http.response.start", "status": response.status_code, "headers": [*pairs, *marks()]}
            if request.method == "HEAD" or response.status_code in (204, 304):
                out.start = start  # no body: the client is done at the headers, so they wait for the record
            else:
                await send(start)
            out.started = True
            # With a content-length the client is done at the last byte, before any closing message: that last
            # chunk is held for ``end``, so the call is recorded before the client can see its end.
            length = response.headers.get("content-length")
            left = int(length) if length is not None and length.isdigit() else -1
            chunks = response.aiter_raw().__aiter__()
            while True:
                try:
                    chunk = await asyncio.wait_for(chunks.__anext__(), idle_s)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    out.outcome = "gateway_timeout"
                    out.error = (f"upstream read timeout: the response stayed silent for {idle_s:g} s mid-stream; "
                                 f"the stream was cut")
                    return
                if keep_body:
                    out.body += chunk
                if left >= 0:
                    left -= len(chunk)
                    if left <= 0:
                        out.tail += chunk
                        continue
                if disconnected():
                    # The caller went away: close the app's side too, as nginx does (proxy_ignore_client_abort
                    # off), so an endless stream frees its slot. The call itself went as the app meant: ok.
                    return
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            out.complete = True  # the caller ends the response (``end``) once the call is recorded
        finally:
            await response.aclose()

    async def _failed(self, inst: Instance, out: Exchange, exc: BaseException) -> None:
        """The connection to the replica broke: learn whether its process died, and of what."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(inst.wait_closed(), _DEATH_WAIT_S)
        if not inst.alive:
            self.drop(inst)
            reason = inst.exit_reason or "crash"
            out.outcome = "oom" if reason == "oom" else "crash"
            out.error = (f"the replica's process ended mid-request ({reason}): {inst.exit_detail}"
                         f" ({type(exc).__name__})")
        else:
            out.outcome = "crash"
            out.error = f"the connection to the replica's server failed: {type(exc).__name__}: {exc}"


async def _watch_memory(inst: Instance) -> None:
    """Where no cgroup caps the replica, poll its RSS while a request runs and kill it past the cap."""
    while inst.alive:
        if limits.rss_mb(inst.pid) > inst.cap.limit_mb:
            await inst.kill("oom")
            return
        await asyncio.sleep(_MEMORY_POLL_S)
