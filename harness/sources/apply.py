"""Turning a mapped function into deploy arguments, the same way for ``deploy``, the CLI, pytest and readiness.

The file's declared limits belong to its own pattern: on that pattern the mapped profile and overrides
apply; asked for another pattern (to compare), the agent and its env come along, the limits do not (a
Lambda's MemorySize says nothing about a Worker), and that pattern's profile is the one given or its
default. What the caller passes explicitly always wins over the file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from emulators.errors import ConfigError
from emulators.profiles import Profile, load_profile

from . import load_source
from .model import Mapped

__all__ = ["deploy_arguments", "mapped_profile", "pattern_arguments"]


def pattern_arguments(m: Mapped, pattern: str, profile: str | Path | Profile | None = None) -> dict[str, Any]:
    """Profile and overrides for ``m`` deployed under ``pattern`` (its declared limits only on its own pattern)."""
    if pattern == m.pattern:
        return {"profile": profile if profile is not None else m.profile, "overrides": dict(m.overrides)}
    return {"profile": profile, "overrides": {}}


def mapped_profile(m: Mapped) -> Profile:
    """The function's profile with its overrides applied, named after the file and the function."""
    return load_profile(m.profile, m.pattern).replace(**m.overrides, name=f"{m.source.name}:{m.name}")


def deploy_arguments(source: str | Path, function: str | None, agent: str | Path | Callable[..., Any] | None,
                     pattern: str | None, profile: str | Path | Profile | None, adapter: str,
                     env: Mapping[str, str] | None, function_name: str | None,
                     overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``build_config``'s arguments from a deployment file plus what the caller gave (the caller wins)."""
    m = load_source(source).get(function)
    agent = agent if agent is not None else m.agent
    if agent is None:
        raise ConfigError(f"{source}: {m.name!r} does not name its code in a way the harness reads "
                          f"({'; '.join(m.warnings()) or 'no handler'}); pass the agent: "
                          f"deploy('path/file.py:agent', source=...)")
    chosen = pattern or m.pattern
    args = pattern_arguments(m, chosen, profile)
    return {"agent": agent, "pattern": chosen, "profile": args["profile"],
            "adapter": m.adapter if adapter == "auto" else adapter,
            "env": {**m.env, **(env or {})}, "function_name": function_name or m.name,
            "overrides": {**args["overrides"], **overrides}}
