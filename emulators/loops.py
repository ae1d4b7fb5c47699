"""The event loop the engine runs on: uvloop where it is installed, asyncio's own loop otherwise.

The engine's hot path is loop work: the gateway's HTTP connections, the instances' channels, the LLM
endpoint, timers. uvloop does that work in C (libuv). The engine runs on either loop (the test suite runs
its gateway, runtime and daemon suites on both), so the choice is the user's: ``HARNESS_LOOP`` is
``auto`` (the default: uvloop where installed), ``uvloop`` (an error where it is not) or ``asyncio``.
Every loop the harness creates itself (the sync facade's engine thread, the CLI's commands, the Locust
engine host) comes from here; ``harness.adeploy`` runs on whatever loop its caller runs.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .errors import ConfigError

__all__ = ["LOOP_CHOICES", "LOOP_ENV", "loop_factory", "loop_name", "new_event_loop", "run"]

T = TypeVar("T")

LOOP_ENV = "HARNESS_LOOP"
LOOP_CHOICES = ("auto", "uvloop", "asyncio")


def _uvloop_installed() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def loop_name(choice: str | None = None) -> str:
    """The loop to run on, ``"uvloop"`` or ``"asyncio"``: ``choice``, else ``HARNESS_LOOP``, else ``auto``."""
    raw = (choice or os.environ.get(LOOP_ENV) or "auto").strip().lower()
    if raw not in LOOP_CHOICES:
        raise ConfigError(f"unknown event loop {raw!r} ({LOOP_ENV}); expected one of: {', '.join(LOOP_CHOICES)}")
    if raw == "asyncio":
        return "asyncio"
    if _uvloop_installed():
        return "uvloop"
    if raw == "uvloop":
        raise ConfigError(f"{LOOP_ENV}=uvloop but uvloop is not installed; pip install uvloop "
                          f"(uvicorn[standard] brings it), or set {LOOP_ENV}=auto")
    return "asyncio"


def loop_factory(choice: str | None = None) -> Callable[[], asyncio.AbstractEventLoop]:
    """A function creating new loops of the chosen kind (resolved now, so a bad choice fails here)."""
    if loop_name(choice) == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    # The class, not asyncio.new_event_loop(): that asks the policy, which may have been set to uvloop's.
    # (The selector loop is asyncio's default on Linux and macOS; Windows is out of scope.)
    return asyncio.SelectorEventLoop


def new_event_loop(choice: str | None = None) -> asyncio.AbstractEventLoop:
    """A new event loop of the chosen kind (not set as the thread's current loop)."""
    return loop_factory(choice)()


def run(main: Coroutine[Any, Any, T], choice: str | None = None) -> T:
    """``asyncio.run(main)`` on a loop of the chosen kind."""
    try:
        factory = loop_factory(choice)
    except BaseException:
        main.close()  # never awaited: say nothing about it
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
