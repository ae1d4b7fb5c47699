"""``Gateway``: serves one deployment's ``GatewayApp`` with uvicorn inside the engine's asyncio loop.

The same approach as the LLM endpoint (``emulators/llm/server.py``): bind the socket ourselves (a free
port by default, TCP_NODELAY for small SSE frames), then ``Server.startup``/``shutdown`` rather than
``serve()``, which would take over the process's signal handlers. Measured on these machines: starting
the gateway adds about 2-4 ms to a deployment's start (see ``docs/gateway.md``).
"""

from __future__ import annotations

import asyncio
import socket
import time
import warnings

import uvicorn

from ..clock import Clock
from ..pattern import Emulator
from ..serving import start_server
from .app import GatewayApp
from .options import GatewayOptions
from .tasks import TaskRegistry

__all__ = ["Gateway"]

_GRACE_S = 0.5  # wall seconds open responses get to finish when the gateway stops

class Gateway:
    """One deployment's HTTP front door: ``start()`` returns its base URL, ``stop()`` closes everything."""

    def __init__(self, emulator: Emulator, registry: TaskRegistry, clock: Clock, options: GatewayOptions) -> None:
        self.options = options
        self.app = GatewayApp(emulator, registry, clock, options)
        self.url: str | None = None
        self._server: uvicorn.Server | None = None
        self._sock: socket.socket | None = None

    async def start(self) -> str:
        """Listen on the options' host and port in the running loop; returns the base URL."""
        if self._server is not None:
            raise RuntimeError("this gateway is already started")
        host, port = self.options.host, self.options.port
        if self.options.exposed:
            msg = (f"the gateway listens on {host}, reachable from other machines"
                   + ("" if self.options.api_key else " with no API key") + "; bind 127.0.0.1 unless you mean it")
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
        server, sock, url = await start_server(self.app.asgi, host, port, what="the gateway", graceful_s=1)
        self._server, self._sock = server, sock
        self.url = self.app.url = url
        return self.url

    async def stop(self) -> None:
        """Close the socket and connections; cancel the requests and streams still open after a short grace."""
        server, sock = self._server, self._sock
        self._server = self._sock = None
        if server is not None:
            server.should_exit = True
            # Not Server.shutdown(): it sleeps a fixed 0.1 s, which would double a deployment's close time
            # (measured: 10 ms without the gateway, 111 ms with it), and it waits on open SSE streams.
            for listener in server.servers:
                listener.close()
            if sock is not None:
                sock.close()
            await self.app.aclose()  # the /invoke calls in flight: their callers are being cut off
            state = server.server_state
            for conn in list(state.connections):
                conn.shutdown()  # idle keep-alive connections close now; busy ones after their response
            deadline = time.monotonic() + _GRACE_S
            # Wait for plain responses to be written, not for SSE/WebSocket streams: those end only with their
            # task, and are cut off below.
            while len(state.tasks) > self.app.streams and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            pending = list(state.tasks)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for listener in server.servers:
                await listener.wait_closed()
        else:
            await self.app.aclose()
        self.url = self.app.url = None
