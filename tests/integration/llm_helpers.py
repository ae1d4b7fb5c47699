"""Helpers for the LLM endpoint tests: serve an LLMEndpoint from its own event loop in a thread.

Sync SDK calls block the calling thread, so the server cannot share the test's thread; each
``ServerThread`` owns a thread and a loop, serves on 127.0.0.1 port 0, and on exit stops the server and
joins the thread (a thread still alive after that is a test failure).
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from emulators.clock import Clock
from emulators.llm import LLMCall, LLMEndpoint

ROOT = Path(__file__).resolve().parents[2]
LLM_SCRIPTS = ROOT / "fixtures" / "llm"
AGENTS = ROOT / "fixtures" / "agents"


class ServerThread:
    """An LLMEndpoint served in a background thread; ``url`` is its base URL once entered."""

    def __init__(self, time_scale: float = 0.001, **kwargs: Any) -> None:
        self.clock = Clock(time_scale)
        self.kwargs = kwargs
        self.waits: list[tuple[str | None, str | None, str, float]] = []
        self.url = ""
        self.endpoint: LLMEndpoint | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="llm-endpoint", daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._done = asyncio.Event()
            kwargs = {"on_wait": lambda *a: self.waits.append(a), **self.kwargs}
            self.endpoint = LLMEndpoint(clock=self.clock, **kwargs)
            try:
                self.url = await self.endpoint.start()
            finally:
                self._ready.set()
            try:
                await self._done.wait()
            finally:
                await self.endpoint.stop()

        try:
            asyncio.run(main())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    def __enter__(self) -> ServerThread:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        assert self.url, "the LLM endpoint did not start within 10 s"
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop the server and join its thread."""
        if self._loop is not None and self._done is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._done.set)
        self._thread.join(10)
        assert not self._thread.is_alive(), "the LLM endpoint thread is still running 10 s after stop"

    @property
    def calls(self) -> list[LLMCall]:
        """Every call the endpoint recorded so far."""
        assert self.endpoint is not None
        return list(self.endpoint.calls)

    def openai_url(self, caller: str | None = None) -> str:
        """Base URL for the openai SDK (includes /v1), optionally under a caller prefix."""
        return f"{self.url}/i/{caller}/v1" if caller else f"{self.url}/v1"

    def anthropic_url(self, caller: str | None = None) -> str:
        """Base URL for the anthropic SDK (the root, without /v1)."""
        return f"{self.url}/i/{caller}" if caller else self.url


def load_agent(name: str) -> ModuleType:
    """A fresh import of ``fixtures/agents/<name>.py`` (fixtures is data, not a package)."""
    spec = importlib.util.spec_from_file_location(f"llm_test_agent_{name}", AGENTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
