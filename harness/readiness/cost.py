"""Cost projection: a measured per-task profile priced with each profile's billing formulas, per month.

Per pattern (``month`` = 730 h; ``rate`` = tasks per second; ``d`` = the task's platform duration on that
profile, its CPU part rescaled by the profile's CPU share):

- serverless: tasks x ``invocation_cost(billed_ms(d))`` (the emulator's own formula) + the cold starts'
  billed init where the profile bills init; cold share = ``exp(-rate x idle_expiry_s)`` (the chance the
  previous call was longer ago than the idle expiry), plus, for bursty traffic, one cold instance per
  concurrent call at the start of each hourly burst;
- container: replicas x seconds up x ``replica_rate_usd``; replicas = enough for the concurrency
  (Little's law, ``rate x d / replica_concurrency``) and the CPU (``rate x cpu / vcpus``), at least
  ``min_replicas``. Scale-to-zero pools (``min_replicas = 0``) are up ``rate x d + 1 - exp(-rate x idle)``
  of the time. Bursty: each hour the peak replicas run for the burst plus the scale-down window.
  Request-based billing (``replica_billing = "request"``, Cloud Run's default): tasks x d x the replica
  rate instead (idle replicas are free). Both add tasks x the per-request price;
- daemon: workers x hours x ``price_worker_hour_usd`` + 3 queue requests a task (send, receive, delete);
  workers = enough for the average load (a queue absorbs bursts: the scaling check shows the lag); a
  profile that prices invocations (a Lambda consumer of SQS: ``billing.bills_invocations``) adds tasks x
  ``invocation_cost`` (one task an invocation: batching is not projected);
- edge: tasks x ``invocation_cost`` (per request + per CPU ms, no duration).

LLM cost (tasks x measured LLM USD per task) is the same on every pattern and is kept separate. Free
tiers, minimum fees (Cloudflare's $5/month) and provisioned concurrency are not included.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from emulators.billing import billed_ms, bills_invocations, invocation_cost, llm_cost, replica_rate_usd
from emulators.profiles import Profile

from .traffic import HOURS_PER_MONTH, TrafficSpec

__all__ = ["GRID_PER_DAY", "MemoryCost", "TaskProfile", "crossovers", "monthly_compute", "monthly_llm",
           "monthly_memory", "priced", "projection", "task_duration_ms"]

MONTH_S = HOURS_PER_MONTH * 3600
# Long-term memory storage. ESTIMATE: platform-facts.md has no database or vector-store storage price yet;
# a managed database's storage list price per GB-month is of this order (re-verify and cite).
MEMORY_STORAGE_GB_MONTH_USD = 0.25
MEMORY_ROW_OVERHEAD_BYTES = 300  # measured: 1,392 bytes a row in SQLite at 256 dimensions (1,024 of them vector)
# Tasks per day the projection covers: 1-2-5 steps from 1 to 1,000,000.
GRID_PER_DAY: tuple[float, ...] = (*(m * 10.0 ** e for e in range(0, 6) for m in (1, 2, 5)), 1e6)


@dataclass(frozen=True)
class TaskProfile:
    """What one task measured: platform duration, real CPU, memory, init and LLM usage (means of ok calls)."""

    duration_ms: float
    cpu_ms: float = 0.0
    peak_memory_mb: float = 0.0
    init_ms: float = 0.0
    llm_usd: float = 0.0
    llm_calls: float = 0.0
    tokens: float = 0.0
    cpu_factor: float = 1.0  # platform s per CPU s where it was measured (to rescale to other profiles)
    measured_on: str = ""

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def task_duration_ms(task: TaskProfile, profile: Profile) -> float:
    """The task's platform duration on ``profile``: its waits as measured, its CPU at the profile's CPU share."""
    waits = max(0.0, task.duration_ms - task.cpu_ms * task.cpu_factor)
    return waits + task.cpu_ms * profile.cpu_factor()


def priced(profile: Profile) -> bool:
    """Whether the profile has any price at all (unpriced profiles cost $0 and are not ranked)."""
    return any(getattr(profile, f) for f in (
        "price_per_million_requests_usd", "price_gb_s_usd", "price_gb_hour_usd", "price_vcpu_s_usd",
        "price_active_cpu_hour_usd", "price_per_million_cpu_ms_usd", "price_node_hour_usd",
        "price_worker_hour_usd"))


def _serverless(task: TaskProfile, p: Profile, traffic: TrafficSpec, per_month: float) -> float:
    d_ms = task_duration_ms(task, p)
    per_task = invocation_cost(billed_ms(d_ms, p), task.cpu_ms, p).total_usd
    rate = per_month / MONTH_S
    active = rate * traffic.peak_factor  # arrivals are this dense while traffic comes in
    cold = math.exp(-active * p.idle_expiry_s)
    gap = 3600.0 - 3600.0 / traffic.peak_factor
    if traffic.shape == "bursty" and gap > p.idle_expiry_s and rate > 0:
        # Every hour the burst finds no warm instance: as many cold starts as calls run at once.
        concurrent = max(1.0, active * d_ms / 1000.0)
        cold += concurrent / max(1.0, rate * 3600.0)
    cold = min(1.0, cold)
    init_cost = invocation_cost(billed_ms(task.init_ms, p), 0.0, p).compute_usd if p.bill_init and task.init_ms else 0.0
    return per_month * (per_task + cold * init_cost)


def _replicas(task: TaskProfile, p: Profile, rate: float, per_replica: int) -> int:
    if rate <= 0:
        return 0
    d_s = task_duration_ms(task, p) / 1000.0
    by_slots = rate * d_s / max(1, per_replica)
    by_cpu = rate * task.cpu_ms / 1000.0 / (p.vcpus or 1.0)
    return max(1, math.ceil(max(by_slots, by_cpu) - 1e-9))


def _container(task: TaskProfile, p: Profile, traffic: TrafficSpec, per_month: float) -> float:
    requests = per_month * p.price_per_million_requests_usd / 1e6
    if p.replica_billing == "request":
        # Billed only while a call runs: at most each call's duration (calls sharing a replica bill once).
        return per_month * task_duration_ms(task, p) / 1000.0 * replica_rate_usd(p) + requests
    return _container_up(task, p, traffic, per_month) + requests


def _container_up(task: TaskProfile, p: Profile, traffic: TrafficSpec, per_month: float) -> float:
    rate = per_month / MONTH_S
    unit = replica_rate_usd(p)
    if traffic.shape == "bursty":
        base = p.min_replicas
        peak = max(base, _replicas(task, p, rate * traffic.peak_factor, p.replica_concurrency))
        window = p.scale_to_zero_idle_s if base == 0 else p.scale_down_stabilization_s
        hold = min(3600.0, 3600.0 / traffic.peak_factor + window)
        return (peak * hold + base * (3600.0 - hold)) * unit * HOURS_PER_MONTH
    needed = _replicas(task, p, rate, p.replica_concurrency)
    if p.min_replicas >= 1:
        return max(p.min_replicas, needed) * MONTH_S * unit
    d_s = task_duration_ms(task, p) / 1000.0
    up = min(1.0, rate * d_s + 1.0 - math.exp(-rate * p.scale_to_zero_idle_s))
    return max(1, needed) * MONTH_S * unit * up


def _daemon(task: TaskProfile, p: Profile, traffic: TrafficSpec, per_month: float) -> float:
    rate = per_month / MONTH_S
    workers = max(1, _replicas(task, p, rate, 1))
    queue = per_month * 3 * p.price_per_million_queue_requests_usd / 1e6
    calls = per_month * invocation_cost(billed_ms(task_duration_ms(task, p), p), task.cpu_ms, p).total_usd \
        if bills_invocations(p) else 0.0
    return workers * HOURS_PER_MONTH * p.price_worker_hour_usd + queue + calls


def _edge(task: TaskProfile, p: Profile, traffic: TrafficSpec, per_month: float) -> float:
    return per_month * invocation_cost(billed_ms(task_duration_ms(task, p), p), task.cpu_ms, p).total_usd


_BY_PATTERN: dict[str, Callable[[TaskProfile, Profile, TrafficSpec, float], float]] = {
    "serverless": _serverless, "container": _container, "daemon": _daemon, "edge": _edge}


def monthly_compute(task: TaskProfile, profile: Profile, traffic: TrafficSpec) -> float:
    """USD a month for compute, requests and queue (no LLM) at ``traffic`` on ``profile``."""
    return _BY_PATTERN[profile.pattern](task, profile, traffic, traffic.per_month)


def monthly_llm(task: TaskProfile, traffic: TrafficSpec) -> float:
    """USD a month for the LLM at ``traffic`` (the same on every pattern)."""
    return traffic.per_month * task.llm_usd


def projection(task: TaskProfile, profiles: Sequence[Profile], shape: TrafficSpec,
               grid: Sequence[float] = GRID_PER_DAY) -> dict[str, list[tuple[float, float]]]:
    """Per profile name, ``(tasks per day, monthly compute USD)`` over ``grid`` in ``shape``'s shape."""
    return {p.name: [(n, monthly_compute(task, p, shape.with_rate(n))) for n in grid] for p in profiles}


def crossovers(task: TaskProfile, a: Profile, b: Profile, shape: TrafficSpec,
               grid: Sequence[float] = GRID_PER_DAY) -> list[dict[str, Any]]:
    """Volumes (tasks/day) where ``a`` and ``b`` swap places as the cheaper one, refined by bisection."""

    def diff(n: float) -> float:
        t = shape.with_rate(n)
        return monthly_compute(task, a, t) - monthly_compute(task, b, t)

    out: list[dict[str, Any]] = []
    for lo, hi in itertools.pairwise(grid):
        d_lo, d_hi = diff(lo), diff(hi)
        if d_lo == 0 or (d_lo < 0) == (d_hi < 0):
            continue
        for _ in range(60):  # on a log scale: the curves span decades
            mid = math.sqrt(lo * hi)
            if (diff(mid) < 0) == (d_lo < 0):
                lo = mid
            else:
                hi = mid
        n = math.sqrt(lo * hi)
        cheaper_below = a.name if d_lo < 0 else b.name
        out.append({"shape": shape.shape, "a": a.name, "b": b.name, "per_day": n,
                    "monthly_usd": monthly_compute(task, a, shape.with_rate(n)), "cheaper_below": cheaper_below,
                    "cheaper_above": b.name if cheaper_below == a.name else a.name})
    return out


@dataclass(frozen=True)
class MemoryCost:
    """Long-term memory per month at a traffic: embedding tokens, and the rows stored after a month."""

    embedding_tokens_per_task: float
    rows_per_task: float
    embedding_usd: float
    rows_after_month: float
    storage_gb: float
    storage_usd: float  # ESTIMATE: see MEMORY_STORAGE_GB_MONTH_USD

    @property
    def total_usd(self) -> float:
        """Embeddings + storage."""
        return self.embedding_usd + self.storage_usd


def monthly_memory(embedding_tokens_per_task: float, rows_per_task: float, dimensions: int,
                   traffic: TrafficSpec, model: str = "text-embedding-3-small") -> MemoryCost:
    """Embedding tokens priced at the model's list price, plus a month's new rows at the storage stand-in."""
    tasks = traffic.per_month
    rows = rows_per_task * tasks
    gb = rows * (dimensions * 4 + MEMORY_ROW_OVERHEAD_BYTES) / 1e9
    return MemoryCost(embedding_tokens_per_task, rows_per_task,
                      llm_cost(model, round(embedding_tokens_per_task * tasks), 0), rows, gb,
                      gb * MEMORY_STORAGE_GB_MONTH_USD)
