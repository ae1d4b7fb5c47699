"""Seeded duration distributions for profile fields such as ``cold_start_overhead_ms``.

A profile writes a distribution as a number (constant) or an inline table:
``{ dist = "uniform", low = 73.9, high = 102.4 }``, ``{ dist = "normal", mean = 90, sd = 10 }`` or
``{ dist = "lognormal", median = 90, sigma = 0.3 }``. Samples are never negative.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

__all__ = ["Distribution", "parse_distribution"]

_PARAMS: dict[str, tuple[str, ...]] = {
    "constant": ("value",),
    "uniform": ("low", "high"),
    "normal": ("mean", "sd"),
    "lognormal": ("median", "sigma"),
}


@dataclass(frozen=True)
class Distribution:
    """A named distribution with its parameters; ``sample`` draws from a caller-owned RNG."""

    dist: str
    params: tuple[tuple[str, float], ...]

    def param(self, name: str) -> float:
        """The value of one parameter."""
        return dict(self.params)[name]

    def sample(self, rng: random.Random) -> float:
        """One draw, clamped at zero."""
        p = dict(self.params)
        if self.dist == "constant":
            value = p["value"]
        elif self.dist == "uniform":
            value = rng.uniform(p["low"], p["high"])
        elif self.dist == "normal":
            value = rng.gauss(p["mean"], p["sd"])
        else:
            value = p["median"] * math.exp(rng.gauss(0.0, p["sigma"]))
        return max(0.0, value)

    def mean(self) -> float:
        """The distribution's mean, for projections and docs."""
        p = dict(self.params)
        if self.dist == "constant":
            return p["value"]
        if self.dist == "uniform":
            return (p["low"] + p["high"]) / 2
        if self.dist == "normal":
            return p["mean"]
        return p["median"] * math.exp(p["sigma"] ** 2 / 2)

    def to_json(self) -> dict[str, Any]:
        """The inline-table form, as a profile file writes it."""
        return {"dist": self.dist, **dict(self.params)}


def parse_distribution(value: Any, where: str) -> Distribution:
    """Build a Distribution from a number or a mapping; ``where`` names the field for error messages."""
    if isinstance(value, Distribution):
        return value
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a number or a distribution table, got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ConfigError(f"{where}: must be a finite number, got {value!r}")
        if value < 0:
            raise ConfigError(f"{where}: must not be negative, got {value!r}")
        return Distribution("constant", (("value", float(value)),))
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{where}: expected a number or a table like {{ dist = \"uniform\", low = 50, high = 120 }}, "
            f"got {value!r}"
        )
    kind = value.get("dist")
    if not isinstance(kind, str) or kind not in _PARAMS:
        raise ConfigError(f"{where}: unknown dist {kind!r}; expected one of: {', '.join(_PARAMS)}")
    expected = _PARAMS[kind]
    extra = sorted(set(value) - {"dist", *expected})
    missing = [k for k in expected if k not in value]
    if extra or missing:
        raise ConfigError(
            f"{where}: a {kind} distribution takes exactly {', '.join(expected)}"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unexpected {', '.join(extra)}" if extra else "")
        )
    params: list[tuple[str, float]] = []
    for k in expected:
        v = value[k]
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
            raise ConfigError(f"{where}: {k} must be a non-negative number, got {v!r}")
        params.append((k, float(v)))
    if kind == "uniform" and params[0][1] > params[1][1]:
        raise ConfigError(f"{where}: uniform low ({params[0][1]}) is above high ({params[1][1]})")
    return Distribution(kind, tuple(params))
