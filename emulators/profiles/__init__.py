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
    "profile_pattern",
]

PATTERNS = ("serverless", "container", "daemon", "edge")
_DEFAULTS = {"serverless": "aws-lambda", "container": "k8s-hpa", "daemon": "daemon-local",
             "edge": "cloudflare-workers-free"}
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
    cpu_billing_granularity_ms: float | None = _f(None)  # CPU billed in units of this many ms (Vercel edge: 50)
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
    # container: replicas, the load balancer and the autoscaler (Kubernetes HPA semantics)
    min_replicas: int = _f(1, "container")
    max_replicas: int = _f(10, "container")
    replica_concurrency: int = _f(80, "container")  # requests one replica serves at once
    replica_queue_limit: int = _f(100, "container")  # requests waiting at one replica; beyond: throttled
    load_balancer: str = _f("round_robin", "container")  # round_robin | least_outstanding
    sticky_sessions: bool = _f(False, "container")
    autoscale_metric: str = _f("concurrency", "container")  # concurrency | queue | p95_latency
    target_concurrency: float = _f(40.0, "container")  # outstanding requests per replica
    target_queue_depth: float = _f(10.0, "container")  # waiting requests per replica
    target_latency_p95_ms: float = _f(1000.0, "container")
    autoscale_tolerance: float = _f(0.1, "container")
    autoscale_sync_period_s: float = _f(15.0, "container")
    scale_up_percent: float = _f(100.0, "container")
    scale_up_pods: int = _f(4, "container")
    scale_up_period_s: float = _f(15.0, "container")
    scale_up_stabilization_s: float = _f(0.0, "container")  # HPA behavior.scaleUp.stabilizationWindowSeconds
    scale_down_stabilization_s: float = _f(300.0, "container")
    scale_down_percent: float = _f(100.0, "container")  # HPA default scale-down policy: 100 % ...
    scale_down_period_s: float = _f(15.0, "container")  # ... per 15 s
    scale_to_zero_idle_s: float = _f(300.0, "container")  # with min_replicas = 0: idle this long -> 0
    # The front door (emulators/frontdoor.py): "pod" binds a request to a replica at arrival (Kubernetes,
    # kube-proxy / ingress-nginx); "pending_queue" keeps requests no replica can take now in one queue per
    # deployment, served by whichever replica frees a slot first, for up to
    # max(pending_startup_factor x the average replica start, pending_timeout_s), then 429 (Cloud Run).
    front_door: str = _f("pod", "container")
    pending_timeout_s: float = _f(10.0, "container")
    pending_startup_factor: float = _f(3.5, "container")
    autoscale_window_s: float = _f(0.0, "container")  # average the metric over this window; 0: the sync's sample
    target_concurrency_percent: float | None = _f(None, "container")  # set: target = this % of replica_concurrency
    target_cpu_percent: float | None = _f(None, "container")  # set (with a window): also scale on CPU use of vcpus
    restart_backoff_s: float = _f(10.0, "container")  # CrashLoopBackOff: first delay, doubled per crash
    restart_backoff_max_s: float = _f(300.0, "container")
    price_node_hour_usd: float = _f(0.0, "container")  # a replica pays its share of a node
    # instance: a replica is billed for its whole up time; request: only while it serves (and starts)
    replica_billing: str = _f("instance", "container")
    min_billed_s: float = _f(0.0, "container")  # a replica is billed at least this long (Fargate: 60 s)
    node_vcpus: float | None = _f(None, "container")
    node_memory_mb: float | None = _f(None, "container")
    # daemon: a queue, supervised workers (emulators/daemon.py, supervisor.py)
    workers: int = _f(2, "daemon")
    queue: str | None = _f(None, "daemon")  # broker URL; None: the in-memory broker
    state: str | None = _f(None)  # state store URL (deploy(state=...) wins); None: SQLite in the run dir
    max_receives: int = _f(5, "daemon")  # deliveries before the dead-letter queue
    visibility_timeout_s: float = _f(30.0, "daemon")
    task_deadline_s: float | None = _f(None, "daemon")  # None: no per-task limit, as daemons usually run
    # "sqs": a Lambda handler behind an SQS event source gets batches of up to batch_size messages as one
    # {"Records": [...]} event; report_batch_item_failures honours {"batchItemFailures": [...]} (sqsbatch.py)
    event_source: str | None = _f(None, "daemon")
    batch_size: int = _f(1, "daemon")
    report_batch_item_failures: bool = _f(False, "daemon")
    retry_backoff_s: float = _f(1.0, "daemon")  # first retry's back-off cap, doubled per attempt, full jitter
    retry_backoff_max_s: float = _f(60.0, "daemon")
    restart: str = _f("on-failure", "daemon")  # systemd Restart=: on-failure | always | no
    restart_sec: float = _f(0.1, "daemon")  # systemd RestartSec= default 100 ms (systemd.service(5))
    start_limit_burst: int = _f(5, "daemon")  # systemd StartLimitBurst= default 5 (systemd.unit(5))
    start_limit_interval_s: float = _f(10.0, "daemon")  # StartLimitIntervalSec= default 10 s; 0 disables
    shutdown_grace_s: float = _f(30.0, "daemon")  # finish running tasks this long on close, then release them
    min_workers: int = _f(1, "daemon")
    max_workers: int = _f(10, "daemon")
    scale_target: float | None = _f(None, "daemon")  # KEDA-style: queued tasks per worker; None: fixed workers
    scale_interval_s: float = _f(30.0, "daemon")  # how often the queue depth is polled for scaling
    price_worker_hour_usd: float = _f(0.0, "daemon")  # one worker (VM or container) for an hour
    price_per_million_queue_requests_usd: float = _f(0.0, "daemon")
    queue_request_chunk_bytes: int | None = _f(None, "daemon")  # a send bills one request per chunk (SQS: 64 KB)
    # edge isolates (emulators/edge.py); None: the platform sets no such limit
    cpu_limit_ms: float | None = _f(None, "edge")  # CPU time per request, measured on the process
    subrequest_limit: int | None = _f(None, "edge")  # LLM calls + ctx.http requests per request
    startup_cpu_ms: float | None = _f(None, "edge")  # CPU the global scope (the import) may use
    code_size_limit_bytes: int | None = _f(None, "edge")  # the agent module + what it imports from the project
    code_size_compressed: bool = _f(False, "edge")  # the limit applies to the gzip size (Vercel) or the raw size
    price_per_million_cpu_ms_usd: float = _f(0.0)
    # Geography (emulators/edge_geo.py), for every pattern so a central serverless function can be compared
    # with the edge: names from profiles/regions/rtt.toml; None = not modelled (edge: the caller's region).
    region: str | None = _f(None)  # where the instances run (edge default: nearest the caller)
    caller_region: str | None = _f(None)  # where calls come from; "a,b,c" rotates calls among regions
    llm_region: str | None = _f(None)  # where the LLM (and other origins of subrequests) run

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
_STRS = {"name", "pattern", "description", "source", "load_balancer", "autoscale_metric", "front_door", "region",
         "caller_region", "llm_region", "queue", "state", "restart", "replica_billing", "event_source"}
_CHOICES = {
    "restart": ("on-failure", "always", "no"),
    "load_balancer": ("round_robin", "least_outstanding"),
    "autoscale_metric": ("concurrency", "queue", "p95_latency"),
    "front_door": ("pod", "pending_queue"),
    "replica_billing": ("instance", "request"),
    "event_source": ("sqs",),
}
_POSITIVE = {"timeout_s", "memory_mb", "instance_concurrency", "max_concurrency", "billing_granularity_ms",
             "mb_per_vcpu", "max_vcpus", "vcpus", "warmup_interval_s", "init_timeout_s", "warmup_concurrency",
             "max_replicas", "replica_concurrency", "target_concurrency", "target_queue_depth",
             "target_latency_p95_ms", "autoscale_sync_period_s", "scale_up_period_s", "scale_down_period_s",
             "node_vcpus", "pending_timeout_s", "target_concurrency_percent", "target_cpu_percent", "node_memory_mb",
             "restart_backoff_max_s", "cpu_limit_ms", "subrequest_limit", "startup_cpu_ms",
             "code_size_limit_bytes", "max_receives", "visibility_timeout_s", "task_deadline_s",
             "max_workers", "scale_target", "scale_interval_s", "cpu_billing_granularity_ms",
             "queue_request_chunk_bytes", "batch_size"}


def _check_value(name: str, value: Any, where: str) -> Any:
    if value is None and "None" in str(_FIELDS[name].type):
        return None
    if name == "cold_start_overhead_ms":
        return parse_distribution(value, f"{where}: field 'cold_start_overhead_ms'")
    if name in _STRS:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: field {name!r} must be a string, got {value!r}")
        choices = _CHOICES.get(name)
        if choices is not None and value not in choices:
            raise ConfigError(
                f"{where}: field {name!r} must be one of: {', '.join(choices)}; got {value!r}"
                f"{close_matches_hint(value, choices)}"
            )
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
    if p.min_replicas > p.max_replicas:
        raise ConfigError(
            f"{where}: min_replicas={p.min_replicas} is above max_replicas={p.max_replicas}; raise max_replicas"
        )
    for name in ("target_concurrency_percent", "target_cpu_percent"):
        value = getattr(p, name)
        if value is not None and value > 100:
            raise ConfigError(
                f"{where}: {name}={value:g} is above 100; the target is a share of the replica's maximum "
                f"(Cloud Run allows 10-95 % for concurrency, 10-90 % for CPU)"
            )
    if p.min_workers > p.max_workers:
        raise ConfigError(
            f"{where}: min_workers={p.min_workers} is above max_workers={p.max_workers}; raise max_workers"
        )
    if p.price_node_hour_usd and (p.node_vcpus is None or p.node_memory_mb is None):
        raise ConfigError(
            f"{where}: price_node_hour_usd needs the node's size to share it between replicas; "
            f"set node_vcpus and node_memory_mb too"
        )


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


def profile_pattern(spec: str | Path | Profile) -> str:
    """The pattern a profile (shipped name, ``.toml`` path or Profile) is written for; serverless if unsaid."""
    if isinstance(spec, Profile):
        return spec.pattern
    path = _profile_path(spec)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"profile file {str(path)!r} is not valid TOML: {exc}") from exc
    return str(data.get("pattern", "serverless"))


def _profile_path(spec: str | Path) -> Path:
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
    return path


def load_profile(spec: str | Path | Profile | None, pattern: str | None = None) -> Profile:
    """Load a shipped profile by name, a ``.toml`` file by path, or pass a Profile through.

    ``pattern`` is the pattern the profile must be for; None takes the file's own (serverless if unsaid).
    """
    if isinstance(spec, Profile):
        return spec
    if spec is None:
        spec = default_profile_name(pattern or "serverless")
    if pattern is None:
        pattern = profile_pattern(spec)
    path = _profile_path(spec)
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
