"""The instance side of a forwarded ASGI app: the app served by a real uvicorn on a unix socket.

On the container pattern an ASGI app (``adapter="asgi"``) is not fed API Gateway events: each replica
runs it under uvicorn, as the app's own container would, and the gateway forwards HTTP to it unchanged
(``emulators/forward.py``). uvicorn runs in a thread of the instance process, so the process's cgroup or
RSS watch, its kill on a limit and its reaping cover the server too: no second process exists to leak.
Its startup (the app's lifespan startup included) is part of the cold start; the instance reports
"ready" only once uvicorn listens.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["AppServer"]

_START_TIMEOUT_S = 120.0  # wall seconds for uvicorn to listen (the profile's init limit ends a slower start)


class AppServer:
    """uvicorn serving ``app`` on the unix socket ``path``, in a daemon thread of this process."""

    def __init__(self, app: Callable[..., Any], path: str) -> None:
        import uvicorn  # only instances that serve an app pay for the import (it is part of their cold start)

        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a socket left by an earlier instance of the same id (a kept run directory)
        # lifespan "auto": an app without lifespan support starts anyway, as under uvicorn's default. No
        # server/date headers: the gateway's own server adds them once, as the front proxy would.
        config = uvicorn.Config(app, uds=path, lifespan="auto", log_level="warning", access_log=False,
                                server_header=False, date_header=False, timeout_graceful_shutdown=0)
        self.server = uvicorn.Server(config)
        self.path = path
        self._thread = threading.Thread(target=self.server.run, name="app-server", daemon=True)

    def start(self) -> str | None:
        """Start serving and wait until uvicorn listens; why it could not (the log has the traceback), or None."""
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self.server.started:
            if not self._thread.is_alive():
                return "the app's server stopped during startup (its lifespan startup failed; see the log)"
            if time.monotonic() > deadline:
                return f"the app's server did not listen within {_START_TIMEOUT_S:g} s"
            time.sleep(0.002)
        if self.server.should_exit:  # uvicorn sets it when the lifespan startup failed
            return "the app's lifespan startup failed (see the log)"
        return None
