"""Platform profiles: the limits, defaults and prices a pattern emulates, loaded from TOML.

Shipped profiles live beside this module as ``<name>.toml``; every number in them cites its source key in
``platform-facts.md``. A profile is a flat table of fields with fixed names (DESIGN.md, "Profile fields"),
so any field can be overridden per deployment: ``deploy(..., timeout_s=10, memory_mb=256)``. Unknown
fields, wrong types and out-of-range values are a ``ConfigError`` naming the file and the field.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..distributions import Distribution, parse_distribution
from ..errors import ConfigError, close_matches_hint

__all__ = [
    "IMPLEMENTED_PATTERNS",
    "PATTERNS",
    "Profile",
    "check_pattern",
    "default_profile_name",
    "list_profiles",
    "load_profile",
]

PATTERNS = ("serverless", "container", "daemon", "edge")
_DEFAULTS = {"serverless": "aws-lambda"}
IMPLEMENTED_PATTERNS = tuple(_DEFAULTS)  # a pattern is implemented once it has a default profile
_HERE = Path(__file__).parent

# Which fields belong to which pattern (None: every pattern). A field of another pattern is refused so a
# typo'd profile does not silently configure nothing.
_PATTERN_OF: dict[str, str | None] = {}


def _f(default: Any, pattern: str | None = None, **meta: Any) -> Any:
    return field(default=default, metadata={"pattern": pattern, **meta})


@dataclass(frozen=True)
class Profile:
    """One platform's numbers. Durations in platform seconds or ms as the name says; sizes in bytes/MB."""

    name: str = _f("custom")
    pattern: str = _f("serverless")
    description: str = _f("")
    source: str = _f("")  # the file it came from, for error messages
    # all patterns
    timeout_s: float = _f(3.0)
    max_timeout_s: float | None = _f(None)
    memory_mb: float = _f(128.0)
    min_memory_mb: float | None = _f(None)
    max_memory_mb: float | None = _f(None)
    request_limit_bytes: int | None = _f(None)
    response_limit_bytes: int | None = _f(None)
    gateway_timeout_s: float | None = _f(None)
    cold_start_overhead_ms: Distribution = _f(Distribution("constant", (("value", 0.0),)))
    init_timeout_s: float | None = _f(None)
    mb_per_vcpu: float | None = _f(None)
    max_vcpus: float | None = _f(None)
    vcpus: float | None = _f(None)
    init_cpu_full_speed: bool = _f(True)
    seed: int = _f(0)
    # prices (USD); zero where platform-facts.md has none
    price_per_million_requests_usd: float = _f(0.0)
    price_gb_s_usd: float = _f(0.0)
    price_gb_hour_usd: float = _f(0.0)
    price_vcpu_s_usd: float = _f(0.0)
    price_active_cpu_hour_usd: float = _f(0.0)
    billing_granularity_ms: float = _f(1.0)
    bill_init: bool = _f(False)
    # serverless
    max_concurrency: int = _f(1000, "serverless")
    instance_concurrency: int = _f(1, "serverless")
    idle_expiry_s: float = _f(600.0, "serverless")
    provisioned_concurrency: int = _f(0, "serverless")
    provisioned_price_gb_s_usd: float = _f(0.0, "serverless")
    provisioned_billing_granularity_s: float = _f(0.0, "serverless")
    warmup_interval_s: float | None = _f(None, "serverless")
    warmup_concurrency: int = _f(1, "serverless")

    def replace(self, **overrides: Any) -> Profile:
        """A copy with some fields overridden, validated as a profile file is."""
        merged = {f.name: getattr(self, f.name) for f in fields(self)}
        return _build(merged | dict(overrides), where=f"override of profile {self.name!r}", strict=True,
                      keys=set(overrides))

    def cpu_factor(self, *, init: bool = False) -> float:
        """Platform seconds per real CPU second at this memory size (1.0 where CPU is not tied to memory)."""
        from ..clock import cpu_factor

        if init and self.init_cpu_full_speed:
            return 1.0
        return cpu_factor(self.memory_mb, self.mb_per_vcpu, self.max_vcpus)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON form (distributions as tables)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = v.to_json() if isinstance(v, Distribution) else v
        return out


_FIELDS = {f.name: f for f in fields(Profile)}
_PATTERN_OF.update({name: f.metadata["pattern"] for name, f in _FIELDS.items()})
_INTS = {n for n, f in _FIELDS.items() if f.type in ("int", "int | None")}
_BOOLS = {n for n, f in _FIELDS.items() if f.type == "bool"}
_STRS = {"name", "pattern", "description", "source"}
_POSITIVE = {"timeout_s", "memory_mb", "instance_concurrency", "max_concurrency", "billing_granularity_ms",
             "mb_per_vcpu", "max_vcpus", "vcpus", "warmup_interval_s", "init_timeout_s", "warmup_concurrency"}


def _check_value(name: str, value: Any, where: str) -> Any:
    if value is None and "None" in str(_FIELDS[name].type):
        return None
    if name == "cold_start_overhead_ms":
        return parse_distribution(value, f"{where}: field 'cold_start_overhead_ms'")
    if name in _STRS:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: field {name!r} must be a string, got {value!r}")
        return value
    if name in _BOOLS:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: field {name!r} must be true or false, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: field {name!r} must be a number, got {value!r}")
    if name in _INTS:
        if isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{where}: field {name!r} must be a whole number, got {value!r}")
        value = int(value)
    else:
        value = float(value)
    if not math.isfinite(value):
        raise ConfigError(f"{where}: field {name!r} must be a finite number, got {value!r}")
    if value < 0 or (name in _POSITIVE and value == 0):
        kind = "positive" if name in _POSITIVE else "zero or more"
        raise ConfigError(f"{where}: field {name!r} must be {kind}, got {value!r}")
    return value


def _build(data: Mapping[str, Any], *, where: str, strict: bool = True, keys: set[str] | None = None) -> Profile:
    pattern = data.get("pattern", "serverless")
    if pattern not in PATTERNS:
        raise ConfigError(
            f"{where}: unknown pattern {pattern!r}{close_matches_hint(str(pattern), PATTERNS)}; "
            f"expected one of: {', '.join(PATTERNS)}"
        )
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name not in _FIELDS:
            raise ConfigError(
                f"{where}: unknown field {name!r}{close_matches_hint(name, _FIELDS)}; "
                f"see the profile fields in the README"
            )
        owner = _PATTERN_OF[name]
        if owner is not None and owner != pattern and (keys is None or name in keys):
            raise ConfigError(f"{where}: field {name!r} belongs to the {owner} pattern, not {pattern}")
        values[name] = _check_value(name, value, where)
    profile = Profile(**values)
    _check_ranges(profile, where)
    return profile


def _check_ranges(p: Profile, where: str) -> None:
    if p.max_timeout_s is not None and p.timeout_s > p.max_timeout_s:
        raise ConfigError(
            f"{where}: timeout_s={p.timeout_s:g} exceeds the platform maximum of {p.max_timeout_s:g} s "
            f"for {p.name}; lower it, or set max_timeout_s to model another platform"
        )
    if p.min_memory_mb is not None and p.memory_mb < p.min_memory_mb:
        raise ConfigError(f"{where}: memory_mb={p.memory_mb:g} is below {p.name}'s minimum of {p.min_memory_mb:g}")
    if p.max_memory_mb is not None and p.memory_mb > p.max_memory_mb:
        raise ConfigError(f"{where}: memory_mb={p.memory_mb:g} is above {p.name}'s maximum of {p.max_memory_mb:g}")


def list_profiles() -> list[str]:
    """Names of the shipped profiles."""
    return sorted(p.stem for p in _HERE.glob("*.toml"))


def check_pattern(pattern: str) -> None:
    """Raise ConfigError unless ``pattern`` is a known pattern that this version implements."""
    if pattern not in PATTERNS:
        raise ConfigError(
            f"unknown pattern {pattern!r}{close_matches_hint(pattern, PATTERNS)}; "
            f"expected one of: {', '.join(PATTERNS)}"
        )
    if pattern not in IMPLEMENTED_PATTERNS:
        raise ConfigError(
            f"the {pattern} pattern is not implemented yet in this version; "
            f"available: {', '.join(IMPLEMENTED_PATTERNS)}"
        )


def default_profile_name(pattern: str) -> str:
    """The shipped profile a pattern uses when none is named."""
    check_pattern(pattern)
    return _DEFAULTS[pattern]


def load_profile(spec: str | Path | Profile | None, pattern: str = "serverless") -> Profile:
    """Load a shipped profile by name, a ``.toml`` file by path, or pass a Profile through."""
    if isinstance(spec, Profile):
        return spec
    if spec is None:
        spec = default_profile_name(pattern)
    path = Path(spec)
    if path.suffix != ".toml":
        shipped = _HERE / f"{spec}.toml"
        if not shipped.is_file():
            names = list_profiles()
            raise ConfigError(
                f"unknown profile {str(spec)!r}{close_matches_hint(str(spec), names)}; shipped profiles: "
                f"{', '.join(names)}; or pass a path to a .toml file"
            )
        path = shipped
    if not path.is_file():
        raise ConfigError(f"profile file {str(path)!r} does not exist; check the path")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"profile file {str(path)!r} is not valid TOML: {exc}") from exc
    data.setdefault("name", path.stem)
    data["source"] = str(path)
    data.setdefault("pattern", pattern)
    if data["pattern"] != pattern:
        raise ConfigError(
            f"profile {str(path)!r} is for the {data['pattern']} pattern, not {pattern}; "
            f"pick a {pattern} profile or change the pattern"
        )
    return _build(data, where=f"profile {str(path)!r}")
