"""Serving an ASGI app with uvicorn inside the engine's running loop, on a socket bound here.

The LLM endpoint and every deployment's gateway start the same way: bind the socket ourselves (so a port
in use is a clear ``ConfigError`` and port 0 gives a free one), then ``Server.startup`` rather than
``serve()``, which would take over the process's signal handlers.
"""

from __future__ import annotations

import socket
from typing import Any

import uvicorn

from .errors import ConfigError

__all__ = ["fastest_http", "start_server"]


def fastest_http() -> str:
    """uvicorn's HTTP/1.1 implementation: httptools (C, the ``standard`` extra) where installed, else h11.

    The gateway and the LLM endpoint both use it. Measured: ``harness serve`` on the echo agent, wrk -c8,
    1,532-1,808 req/s with h11 and 2,231-2,841 with httptools (issue 23); the LLM endpoint serves every
    model call of every instance, so on the virtual clock its parsing is on the critical path of each call
    (a day of 50,000 LLM-bound tasks: 67 s of wall time with h11, about 55 s with httptools).
    """
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"


async def start_server(app: Any, host: str, port: int, *, what: str, graceful_s: int,
                       http: str | None = None) -> tuple[uvicorn.Server, socket.socket, str]:
    """Listen on ``host:port`` and serve ``app``; returns the server, its socket and the base URL.

    ``http`` is uvicorn's HTTP/1.1 implementation; by default the fastest installed (``fastest_http``).
    """
    http = http or fastest_http()
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and without it small
    # frames (SSE events, short answers) stall ~40 ms on Nagle + delayed ACK.
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"{what} cannot listen on {host}:{port}: {exc.strerror or exc}; "
                          f"choose another port, or 0 for a free one") from None
    # ws="auto": websockets or wsproto, whichever is installed, serves WebSocket routes.
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", http=http, ws="auto",
                            timeout_graceful_shutdown=graceful_s, timeout_keep_alive=30)
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    try:
        await server.startup(sockets=[sock])
    except BaseException:
        sock.close()
        raise
    shown = "127.0.0.1" if host in ("", "0.0.0.0") else (f"[{host}]" if ":" in host else host)
    return server, sock, f"http://{shown}:{sock.getsockname()[1]}"
