"""Distributions: parsing from numbers and tables, seeded sampling, and clear errors for bad tables."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from emulators.distributions import Distribution, parse_distribution
from emulators.errors import ConfigError

TABLES = [
    {"dist": "constant", "value": 42},
    {"dist": "uniform", "low": 73.9, "high": 102.4},
    {"dist": "normal", "mean": 90, "sd": 10},
    {"dist": "lognormal", "median": 90, "sigma": 0.3},
]


def test_number_is_a_constant() -> None:
    """A bare number parses as a constant distribution whose samples are that number."""
    d = parse_distribution(50, "f")
    assert d == Distribution("constant", (("value", 50.0),))
    assert d.sample(random.Random(0)) == 50.0
    assert d.mean() == 50.0


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t["dist"])
def test_tables_parse_and_round_trip(table: dict[str, Any]) -> None:
    """Each kind parses from its table and to_json gives the same table back (as floats)."""
    d = parse_distribution(table, "f")
    assert d.dist == table["dist"]
    assert d.to_json() == {k: (v if k == "dist" else float(v)) for k, v in table.items()}
    assert parse_distribution(d.to_json(), "f") == d


def test_distribution_passes_through() -> None:
    """An already-built Distribution is returned as is."""
    d = Distribution("constant", (("value", 1.0),))
    assert parse_distribution(d, "f") is d


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t["dist"])
def test_sampling_is_deterministic_for_a_seed(table: dict[str, Any]) -> None:
    """Two RNGs with the same seed draw the same samples; another seed draws others (except constant)."""
    d = parse_distribution(table, "f")
    a = [d.sample(random.Random(7)) for _ in range(3)]
    rng1, rng2 = random.Random(7), random.Random(7)
    assert [d.sample(rng1) for _ in range(20)] == [d.sample(rng2) for _ in range(20)]
    assert a[0] == a[1] == a[2]
    if table["dist"] != "constant":
        assert d.sample(random.Random(7)) != d.sample(random.Random(8))


def test_uniform_samples_stay_in_range() -> None:
    """Uniform samples fall within [low, high] and average near the midpoint."""
    d = parse_distribution({"dist": "uniform", "low": 73.9, "high": 102.4}, "f")
    rng = random.Random(1)
    samples = [d.sample(rng) for _ in range(2000)]
    assert all(73.9 <= s <= 102.4 for s in samples)
    assert sum(samples) / len(samples) == pytest.approx(d.mean(), rel=0.02)
    assert d.mean() == pytest.approx((73.9 + 102.4) / 2)


def test_normal_and_lognormal_means() -> None:
    """mean() is the normal's mean and the lognormal's median * exp(sigma^2 / 2)."""
    assert parse_distribution({"dist": "normal", "mean": 90, "sd": 10}, "f").mean() == 90.0
    d = parse_distribution({"dist": "lognormal", "median": 90, "sigma": 0.3}, "f")
    assert d.mean() == pytest.approx(90 * math.exp(0.045))


@pytest.mark.parametrize(
    "table",
    [{"dist": "normal", "mean": 0, "sd": 50}, {"dist": "lognormal", "median": 1, "sigma": 3},
     {"dist": "uniform", "low": 0, "high": 0.001}],
    ids=["normal", "lognormal", "uniform"],
)
def test_samples_are_never_negative(table: dict[str, Any]) -> None:
    """Samples are clamped at zero, even for a normal centred on zero."""
    d = parse_distribution(table, "f")
    rng = random.Random(3)
    assert min(d.sample(rng) for _ in range(1000)) >= 0.0


def test_param_reads_one_parameter() -> None:
    """param(name) returns one parameter's value."""
    d = parse_distribution({"dist": "uniform", "low": 1, "high": 2}, "f")
    assert (d.param("low"), d.param("high")) == (1.0, 2.0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"dist": "gamma", "k": 2}, r"unknown dist 'gamma'; expected one of: constant, uniform, normal, lognormal"),
        ({"low": 1, "high": 2}, r"unknown dist None"),
        ({"dist": "uniform", "low": 1}, r"takes exactly low, high; missing high"),
        ({"dist": "constant", "value": 1, "sd": 2}, r"takes exactly value; unexpected sd"),
        ({"dist": "normal", "mean": 1, "sd": 2, "x": 1, "y": 2}, r"unexpected x, y"),
        ({"dist": "uniform", "low": 5, "high": 2}, r"uniform low \(5.0\) is above high \(2.0\)"),
        ({"dist": "normal", "mean": -1, "sd": 2}, r"mean must be a non-negative number, got -1"),
        ({"dist": "normal", "mean": "90", "sd": 2}, r"mean must be a non-negative number, got '90'"),
        ({"dist": "constant", "value": True}, r"value must be a non-negative number, got True"),
        (-5, r"must not be negative, got -5"),
        (True, r"expected a number or a distribution table, got True"),
        ("fast", r"expected a number or a table like"),
    ],
    ids=["unknown", "no-dist", "missing", "extra", "extras", "low>high", "negative", "string-param",
         "bool-param", "negative-number", "bool", "string"],
)
def test_bad_values_raise_config_error_naming_the_field(value: Any, expected: str) -> None:
    """A bad distribution is a ConfigError that names the field and says what is wrong."""
    with pytest.raises(ConfigError, match=expected) as exc:
        parse_distribution(value, "profile 'x.toml': field 'cold_start_overhead_ms'")
    assert str(exc.value).startswith("profile 'x.toml': field 'cold_start_overhead_ms': ")


def test_unhashable_dist_name_is_config_error() -> None:
    """A dist written as a list (TOML `dist = ["uniform"]`) is a ConfigError, not a TypeError."""
    with pytest.raises(ConfigError, match="unknown dist"):
        parse_distribution({"dist": ["uniform"], "low": 1, "high": 2}, "f")


def test_nan_parameter_is_config_error() -> None:
    """A NaN parameter (TOML allows `nan`) is refused rather than silently sampling as zero."""
    with pytest.raises(ConfigError, match="low"):
        parse_distribution({"dist": "uniform", "low": float("nan"), "high": 2}, "f")
