"""What a deployment file maps to: per function or service, a pattern, a profile, overrides and env.

Nothing a file says is silently dropped: every key is either *taken* (onto a profile field, the env, the
agent spec or the pattern: ``Taken``) or *not mapped* with the reason (``NotMapped``); both name the file
and line, so a report or an error points at the user's own config. ``Knob`` is the way back: where a
profile field lives in the user's file (or where it would go), so readiness can say
"raise MemorySize from 128 to 1024 in template.yaml:14".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulators.errors import ConfigError, close_matches_hint

__all__ = ["Knob", "Mapped", "NotMapped", "Source", "Taken", "Where"]


@dataclass(frozen=True)
class Where:
    """A place in a file: the file and a 1-based line (0: the file as a whole)."""

    file: Path
    line: int = 0

    def __str__(self) -> str:
        return f"{self.file.name}:{self.line}" if self.line else self.file.name

    @property
    def full(self) -> str:
        """The full path with the line, for error messages."""
        return f"{self.file}:{self.line}" if self.line else str(self.file)


@dataclass(frozen=True)
class Taken:
    """A key that was mapped: the user's key and value, what it became, and where it is."""

    key: str  # the user's key path, e.g. "Resources.ApiFunction.Properties.MemorySize"
    value: Any  # the user's value as written
    field: str  # the profile field, or "env", "agent", "pattern"
    mapped: Any  # the value it became
    where: Where
    note: str = ""  # a cited source key or why it maps so

    def text(self) -> str:
        """One line: ``MemorySize = 128 -> memory_mb = 128 (template.yaml:14)``."""
        note = f"; {self.note}" if self.note else ""
        return f"{self.key} = {self.value!r} -> {self.field} = {self.mapped!r} ({self.where}{note})"


@dataclass(frozen=True)
class NotMapped:
    """A key the harness does not emulate, and why: shown as a warning, never silently dropped."""

    key: str
    where: Where
    why: str

    def text(self) -> str:
        """One line: ``not mapped: Policies (template.yaml:20): IAM is not emulated``."""
        return f"not mapped: {self.key} ({self.where}): {self.why}"


@dataclass(frozen=True)
class Knob:
    """Where a profile field is set in the user's file, in the user's own terms.

    ``factor`` converts: field value = user value x factor (a timeout in ms: 0.001); ``unit`` is appended
    when the value is shown (``512Mi``). ``current`` is the user's value, or None when the file does not set
    it (``where`` then names the block it would go in).
    """

    field: str
    label: str  # the user's key, e.g. "MemorySize" or "resources.limits.memory"
    where: Where
    current: Any = None
    factor: float = 1.0
    unit: str = ""
    choices: tuple[float, ...] = ()  # values the platform accepts (in the user's unit), smallest first

    def show(self, field_value: float) -> str:
        """``field_value`` in the user's unit, as they would write it."""
        v = field_value / self.factor
        return f"{v:g}{self.unit}" if self.unit else f"{v:g}"


@dataclass(frozen=True)
class Mapped:
    """One function or service of a file: what to deploy, under which pattern and profile, with what limits."""

    name: str
    agent: str | None  # 'abs/path/file.py:callable'; None: the file does not say (pass one)
    pattern: str
    profile: str
    overrides: Mapping[str, Any]
    env: Mapping[str, str]
    source: Path
    format: str
    adapter: str = "auto"
    taken: tuple[Taken, ...] = ()
    not_mapped: tuple[NotMapped, ...] = ()
    knobs: Mapping[str, Knob] = field(default_factory=dict)

    def deploy_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``harness.deploy`` (besides the agent): pattern, profile, env, overrides."""
        return {"pattern": self.pattern, "profile": self.profile, "adapter": self.adapter, "env": dict(self.env),
                "function_name": self.name, **self.overrides}

    def warnings(self) -> list[str]:
        """The not-mapped keys as lines."""
        return [n.text() for n in self.not_mapped]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON form (for reports)."""
        return {"name": self.name, "agent": self.agent, "pattern": self.pattern, "profile": self.profile,
                "overrides": dict(self.overrides), "env": sorted(self.env), "source": str(self.source),
                "format": self.format, "taken": [t.text() for t in self.taken], "not_mapped": self.warnings()}


@dataclass(frozen=True)
class Source:
    """A parsed deployment file: its format and every function or service it declares."""

    path: Path
    format: str
    functions: tuple[Mapped, ...]
    not_mapped: tuple[NotMapped, ...] = ()  # the file's own keys that no function takes (other resources)

    def warnings(self) -> list[str]:
        """Every not-mapped key of the file and its functions, as lines."""
        return [n.text() for n in self.not_mapped] + [w for m in self.functions for w in m.warnings()]

    @property
    def names(self) -> list[str]:
        """The functions' or services' names, in file order."""
        return [m.name for m in self.functions]

    def get(self, name: str | None = None) -> Mapped:
        """The one function named ``name``; None is fine when the file declares exactly one."""
        if name is None:
            if len(self.functions) == 1:
                return self.functions[0]
            raise ConfigError(
                f"{self.path} declares {len(self.functions)} functions/services: {', '.join(self.names)}; "
                f"pick one with function=NAME (--function NAME on the command line)")
        for m in self.functions:
            if m.name == name:
                return m
        raise ConfigError(f"{self.path} declares no function or service {name!r}"
                          f"{close_matches_hint(name, self.names)}; it declares: {', '.join(self.names)}")
