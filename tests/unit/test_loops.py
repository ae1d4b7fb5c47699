"""The engine's event-loop choice: HARNESS_LOOP selects uvloop or asyncio's loop, auto prefers uvloop."""

from __future__ import annotations

import asyncio
import builtins
from typing import Any

import pytest

from emulators import loops
from emulators.errors import ConfigError


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_asyncio_choice_runs_on_asyncios_loop() -> None:
    """HARNESS_LOOP=asyncio gives asyncio's own loop."""
    assert loops.run(_loop_module(), "asyncio").startswith("asyncio")


def test_auto_prefers_uvloop_where_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a choice the environment decides, and auto is uvloop when it imports."""
    pytest.importorskip("uvloop")
    monkeypatch.delenv(loops.LOOP_ENV, raising=False)
    assert loops.loop_name() == "uvloop"
    assert loops.run(_loop_module()) == "uvloop"
    monkeypatch.setenv(loops.LOOP_ENV, "asyncio")
    assert loops.loop_name() == "asyncio"


def test_auto_falls_back_to_asyncio_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where uvloop cannot be imported, auto is asyncio and an explicit uvloop is a ConfigError saying so."""
    real_import = builtins.__import__

    def no_uvloop(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "uvloop":
            raise ImportError("no uvloop here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_uvloop)
    assert loops.loop_name("auto") == "asyncio"
    with pytest.raises(ConfigError, match="uvloop is not installed"):
        loops.loop_name("uvloop")


def test_an_unknown_loop_is_a_config_error_naming_the_choices() -> None:
    """A typo in HARNESS_LOOP fails with the accepted values, and the coroutine is not left unawaited."""
    with pytest.raises(ConfigError, match="expected one of: auto, uvloop, asyncio"):
        loops.run(_loop_module(), "uvlop")
