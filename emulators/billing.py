"""Pricing: turn a profile's prices and one invocation's measured usage into a ``Cost``.

One formula covers the shipped serverless profiles, each setting only the prices its platform charges:
requests x per-request price + billed duration (rounded up to the profile's granularity) x
(memory GB x GB-second price + vCPUs x vCPU-second price) + memory GB-hours + active CPU hours + CPU ms
(edge isolates bill CPU time, not duration; in units of ``cpu_billing_granularity_ms`` where set).
Provisioned capacity is a fixed cost of the deployment, not of an invocation (``provisioned_cost``).
Container replicas are billed for the whole time they are up, busy or idle (``replica_rate_usd``): a
``ReplicaMeter`` splits one replica's time into idle time and the shares of the calls it served. Under
request-based billing (Cloud Run's default) its idle time is free, and a replica that stops early is still
billed its platform's minimum (Fargate: one minute). Queue sends are billed per chunk (``queue_requests``),
every queue request at the profile's price (``queue_cost``). A profile with any per-invocation price
(``bills_invocations``) prices each call, whatever its pattern: a Lambda function consuming a queue on the
daemon pattern pays GB-seconds and requests per invocation, not worker-hours.
LLM tokens are priced from the dated table ``profiles/prices/llm.toml`` (``llm_cost``).
"""

from __future__ import annotations

import functools
import math
import tomllib
from pathlib import Path

from .profiles import Profile
from .records import Cost

__all__ = ["ReplicaMeter", "billed_cpu_ms", "billed_ms", "bills_invocations", "embedding_latency", "invocation_cost",
           "llm_cost", "llm_price", "provisioned_cost", "queue_cost", "queue_requests", "replica_cost",
           "replica_rate_usd"]

# The prices ``invocation_cost`` charges per call (the rest price capacity: replicas, workers, provisioning).
_PER_INVOCATION = ("price_per_million_requests_usd", "price_gb_s_usd", "price_gb_hour_usd", "price_vcpu_s_usd",
                   "price_active_cpu_hour_usd", "price_per_million_cpu_ms_usd")

_PRICES = Path(__file__).parent / "profiles" / "prices" / "llm.toml"


def billed_ms(duration_ms: float, profile: Profile) -> float:
    """The duration the platform bills: rounded up to the profile's granularity."""
    g = profile.billing_granularity_ms
    # A hair of tolerance so float noise ((0.1 + 0.2) * 1000 = 300.00000000000006) does not bill an extra unit.
    return max(g, math.ceil(duration_ms / g - 1e-9) * g)


def billed_cpu_ms(cpu_ms: float, profile: Profile) -> float:
    """The CPU time the platform bills: rounded up to whole units where it bills in units (0 stays 0)."""
    g = profile.cpu_billing_granularity_ms
    if not g or cpu_ms <= 0:
        return cpu_ms
    return math.ceil(cpu_ms / g - 1e-9) * g


def queue_requests(body_bytes: int, profile: Profile) -> int:
    """Requests one send of ``body_bytes`` is billed as: one per started chunk where the queue bills chunks."""
    chunk = profile.queue_request_chunk_bytes
    return max(1, math.ceil(body_bytes / chunk)) if chunk else 1


def queue_cost(requests: float, profile: Profile) -> float:
    """USD for ``requests`` queue requests at the profile's price per million."""
    return requests / 1e6 * profile.price_per_million_queue_requests_usd


def bills_invocations(profile: Profile) -> bool:
    """Whether the profile prices each invocation (requests, duration, CPU), not only capacity kept up."""
    return any(getattr(profile, name) for name in _PER_INVOCATION)


def invocation_cost(billed: float, cpu_ms: float, profile: Profile) -> Cost:
    """Cost of one executed invocation that was billed ``billed`` ms and used ``cpu_ms`` of CPU."""
    seconds = billed / 1000.0
    gb = profile.memory_mb / 1024.0
    compute = seconds * gb * profile.price_gb_s_usd
    compute += seconds * (profile.vcpus or 0.0) * profile.price_vcpu_s_usd
    compute += seconds / 3600.0 * gb * profile.price_gb_hour_usd
    compute += cpu_ms / 1000.0 / 3600.0 * profile.price_active_cpu_hour_usd
    compute += billed_cpu_ms(cpu_ms, profile) / 1e6 * profile.price_per_million_cpu_ms_usd  # edge: CPU, no duration
    return Cost(compute_usd=compute, requests_usd=profile.price_per_million_requests_usd / 1e6)


def provisioned_cost(instances: int, lifetime_s: float, profile: Profile) -> float:
    """Cost of keeping ``instances`` provisioned for ``lifetime_s`` platform seconds (rounded up as billed)."""
    if instances <= 0 or lifetime_s <= 0:
        return 0.0
    g = profile.provisioned_billing_granularity_s
    billed_s = math.ceil(lifetime_s / g) * g if g else lifetime_s
    return instances * billed_s * profile.memory_mb / 1024.0 * profile.provisioned_price_gb_s_usd


def replica_rate_usd(profile: Profile) -> float:
    """USD per platform second one replica costs while it is up: vCPUs, memory and its share of a node.

    A replica's share of a node is the larger of its vCPU and memory fractions (what keeps other pods off).
    """
    gib = profile.memory_mb / 1024.0
    vcpus = profile.vcpus or 0.0
    rate = vcpus * profile.price_vcpu_s_usd + gib * profile.price_gb_s_usd + gib * profile.price_gb_hour_usd / 3600
    if profile.price_node_hour_usd and profile.node_vcpus and profile.node_memory_mb:
        share = max(vcpus / profile.node_vcpus, profile.memory_mb / profile.node_memory_mb)
        rate += share * profile.price_node_hour_usd / 3600.0
    return rate


def replica_cost(replicas: int, seconds: float, profile: Profile) -> float:
    """Cost of ``replicas`` replicas up for ``seconds`` platform seconds each."""
    return replicas * seconds * replica_rate_usd(profile)


class ReplicaMeter:
    """One replica's up time on the platform clock, split into idle time and the calls' shares of busy time.

    Calls running together on a replica share it equally while they overlap, so the shares of all calls
    add up to the time the replica was busy. ``bill_idle=False`` (request-based billing) leaves idle time
    unbilled; ``min_billed_s`` bills a replica that was up for less as idle time up to that minimum.
    """

    def __init__(self, now: float, *, min_billed_s: float = 0.0, bill_idle: bool = True) -> None:
        self.last = now
        self.idle_s = 0.0
        self.busy_s = 0.0  # clock seconds with at least one call running
        self.stopped = False
        self.min_billed_s = min_billed_s
        self.bill_idle = bill_idle
        self._running: dict[str, tuple[float, float]] = {}  # key -> (began, share-seconds so far)

    def _advance(self, now: float) -> None:
        dt = max(0.0, now - self.last)
        self.last = max(self.last, now)
        if self.stopped:
            return
        if not self._running:
            self.idle_s += dt
            return
        self.busy_s += dt
        each = dt / len(self._running)
        self._running = {k: (began, acc + each) for k, (began, acc) in self._running.items()}

    def begin(self, key: str, now: float) -> None:
        """A call started running on the replica."""
        self._advance(now)
        self._running[key] = (now, 0.0)

    def end(self, key: str, now: float) -> float:
        """A call ended; returns its share of the replica while it ran (1.0 = it had the replica alone)."""
        self._advance(now)
        began, acc = self._running.pop(key, (now, 0.0))
        span = now - began
        return acc / span if span > 0 else 1.0 / (len(self._running) + 1)

    def stop(self, now: float) -> None:
        """The replica is gone: billing stops."""
        self._advance(now)
        self.stopped = True

    def idle_until(self, now: float) -> float:
        """Billed idle platform seconds up to ``now`` (with the shortfall to the minimum billed time)."""
        ahead = 0.0 if self.stopped else max(0.0, now - self.last)
        idle = (self.idle_s + (0.0 if self._running else ahead)) if self.bill_idle else 0.0
        busy = self.busy_s + (ahead if self._running else 0.0)
        return idle + max(0.0, self.min_billed_s - idle - busy)


@functools.cache
def _price_table() -> dict[str, tuple[float, float]]:
    data = tomllib.loads(_PRICES.read_text(encoding="utf-8"))
    return {name: (float(p["input"]), float(p["output"])) for name, p in data["models"].items()}


@functools.cache
def _latency_table() -> dict[str, tuple[float, float]]:
    data = tomllib.loads(_PRICES.read_text(encoding="utf-8"))
    return {name: (float(p["latency_ms"]), float(p.get("ms_per_1k_tokens", 0.0)))
            for name, p in data["models"].items() if "latency_ms" in p}


def embedding_latency(model: str) -> tuple[float, float]:
    """(ms per request, ms per 1k input tokens) of an embedding model from the price table.

    An unlisted model: the longest listed prefix, else text-embedding-3-small's figures.
    """
    table = _latency_table()
    if model in table:
        return table[model]
    prefixes = [name for name in table if model.startswith(name)]
    return table[max(prefixes, key=len)] if prefixes else table["text-embedding-3-small"]


def llm_price(model: str) -> tuple[float, float] | None:
    """(input, output) USD per 1M tokens for ``model``: exact name, else the longest listed prefix."""
    table = _price_table()
    if model in table:
        return table[model]
    prefixes = [name for name in table if model.startswith(name)]
    return table[max(prefixes, key=len)] if prefixes else None


def llm_cost(model: str, input_tokens: int, output_tokens: int) -> float:
    """USD for one LLM call at list price ($0 for a model the table does not list)."""
    price = llm_price(model)
    if price is None:
        return 0.0
    return (input_tokens * price[0] + output_tokens * price[1]) / 1e6
