"""Geography: where calls come from, where instances run, where the LLM is, and the round trips between.

A deployment's geography comes from three profile fields: ``caller_region`` (where calls come from; a
comma-separated list rotates calls among regions), ``region`` (where instances run; on the edge, by
default the region nearest each caller) and ``llm_region`` (where the LLM and the other origins of
subrequests run). Round-trip times come from ``profiles/regions/rtt.toml``: estimates, with their sources
in that file. What the caller sees: ``latency_ms`` = the client's round trip to the instance's region +
the platform latency, in which each LLM call and ``ctx.http`` request already waited one round trip from
the instance's region to the LLM's (an emulated wait on the platform clock, so it counts against limits).

``RegionalServerless`` is the serverless pattern in one (central) region with the same accounting, so the
same agent can be compared side by side with the edge (``region_comparison``).
"""

from __future__ import annotations

import functools
import itertools
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError, close_matches_hint
from .profiles import Profile
from .records import Record, Summary, amended
from .serverless import Serverless

__all__ = ["CENTRAL_REGION", "Geography", "RegionalServerless", "RttTable", "geography_for", "has_geography",
           "load_rtt_table", "parse_rtt_table", "region_comparison"]

_TABLE = Path(__file__).parent / "profiles" / "regions" / "rtt.toml"
# The harness's choice, not a platform fact: where a function, a caller or the LLM is when a profile that
# models geography leaves it unsaid (us-east-1 is the region AWS's own examples default to).
CENTRAL_REGION = "us-east"


@dataclass(frozen=True)
class RttTable:
    """Round-trip milliseconds between named regions (symmetric), and within one region."""

    same_region_ms: float
    regions: dict[str, str]  # name -> what it stands for
    pairs: dict[frozenset[str], float]
    source: str = ""

    def rtt_ms(self, a: str, b: str) -> float:
        """Round trip between regions ``a`` and ``b`` in platform ms."""
        if a == b:
            return self.same_region_ms
        self.check(a, "region")
        self.check(b, "region")
        try:
            return self.pairs[frozenset((a, b))]
        except KeyError:
            raise ConfigError(f"the round-trip table {self.source} has no figure between {a!r} and {b!r}; "
                              f"add \"{a}|{b}\" to its [rtt_ms]") from None

    def check(self, name: str, field: str) -> None:
        """Raise ConfigError unless ``name`` is a region of the table."""
        if name not in self.regions:
            raise ConfigError(f"{field}: unknown region {name!r}{close_matches_hint(name, self.regions)}; "
                              f"known regions: {', '.join(self.regions)}")


def parse_rtt_table(text: str, source: str = "<string>") -> RttTable:
    """An RttTable from the TOML text of a table file (``same_region_ms``, ``[regions]``, ``[rtt_ms]``)."""
    data = tomllib.loads(text)
    regions = {str(k): str(v) for k, v in data.get("regions", {}).items()}
    pairs: dict[frozenset[str], float] = {}
    for key, ms in data.get("rtt_ms", {}).items():
        a, sep, b = str(key).partition("|")
        if not sep or a not in regions or b not in regions:
            raise ConfigError(f"{source}: [rtt_ms] key {key!r} must be \"a|b\" with a and b listed in [regions]")
        pairs[frozenset((a, b))] = float(ms)
    return RttTable(float(data.get("same_region_ms", 0.0)), regions, pairs, source)


@functools.cache
def load_rtt_table(path: str | None = None) -> RttTable:
    """The shipped round-trip table, or the one at ``path``."""
    file = Path(path) if path else _TABLE
    return parse_rtt_table(file.read_text(encoding="utf-8"), str(file))


def has_geography(profile: Profile) -> bool:
    """Whether the profile places anything (serverless models geography only when asked)."""
    return any(v is not None for v in (profile.region, profile.caller_region, profile.llm_region))


class Geography:
    """One deployment's regions and round trips."""

    def __init__(self, profile: Profile, table: RttTable | None = None, *, follow_caller: bool) -> None:
        self.table = table or load_rtt_table()
        self.callers = [c.strip() for c in (profile.caller_region or CENTRAL_REGION).split(",") if c.strip()]
        if not self.callers:
            raise ConfigError(f"caller_region {profile.caller_region!r} names no region")
        # The edge runs near each caller unless pinned; a central function runs in one region.
        self.region = profile.region if profile.region is not None or follow_caller else CENTRAL_REGION
        self.llm_region = profile.llm_region or CENTRAL_REGION
        for name in self.callers:
            self.table.check(name, "caller_region")
        if self.region is not None:
            self.table.check(self.region, "region")
        self.table.check(self.llm_region, "llm_region")
        self._rotation: Iterator[str] = itertools.cycle(self.callers)

    def next_caller(self) -> str:
        """The region the next call comes from (calls rotate through ``caller_region``)."""
        return next(self._rotation)

    def instance_region(self, caller: str) -> str:
        """Where a call from ``caller`` runs: the pinned region, else (edge) the caller's own."""
        return self.region if self.region is not None else caller

    def llm_rtt_s(self, region: str | None) -> float:
        """Platform seconds of one round trip from ``region`` to the LLM's region."""
        return self.table.rtt_ms(region, self.llm_region) / 1000.0 if region is not None else 0.0

    def apply(self, record: Record, caller: str, region: str, subrequests: int | None = None) -> Record:
        """The record as the caller saw it: plus the client's round trip, with where it ran and why."""
        if record.instance_id is None and record.duration_ms == 0 and record.outcome in ("throttled",
                                                                                         "payload_too_large"):
            return amended(record, caller_region=caller, region=region)
        client = self.table.rtt_ms(caller, region)
        trips = record.llm_calls if subrequests is None else subrequests
        return amended(
            record, latency_ms=record.latency_ms + client, client_rtt_ms=client, caller_region=caller,
            region=region, network_ms=trips * self.llm_rtt_s(region) * 1000.0)


class RegionalServerless(Serverless):
    """The serverless pattern in one region: callers pay their round trip to it, LLM calls theirs to the LLM."""

    def __init__(self, *args: object, geography: Geography, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.geo = geography

    async def start(self) -> None:
        """Start as serverless does, then put the round trip to the LLM's region on every LLM call."""
        await super().start()
        if self.pool.llm is not None:
            rtt = self.geo.llm_rtt_s(self.geo.region)
            self.pool.llm.extra_latency = lambda caller, invocation: rtt

    def _add(self, record: Record) -> Record:
        region = self.geo.region or CENTRAL_REGION
        return super()._add(self.geo.apply(record, self.geo.next_caller(), region))


def region_comparison(summaries: Sequence[Summary]) -> list[dict[str, object]]:
    """One row per (caller region, deployment): latency and why (client round trip, LLM round trips).

    ``why`` reads e.g. "3 ms caller-to-isolate round trip + 850 ms of round trips to the LLM's region (4.0 LLM
    calls per request)".
    """
    rows: list[dict[str, object]] = []
    for s in summaries:
        for caller, r in s.latency_by_region.items():
            where = "isolate" if s.pattern == "edge" else "function"
            why = (f"{r['client_rtt_ms']:.0f} ms caller-to-{where} round trip + {r['network_ms']:.0f} ms of round "
                   f"trips to the LLM's region ({r['llm_calls']:.1f} LLM calls per request)")
            rows.append({"caller_region": caller, "pattern": s.pattern, "profile": s.profile,
                         "p50_ms": r["p50_ms"], "p95_ms": r["p95_ms"], "client_rtt_ms": r["client_rtt_ms"],
                         "network_ms": r["network_ms"], "why": why})
    rows.sort(key=lambda row: (str(row["caller_region"]), float(row["p50_ms"])))  # type: ignore[arg-type]
    return rows


def geography_for(pattern: str, profile: Profile) -> Geography | None:
    """The geography a deployment models: always on the edge; for serverless only when the profile places it."""
    if pattern == "edge":
        return Geography(profile, follow_caller=True)
    if pattern == "serverless" and has_geography(profile):
        return Geography(profile, follow_caller=False)
    return None
