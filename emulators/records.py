"""Records: one per invocation, the single source of truth; summaries are computed from them.

``Result`` is what a caller gets back from ``invoke``; ``Record`` is the same plus where and when it ran.
Nothing is tallied separately: counts, latency percentiles, cold-start share and cost all come from here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, Literal

__all__ = ["OUTCOMES", "Cost", "Outcome", "Record", "ReplicaPoint", "Result", "Summary", "amended", "headroom",
           "new_record", "percentile", "record_from_json", "summarize"]

Outcome = Literal[
    "ok", "agent_error", "init_error", "timeout", "gateway_timeout", "oom", "cpu_limit", "throttled",
    "payload_too_large", "subrequest_limit", "crash", "llm_rate_limited", "dead_lettered", "lost",
]
OUTCOMES: tuple[str, ...] = Outcome.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Cost:
    """The price of one invocation in USD, split by what it pays for."""

    compute_usd: float = 0.0
    requests_usd: float = 0.0
    llm_usd: float = 0.0

    @property
    def total_usd(self) -> float:
        """Compute + requests + LLM."""
        return self.compute_usd + self.requests_usd + self.llm_usd

    def to_json(self) -> dict[str, float]:
        """JSON form, with the total."""
        # Spelled out rather than asdict(): this runs on every gateway response, and asdict costs ~5 us.
        return {"compute_usd": self.compute_usd, "requests_usd": self.requests_usd, "llm_usd": self.llm_usd,
                "total_usd": self.total_usd}


@dataclass(frozen=True)
class Result:
    """What one invocation came to, as the caller sees it. Durations are platform milliseconds."""

    ok: bool
    outcome: str
    output: Any = None
    error: str | None = None
    latency_ms: float = 0.0
    cold_start: bool = False
    init_ms: float = 0.0
    instance_id: str | None = None
    attempts: int = 1
    cpu_ms: float = 0.0
    peak_memory_mb: float = 0.0
    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: Cost = field(default_factory=Cost)
    invocation_id: str = ""
    trace_id: str = ""


@dataclass(frozen=True)
class Record(Result):
    """A Result plus the deployment, timing and billing facts reports need."""

    pattern: str = ""
    profile: str = ""
    session_id: str | None = None
    trigger: str = "invoke"  # "invoke", or "warmup" for scheduled keep-warm pings
    started_at: float = 0.0  # wall clock, UNIX seconds
    ended_at: float = 0.0
    duration_ms: float = 0.0  # platform ms the agent ran (the billed phase before rounding)
    billed_ms: float = 0.0  # container: the replica ms charged to this call (its duration x its share)
    wall_ms: float = 0.0  # real wall time end to end, for the harness's own overhead figures
    events: tuple[Any, ...] = ()
    llm_errors: int = 0  # LLM calls answered with an error (429, 5xx): retries show up here
    llm_ms: float = 0.0  # platform ms spent waiting on the LLM
    llm_backoff_ms: float = 0.0  # platform ms the LLM told the agent to back off (429 retry-after): time lost
    embedding_tokens: int = 0  # of input_tokens, those sent to POST /v1/embeddings (ctx.memory, or the agent's own)
    memory_ops: int = 0  # requests to the long-term memory store (ctx.memory add / search / delete / count)
    # Headroom (edge): the limits this call ran under, beside what it used (cpu_ms, peak_memory_mb, subrequests).
    cpu_limit_ms: float | None = None
    memory_cap_mb: float | None = None
    subrequests: int = 0  # LLM calls + ctx.http requests
    subrequest_limit: int | None = None
    # Geography (where modelled): latency_ms includes client_rtt_ms; network_ms is the platform time the
    # subrequests spent on round trips to the LLM's region (part of duration_ms).
    region: str | None = None
    caller_region: str | None = None
    client_rtt_ms: float = 0.0
    network_ms: float = 0.0

    def headroom(self) -> dict[str, float]:
        """Share of each limit left unused (0.12 = 12% headroom; negative = over), for the limits that applied."""
        pairs = {"cpu": (self.cpu_ms, self.cpu_limit_ms), "memory": (self.peak_memory_mb, self.memory_cap_mb),
                 "subrequests": (float(self.subrequests), self.subrequest_limit)}
        return {k: headroom(used, allowed) for k, (used, allowed) in pairs.items() if allowed}

    def to_json(self) -> dict[str, Any]:
        """JSON-compatible dict of every field, cost with its total."""
        d = asdict(self)
        d["cost"] = self.cost.to_json()
        d["events"] = list(self.events)
        return d


_RECORD_FIELDS = frozenset(Record.__dataclass_fields__)


def record_from_json(d: Mapping[str, Any]) -> Record:
    """A Record back from its JSON form (``Record.to_json``, a report, a store row); unknown keys are ignored."""
    cost = d.get("cost") or {}
    kw = {k: v for k, v in d.items() if k in _RECORD_FIELDS}
    kw["cost"] = Cost(**{k: float(v) for k, v in cost.items() if k != "total_usd"})
    kw["events"] = tuple(d.get("events") or ())
    return Record(**kw)


def amended(record: Record, **changes: Any) -> Record:
    """``dataclasses.replace(record, **changes)`` for the per-call paths: 2 us where replace takes ~10.

    ``replace`` re-runs the generated ``__init__``, which sets each of the ~40 fields through
    ``object.__setattr__`` (the class is frozen); a Record has no ``__post_init__`` and no slots, so copying
    its ``__dict__`` builds the same value.
    """
    unknown = changes.keys() - _RECORD_FIELDS
    if unknown:
        raise TypeError(f"Record has no field(s) {', '.join(sorted(unknown))}")
    new = object.__new__(type(record))
    state = new.__dict__
    state.update(record.__dict__)
    state.update(changes)
    return new


# Every field but ok and outcome at its default (a frozen Cost and an empty tuple are safe to share).
_RECORD_DEFAULTS: dict[str, Any] = {
    f.name: f.default if f.default is not MISSING else f.default_factory()  # type: ignore[operator]
    for f in fields(Record) if f.default is not MISSING or f.default_factory is not MISSING}


def new_record(*, ok: bool, outcome: str, **values: Any) -> Record:
    """``Record(ok=..., outcome=..., **values)`` for the per-call paths: 1.7 us where the constructor takes ~5.6.

    The frozen dataclass's ``__init__`` sets each of the ~45 fields through ``object.__setattr__``; filling
    the instance's ``__dict__`` from the defaults and ``values`` builds the same value (see ``amended``).
    """
    unknown = values.keys() - _RECORD_FIELDS
    if unknown:
        raise TypeError(f"Record has no field(s) {', '.join(sorted(unknown))}")
    new = object.__new__(Record)
    state = new.__dict__
    state.update(_RECORD_DEFAULTS)
    state["ok"], state["outcome"] = ok, outcome
    state.update(values)
    return new


def headroom(used: float, allowed: float) -> float:
    """The share of ``allowed`` that ``used`` left over: (allowed - used) / allowed."""
    return (allowed - used) / allowed


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by the nearest-rank method; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class ReplicaPoint:
    """One point of a container deployment's replica timeline, for reports and charts.

    Written at every autoscaler sync and every change (a replica starting, ready, crashed, drained).
    """

    t_s: float  # platform seconds since the deployment started
    event: str  # "start", "sync", "scale", "ready", "crash", "oom", "restart", "drain", "stop",
    # "activate" (a request at zero replicas), "demand" (replicas started for pending requests: Cloud Run)
    replicas: int  # replicas the deployment counts: starting, ready, or restarting after a crash
    ready: int  # replicas taking requests
    desired: int  # the replica count the autoscaler asks for
    metric: float | None = None  # at a sync: the autoscaler's metric (per replica, or p95 ms)
    raw_desired: int | None = None  # at a sync: the HPA formula's answer before policies and windows
    outstanding: int = 0  # requests running or waiting, over all replicas
    draining: int = 0  # replicas on their way out: finishing what they hold, still billed


@dataclass(frozen=True)
class Summary:
    """Counts per outcome, latency percentiles, cold starts and cost, computed from records."""

    pattern: str
    profile: str
    calls: int
    outcomes: dict[str, int]
    ok: int
    failures: int
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    cold_starts: int
    cold_start_share: float
    cost_usd: float  # invocations, including warm-up pings
    fixed_cost_usd: float  # not per invocation: provisioned capacity kept warm
    cost_per_1k_usd: float  # (invocation cost + fixed cost) per 1,000 calls
    warmup_pings: int
    input_tokens: int
    output_tokens: int
    llm_calls: int = 0
    llm_cost_usd: float = 0.0
    embedding_tokens: int = 0  # of input_tokens, sent to the embeddings API (ctx.memory or the agent's own)
    memory_ops: int = 0  # requests to ctx.memory's store
    # Compute split by what it paid for: capacity that served calls vs capacity kept up doing nothing
    # (container: idle and starting replicas; serverless: provisioned concurrency).
    busy_cost_usd: float = 0.0
    idle_cost_usd: float = 0.0
    peak_replicas: int = 0  # container: most replicas up at once (draining ones included)
    replica_seconds: float = 0.0  # container: platform seconds of replica uptime billed
    replica_timeline: tuple[ReplicaPoint, ...] = ()
    # The latest an emulated timer (an autoscaler's sync, an idle expiry, a back-off) fired past its platform
    # deadline, in platform seconds: on a scaled clock, how much a host stall stretched the fleet's periods;
    # on the virtual clock about 0. Set by the deployment (its clock), not by summarize().
    clock_late_max_s: float = 0.0
    # Where geography is modelled: per caller region, calls, latency p50/p95 and the mean round trips in it.
    latency_by_region: dict[str, dict[str, float]] = field(default_factory=dict)
    # Where limits are reported (edge): the least headroom any ok call left on each limit (0.12 = 12%).
    min_headroom: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-compatible dict."""
        return asdict(self)


def summarize(records: Iterable[Record], *, pattern: str = "", profile: str = "",
              fixed_cost_usd: float = 0.0, busy_cost_usd: float | None = None,
              idle_cost_usd: float | None = None, peak_replicas: int = 0, replica_seconds: float = 0.0,
              replica_timeline: Sequence[ReplicaPoint] = ()) -> Summary:
    """Summarize records; warm-up pings are billed but not counted as calls or in latency.

    Unless given, busy cost is the records' compute cost and idle cost is the fixed cost. The figures are
    those of ``tally.Tally`` (what a deployment keeps as records arrive): counts and costs exact, latency
    percentiles within 1 %.
    """
    from .tally import Tally  # the tally builds on this module's types

    return Tally().add_all(records).summary(
        pattern=pattern, profile=profile, fixed_cost_usd=fixed_cost_usd, busy_cost_usd=busy_cost_usd,
        idle_cost_usd=idle_cost_usd, peak_replicas=peak_replicas, replica_seconds=replica_seconds,
        replica_timeline=replica_timeline)
