"""Traffic, budget and LLM-tier specs for ``harness readiness``: parsed once into frozen values.

Grammar (bad input is a ``ConfigError`` quoting it)::

    TRAFFIC := RATE ["," SHAPE]          e.g. "1000/day", "50/min,bursty", "2M/month,bursty:20"
    RATE    := NUMBER[k|M] "/" (s|min|hour|day|month)
    SHAPE   := steady | bursty[:PEAK]    bursty: each hour's tasks arrive within 1/PEAK of the hour (PEAK 10)
    BUDGET  := ["$"]NUMBER ["/month"]    USD per month, compute + LLM
    TIER    := openai-tier1 | anthropic-tier1 .. anthropic-tier4 | rpm=N[,tpm=N]

A month is 730 hours, the figure the shipped worker-hour price is computed with ($7 / 730 h, RD1).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from emulators.errors import ConfigError

__all__ = ["HOURS_PER_MONTH", "LLMTier", "TIERS", "TrafficSpec", "parse_budget", "parse_tier", "parse_traffic"]

HOURS_PER_MONTH = 730.0
_PER_S = {"s": 1.0, "sec": 1.0, "min": 1 / 60, "hour": 1 / 3600, "h": 1 / 3600, "day": 1 / 86400,
          "month": 1 / (HOURS_PER_MONTH * 3600)}
_SUFFIX = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6}
_RATE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kKM]?)\s*/\s*([a-z]+)\s*$")
_GRAMMAR = ("expected RATE[,SHAPE] like '1000/day', '50/min,bursty' or '2M/month,bursty:20' "
            "(units s, min, hour, day, month; shapes steady, bursty[:PEAK])")


@dataclass(frozen=True)
class TrafficSpec:
    """Expected traffic: an average rate and a shape (steady, or bursty with a peak-to-average factor)."""

    per_s: float = 1000 / 86400
    shape: str = "steady"  # steady | bursty
    peak_factor: float = 1.0  # peak rate / average rate (bursty: each hour's tasks come in 1/peak of it)
    text: str = "1000/day"

    @property
    def per_day(self) -> float:
        """Average tasks per day."""
        return self.per_s * 86400

    @property
    def per_month(self) -> float:
        """Average tasks per (730-hour) month."""
        return self.per_s * HOURS_PER_MONTH * 3600

    @property
    def peak_per_s(self) -> float:
        """Tasks per second at the peak of the shape."""
        return self.per_s * self.peak_factor

    def with_rate(self, per_day: float) -> TrafficSpec:
        """The same shape at another volume (for projections)."""
        return TrafficSpec(per_day / 86400, self.shape, self.peak_factor, f"{per_day:g}/day,{self.shape}")


def parse_traffic(text: str | None) -> TrafficSpec:
    """A TrafficSpec from ``--traffic`` text (None: 1,000 tasks a day, steady)."""
    if text is None:
        return TrafficSpec()
    rate_text, _, shape_text = text.partition(",")
    m = _RATE.match(rate_text)
    if m is None or m.group(3) not in _PER_S:
        raise ConfigError(f"cannot read traffic {text!r}: {_GRAMMAR}")
    per_s = float(m.group(1)) * _SUFFIX[m.group(2)] * _PER_S[m.group(3)]
    if per_s <= 0 or not math.isfinite(per_s):
        raise ConfigError(f"traffic {text!r} must be a positive rate: {_GRAMMAR}")
    shape_text = shape_text.strip() or "steady"
    name, _, peak = shape_text.partition(":")
    if name == "steady" and not peak:
        return TrafficSpec(per_s, "steady", 1.0, text)
    if name == "bursty":
        try:
            factor = float(peak) if peak else 10.0
        except ValueError:
            raise ConfigError(f"cannot read the burst peak {peak!r} in {text!r}: {_GRAMMAR}") from None
        if not 1.0 <= factor <= 3600.0:
            raise ConfigError(f"the burst peak in {text!r} must be between 1 and 3600 (x the average rate)")
        return TrafficSpec(per_s, "bursty", factor, text)
    raise ConfigError(f"unknown traffic shape {shape_text!r} in {text!r}: {_GRAMMAR}")


def parse_budget(text: str | float | None) -> float | None:
    """USD per month from ``--budget`` ('$200', '200/month', 200); None when not given."""
    if text is None:
        return None
    if isinstance(text, int | float):
        value = float(text)
    else:
        cleaned = text.strip().removeprefix("$").removesuffix("/month").removesuffix("/mo").strip()
        try:
            value = float(cleaned)
        except ValueError:
            raise ConfigError(f"cannot read budget {text!r}; expected USD per month like '$200' "
                              f"or '200/month'") from None
    if value < 0 or not math.isfinite(value):
        raise ConfigError(f"budget must be zero or more USD per month, got {text!r}")
    return value


@dataclass(frozen=True)
class LLMTier:
    """An LLM provider's rate limits for one key: requests and tokens per minute (None: not limited)."""

    name: str
    rpm: int | None
    tpm: int | None
    source: str = ""


# The simulator has one token bucket per key, so a tier's tokens-per-minute is the provider's input (or
# total) figure; Anthropic's separate output limits (OTPM 8k / 90k / 160k / 400k, L21) are not checked.
TIERS = {
    # gpt-4o-mini at Tier 1: 500 RPM, 200,000 TPM (also 10,000 RPD, not modelled); gpt-4o is 500 / 30,000 (L19).
    "openai-tier1": LLMTier("openai-tier1", 500, 200_000, "L19 (gpt-4o-mini, Tier 1)"),
    # Claude Sonnet 4.x, RPM / input TPM per tier (L21; Tier 1 as in L3).
    "anthropic-tier1": LLMTier("anthropic-tier1", 50, 30_000, "L21, L3 (Claude Sonnet 4.x, Tier 1)"),
    "anthropic-tier2": LLMTier("anthropic-tier2", 1_000, 450_000, "L21 (Claude Sonnet 4.x, Tier 2)"),
    "anthropic-tier3": LLMTier("anthropic-tier3", 2_000, 800_000, "L21 (Claude Sonnet 4.x, Tier 3)"),
    "anthropic-tier4": LLMTier("anthropic-tier4", 4_000, 2_000_000, "L21 (Claude Sonnet 4.x, Tier 4)"),
}


def parse_tier(text: str | None) -> LLMTier:
    """A named tier (TIERS) or 'rpm=N,tpm=N' (None: anthropic-tier1)."""
    if text is None:
        return TIERS["anthropic-tier1"]
    if text in TIERS:
        return TIERS[text]
    values: dict[str, int] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in ("rpm", "tpm") or not value.strip().isdigit() or int(value) <= 0:
            raise ConfigError(f"cannot read LLM tier {text!r}; expected one of: {', '.join(TIERS)}, "
                              f"or limits like 'rpm=500,tpm=200000'")
        values[key] = int(value)
    return LLMTier(text, values.get("rpm"), values.get("tpm"), "given")
