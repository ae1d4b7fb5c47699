"""WebSocket forwarding to a replica's own server: the ASGI app's WebSockets on the container pattern.

ingress-nginx, an ALB and Cloud Run all proxy WebSockets: the upgrade goes to the chosen replica and the
connection then carries messages both ways until either side closes. Here the gateway's side of the
connection is ASGI (the client's) and the replica's is a ``websockets`` client over the replica's unix
socket: the handshake goes first to the app (its path, query, headers and subprotocols), so an app that
refuses the upgrade refuses the client; then every text and binary message is relayed as is, and a close
on either side closes the other with its code and reason.

A connection holds one of the replica's slots for its whole life (Cloud Run counts an open WebSocket as a
request in flight) and is one Record, ``ok`` when either side closed it, ``crash``/``oom`` when the
replica died under it (the client sees close code 1011). Not modelled: an idle limit on a quiet
connection, and the ``host`` header (the replica's handshake names the socket's host).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from starlette.types import Receive, Send
from websockets.asyncio.client import ClientConnection, unix_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from .runtime.instance import Instance

__all__ = ["relay_websocket"]

# The handshake's own headers, which the replica's handshake makes anew, and the hop-by-hop ones.
_HANDSHAKE = frozenset({"host", "connection", "upgrade", "sec-websocket-key", "sec-websocket-version",
                        "sec-websocket-extensions", "sec-websocket-protocol", "origin", "keep-alive",
                        "te", "transfer-encoding", "proxy-connection", "content-length"})
_DEATH_WAIT_S = 5.0
_UNSENDABLE = frozenset({1004, 1005, 1006, 1015})  # RFC 6455 7.4.1: never sent in a close frame


async def relay_websocket(inst: Instance, scope: dict[str, Any], receive: Receive, send: Send
                          ) -> tuple[str, str | None]:
    """Relay one WebSocket between the client (ASGI) and ``inst``'s server; its outcome and error."""
    target = scope.get("raw_path") or scope.get("path", "/").encode()
    if scope.get("query_string"):
        target += b"?" + scope["query_string"]
    raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", [])]
    headers = [(k, v) for k, v in raw if k.lower() not in _HANDSHAKE]
    origin = next((v for k, v in raw if k.lower() == "origin"), None)
    first = await receive()
    if first["type"] != "websocket.connect":
        return "ok", None  # the client went away before the handshake
    try:
        # No compression, pings or size cap of our own: frames pass as the two ends send them.
        upstream = await unix_connect(
            inst.cfg["app_socket"], "ws://replica" + target.decode("latin-1"), additional_headers=headers,
            origin=origin,
            subprotocols=[Subprotocol(p) for p in scope["subprotocols"]] if scope.get("subprotocols") else None,
            compression=None,
            user_agent_header=None, proxy=None, ping_interval=None, max_size=None, open_timeout=None)
    except InvalidStatus:
        await send({"type": "websocket.close", "code": 1008})  # the app refused the upgrade: so do we
        return "ok", None
    except (OSError, InvalidHandshake, ConnectionClosed) as exc:
        await send({"type": "websocket.close", "code": 1011})
        return await _how_it_ended(inst, exc)
    await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})
    down = asyncio.ensure_future(_downstream(upstream, send))
    up = asyncio.ensure_future(_upstream(upstream, receive))
    try:
        await asyncio.wait({down, up}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (down, up):
            t.cancel()
            with contextlib.suppress(BaseException):
                await t
        await upstream.close()
    failed = down.exception() if down.done() and not down.cancelled() else None
    # Any close frame from the app, whatever its code, is the app's answer; none at all is a broken link.
    if isinstance(failed, ConnectionClosed) and upstream.protocol.close_rcvd is None:
        return await _how_it_ended(inst, failed)
    return "ok", None


async def _downstream(upstream: ClientConnection, send: Send) -> None:
    """The app's messages to the client; the app's close closes the client with its code and reason."""
    try:
        async for message in upstream:
            key = "text" if isinstance(message, str) else "bytes"
            await send({"type": "websocket.send", key: message})
    finally:
        rcvd = upstream.protocol.close_rcvd
        # The client may be gone already (it closed first): then there is nobody to tell.
        with contextlib.suppress(Exception):
            if rcvd is not None:
                await send({"type": "websocket.close", "code": rcvd.code, "reason": rcvd.reason})
            else:  # the replica vanished without a close frame
                await send({"type": "websocket.close", "code": 1011})


async def _upstream(upstream: ClientConnection, receive: Receive) -> None:
    """The client's messages to the app; the client's close (or going away) closes the app's side."""
    while True:
        msg = await receive()
        if msg["type"] == "websocket.disconnect":
            code = msg.get("code", 1000)
            if not 1000 <= code <= 4999 or code in _UNSENDABLE:
                code = 1001  # the client vanished (1006): to the app the proxy's side is "going away"
            with contextlib.suppress(ConnectionClosed):
                await upstream.close(code, msg.get("reason") or "")
            return
        if msg["type"] == "websocket.receive":
            data = msg.get("text") if msg.get("text") is not None else msg.get("bytes")
            if data is not None:
                await upstream.send(data)


async def _how_it_ended(inst: Instance, exc: BaseException) -> tuple[str, str | None]:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(inst.wait_closed(), _DEATH_WAIT_S)
    if not inst.alive:
        reason = inst.exit_reason or "crash"
        return ("oom" if reason == "oom" else "crash"), (
            f"the replica's process ended during the WebSocket ({reason}): {inst.exit_detail}")
    return "crash", f"the WebSocket to the replica's server failed: {type(exc).__name__}: {exc}"
