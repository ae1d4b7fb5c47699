"""Turning a mapped function into deploy arguments, the same way for ``deploy``, the CLI, pytest and readiness.

The file's declared limits belong to its own pattern: on that pattern the mapped profile and overrides
apply. Asked for another pattern (to compare), the agent and its env come along, that pattern's profile is
the one given or its default, and of the limits only those that are the same knob there carry over
(``CARRIED``): a call's time limit you set (Lambda's Timeout, Vercel's maxDuration, Cloud Run's
timeoutSeconds, an ingress's read timeout) and the memory size you pick (MemorySize, a pod's limit, a
Machine's size), between the serverless and container patterns, where the value is within the target
profile's range. Not to the daemon (its workers run tasks without a per-call limit and its profiles price
a worker of one size), nor to the edge (no wall-clock limit, C5; an isolate's 128 MB is the platform's,
C1); every other declared limit (a concurrency cap, a gateway limit, an autoscaler's setting) is its own
platform's. Each carried value says where it was taken from, each other one why it was not applied
(``Elsewhere``). What the caller passes explicitly always wins over the file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulators.errors import ConfigError
from emulators.profiles import Profile, load_profile

from . import load_source
from .common import LAMBDA_CONSUMER_FIELDS
from .model import Mapped

__all__ = ["CARRIED", "Elsewhere", "deploy_arguments", "mapped_profile", "other_pattern", "pattern_arguments"]

# The declared limits that are the same knob on another pattern, and the patterns they carry to.
CARRIED: dict[str, tuple[str, ...]] = {"timeout_s": ("serverless", "container"),
                                       "memory_mb": ("serverless", "container")}
_WHY_NOT = {
    ("timeout_s", "daemon"): "a daemon runs each task without a per-call limit (timeout_s there bounds only a sync "
                             "wait); the daemon pattern is where a task may outlive a function's timeout",
    ("timeout_s", "edge"): "an edge isolate has no wall-clock limit while the client is connected (C5); its limit "
                           "is CPU time (cpu_limit_ms)",
    ("memory_mb", "daemon"): "the daemon profiles price a worker of one size (daemon-local: 512 MB, RD11); "
                             "another size would need another price",
    ("memory_mb", "edge"): "an isolate's memory is the platform's, not yours to set (128 MB, C1)",
}


@dataclass(frozen=True)
class Elsewhere:
    """What of a function's declared limits applies on another pattern: carried values and the ones left."""

    pattern: str
    profile: str
    carried: tuple[tuple[str, Any, str], ...]  # (field, value, "taken from template.yaml:8 (Timeout)")
    not_applied: tuple[tuple[str, str], ...]  # (what, why)

    def lines(self) -> list[str]:
        """One line per carried value, then one per limit not applied, each naming the pattern."""
        out = [f"on {self.pattern} ({self.profile}): {f} = {v:g} {src}" for f, v, src in self.carried]
        return out + [f"not applied on {self.pattern}: {what}: {why}" for what, why in self.not_applied]


def other_pattern(m: Mapped, pattern: str, profile: str | Path | Profile | None = None) -> Elsewhere:
    """Which of ``m``'s declared limits carry to ``pattern`` (on ``profile``, else its default) and which do not."""
    target = load_profile(profile, pattern)
    by_field = {t.field: t for t in m.taken}
    carried: list[tuple[str, Any, str]] = []
    left: list[tuple[str, str]] = []
    for name in CARRIED:
        if name not in m.overrides or m.overrides[name] is None:
            continue
        value, t = m.overrides[name], by_field.get(name)
        label = m.knobs[name].label if name in m.knobs else t.key.rsplit(".", 1)[-1] if t is not None else name
        origin = f"{t.where if t is not None else m.source.name} ({label})"
        if pattern not in CARRIED[name]:
            left.append((f"{name} = {value:g} from {origin}", _WHY_NOT[(name, pattern)]))
            continue
        try:
            target.replace(**{name: value})
        except ConfigError as exc:  # outside the target platform's range: its default stays
            left.append((f"{name} = {value:g} from {origin}",
                         f"{exc}; {target.name}'s {getattr(target, name):g} applies"))
            continue
        carried.append((name, value, f"taken from {origin}"))
    # The file's own limits (a Lambda consumer's prices and CPU rule are aws-lambda's, not the file's).
    platform = LAMBDA_CONSUMER_FIELDS if "billing" in by_field else frozenset()
    rest = sorted(k for k in m.overrides if k not in CARRIED and k not in platform and by_field.get(k) is not None)
    if rest:
        left.append((", ".join(rest), f"limits of {m.pattern} ({m.profile}), with no meaning here; "
                                      f"{target.name}'s own apply"))
    return Elsewhere(pattern, target.name, tuple(carried), tuple(left))


def pattern_arguments(m: Mapped, pattern: str, profile: str | Path | Profile | None = None) -> dict[str, Any]:
    """Profile and overrides for ``m`` deployed under ``pattern``: all its limits on its own, the carried elsewhere.

    ``elsewhere`` (another pattern only) says what was carried and what was not applied.
    """
    if pattern == m.pattern:
        return {"profile": profile if profile is not None else m.profile, "overrides": dict(m.overrides),
                "elsewhere": None}
    there = other_pattern(m, pattern, profile)
    return {"profile": profile, "overrides": {f: v for f, v, _ in there.carried}, "elsewhere": there}


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
