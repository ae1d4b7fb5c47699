"""Deployments of a test session: made once per scope and key, tracked per test, stopped with their scope.

A deployment is keyed by agent + pattern + profile + time scale + overrides, so tests of one scope (a
module by default) that ask for the same thing share one fleet of processes, and a test with different
overrides gets its own. Before a deployment stops, its summary and records are kept for the report.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from emulators.errors import HarnessError
from emulators.profiles import PATTERNS
from emulators.records import Record

from ..reports import DeploymentRun

__all__ = ["DeploymentSpec", "Registry", "TestUse", "resolve_agent_spec", "split_marker_kwargs"]

@dataclass(frozen=True)
class DeploymentSpec:
    """What to deploy: hashable, so equal specs in one scope share a deployment."""

    agent: str
    pattern: str
    profile: str | None
    time_scale: float | None  # None: the virtual clock
    overrides: tuple[tuple[str, str], ...] = ()  # (name, JSON text): hashable whatever the values are

    @classmethod
    def make(cls, agent: str, pattern: str, profile: str | None, time_scale: float | None,
             overrides: Mapping[str, Any]) -> DeploymentSpec:
        """A spec from plain values; override values must be JSON-compatible (as a TOML profile's are)."""
        items = tuple(sorted((k, json.dumps(v, sort_keys=True, default=str)) for k, v in overrides.items()))
        return cls(agent, pattern, profile, time_scale, items)

    @property
    def override_values(self) -> dict[str, Any]:
        """The overrides as given."""
        return {k: json.loads(v) for k, v in self.overrides}

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``harness.deploy``."""
        return {"agent": self.agent or None, "pattern": self.pattern, "profile": self.profile,
                "time_scale": self.time_scale, **self.override_values}

    @property
    def label(self) -> str:
        """Short text for messages: pattern, profile and overrides."""
        extra = ", ".join(f"{k}={v}" for k, v in self.overrides if k not in ("env", "source", "function"))
        return f"{self.pattern} ({self.profile or 'default profile'}{', ' + extra if extra else ''})"


def resolve_agent_spec(agent: str, *bases: Path) -> str:
    """A relative 'path/file.py:callable' made absolute against the first base it exists under."""
    target, sep, attr = agent.rpartition(":")
    if not sep or not (target.endswith(".py") or "/" in target) or Path(target).is_absolute():
        return agent
    for base in bases:
        if (base / target).is_file():
            return f"{base / target}:{attr}"
    return agent


@dataclass
class TestUse:
    """One deployment a test used, and where its records started."""

    pattern: str
    deployment: Any
    first_record: int

    def records(self) -> list[Record]:
        """The records this test produced on this deployment."""
        if hasattr(self.deployment, "record_count"):  # a harness deployment: only the records after ours
            return list(self.deployment.records(since=self.first_record))
        return list(self.deployment.records()[self.first_record:])


@dataclass
class Registry:
    """Every deployment of the session, live or finished."""

    config: pytest.Config
    live: dict[tuple[str, DeploymentSpec], Any] = field(default_factory=dict)
    finished: list[DeploymentRun] = field(default_factory=list)
    tests: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # deployments that failed to close cleanly

    def get(self, scope_id: str, spec: DeploymentSpec) -> Any:
        """The deployment for ``spec`` in this scope, started on first use."""
        key = (scope_id, spec)
        if key in self.live:
            return self.live[key]
        if spec.pattern not in PATTERNS:
            pytest.fail(f"unknown pattern {spec.pattern!r}; expected one of: {', '.join(PATTERNS)}", pytrace=False)
        try:
            dep = self.config.hook.pytest_harness_make_deployment(config=self.config, spec=spec)
        except HarnessError as exc:
            pytest.fail(f"cannot deploy {spec.agent!r} under {spec.label}: {exc}", pytrace=False)
        if dep is None:
            pytest.fail("no pytest_harness_make_deployment implementation returned a deployment", pytrace=False)
        self.live[key] = dep
        self.config.hook.pytest_harness_deployment_started(config=self.config, spec=spec, deployment=dep)
        return dep

    def close(self, scope_id: str | None = None) -> None:
        """Stop the deployments of one scope (every scope: None), keeping their summaries and records."""
        for key in [k for k in self.live if scope_id is None or k[0] == scope_id]:
            dep = self.live.pop(key)
            spec = key[1]
            summary = None
            try:
                summary = dep.summary()
                self.finished.append(DeploymentRun(summary, dep.records(), dep.profile.to_json(), spec.time_scale,
                                                   {k: v for k, v in spec.override_values.items() if k != "env"},
                                                   env=spec.override_values.get("env") or {}))
            except Exception as exc:  # still close below: the processes must go whatever happened
                self.failures.append(f"{spec.label}: could not read its records: {exc}")
            try:
                dep.close()
            except Exception as exc:  # reported at the end; one bad close must not leak the others
                self.failures.append(f"{spec.label}: did not close cleanly: {exc}")
            if summary is not None:
                self.config.hook.pytest_harness_deployment_closed(config=self.config, spec=spec, summary=summary)

    def envs(self) -> list[Mapping[str, str]]:
        """The ``env`` of every deployment, live or finished (to learn which values to redact)."""
        live = [spec.override_values.get("env") or {} for _, spec in self.live]
        return [*live, *(run.env for run in self.finished)]

    def secret_env_values(self) -> set[str]:
        """Secret-looking env values given to any deployment (the reports redact them)."""
        from ..reports.redact import secret_values

        envs = self.envs()
        return secret_values(*envs) if envs else set()


def split_marker_kwargs(kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], str | None, str | None, Any]:
    """(overrides incl. deploy kwargs, agent, profile, patterns) from ``@pytest.mark.harness(...)``."""
    rest = dict(kwargs)
    agent = rest.pop("agent", None)
    profile = rest.pop("profile", None)
    patterns = rest.pop("patterns", None)
    return rest, agent, profile, patterns

