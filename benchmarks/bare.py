"""The HTTP floor: a bare uvicorn + starlette JSON endpoint, served by the gateway's own server code.

``emulators.serving.start_server``, as ``emulators.gateway.server.Gateway`` calls it: our own bound socket
on 127.0.0.1 (a free port), the fastest installed HTTP/1.1 parser (``fastest_http``: httptools, else h11),
``lifespan="off"``, no access log, ``timeout_keep_alive=30``, ``Server.startup`` inside an event loop
running in a background thread of this process (the sync facade's ``LoopThread``, so the same loop as the
engine: uvloop where installed, see ``emulators.loops``), the client in the main thread. Its one route,
``POST /invoke``, reads the JSON body and answers ``{"echo": body}`` as JSON: what the echo agent returns,
without the platform in between. So the ratios compare the gateway with the best this stack serves.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulators.loops import loop_name
from emulators.serving import fastest_http, start_server
from harness._loop import LoopThread

__all__ = ["bare_endpoint", "stack"]


def stack() -> str:
    """The HTTP stack the floor and the gateway are served on, e.g. ``httptools on uvloop``."""
    return f"{fastest_http()} on {loop_name()}"


async def _invoke(request: Request) -> Response:
    task = json.loads(await request.body())
    return JSONResponse({"echo": task})


@contextmanager
def bare_endpoint() -> Iterator[str]:
    """Serve the bare endpoint for the block; yields its base URL."""
    app = Starlette(routes=[Route("/invoke", _invoke, methods=["POST"])])
    loop = LoopThread(name="bare-endpoint")

    async def start() -> tuple[uvicorn.Server, socket.socket, str]:
        return await start_server(app, "127.0.0.1", 0, what="the bare endpoint", graceful_s=1)

    try:
        server, sock, url = loop.call(start)
    except BaseException:
        loop.stop()
        raise

    async def stop() -> None:
        server.should_exit = True
        for listener in server.servers:
            listener.close()
        for conn in list(server.server_state.connections):
            conn.shutdown()
        for t in list(server.server_state.tasks):
            t.cancel()
        for listener in server.servers:
            await listener.wait_closed()

    try:
        yield url
    finally:
        try:
            loop.call(stop)
        finally:
            sock.close()
            loop.stop()
