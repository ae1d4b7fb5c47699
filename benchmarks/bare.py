"""The HTTP floor: a bare uvicorn + starlette JSON endpoint, served the way the gateway serves a deployment.

Same server settings as ``emulators.gateway.server.Gateway``: our own bound socket on 127.0.0.1 (a free
port), ``uvicorn.Config(http="h11", lifespan="off", access_log=False, log_config=None,
timeout_keep_alive=30)``, ``Server.startup`` inside an asyncio loop running in a background thread of
this process (the sync facade's ``LoopThread``), the client in the main thread. Its one route,
``POST /invoke``, reads the JSON body and answers ``{"echo": body}`` as JSON: what the echo agent returns,
without the platform in between.
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

from harness._loop import LoopThread

__all__ = ["bare_endpoint"]


async def _invoke(request: Request) -> Response:
    task = json.loads(await request.body())
    return JSONResponse({"echo": task})


@contextmanager
def bare_endpoint() -> Iterator[str]:
    """Serve the bare endpoint for the block; yields its base URL."""
    app = Starlette(routes=[Route("/invoke", _invoke, methods=["POST"])])
    loop = LoopThread(name="bare-endpoint")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", http="h11",
                            timeout_graceful_shutdown=1, timeout_keep_alive=30)
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)  # as the gateway does: startup() without serve()

    async def start() -> None:
        await server.startup(sockets=[sock])

    async def stop() -> None:
        server.should_exit = True
        if not hasattr(server, "servers"):  # startup() failed before listening
            return
        for listener in server.servers:
            listener.close()
        for conn in list(server.server_state.connections):
            conn.shutdown()
        for t in list(server.server_state.tasks):
            t.cancel()
        for listener in server.servers:
            await listener.wait_closed()

    try:
        loop.call(start)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        try:
            loop.call(stop)
        finally:
            sock.close()
            loop.stop()
