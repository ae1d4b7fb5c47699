"""The autoscaler: a pure reproduction of the Kubernetes HorizontalPodAutoscaler, plus scale to zero.

Pure: no clock, no processes. The container pattern feeds it one metric sample per sync period with the
platform time of the sync, and applies the replica count it answers. It follows the HPA controller
(kubernetes ``pkg/controller/podautoscaler``) step by step:

1. **Formula**: ``raw = ceil(current * metric / target)`` over the replicas that report the metric; within
   the tolerance (``|metric / target - 1| <= 0.1``) it keeps ``current``. Replicas still starting report
   nothing: on a scale-up they count as 0, on a scale-down as exactly the target ("missing pods").
2. **Stabilization**: below ``current`` the answer is the highest raw recommendation of the last
   ``scale_down_stabilization_s`` (300 s); above it, the lowest of the last ``scale_up_stabilization_s`` (0 s).
3. **Rate**: a scale-up adds at most ``max(+scale_up_percent %, +scale_up_pods)`` over the replicas at the
   start of the last ``scale_up_period_s`` (100 %, 4 pods, 15 s); a scale-down removes at most
   ``scale_down_percent`` per ``scale_down_period_s`` (100 % per 15 s).
4. **Bounds**: ``[max(1, min_replicas), max_replicas]``.

Cloud Run's autoscaler (platform-facts.md R11-R13) differs in two ways, both set by profile fields: its
metric is the deployment's total concurrency averaged over a window (``autoscale_window_s``, 60 s; here the
average of the syncs' samples in the window), so ``raw = ceil(average / target)``; and its target is a share
of the per-instance maximum (``target_concurrency_percent``, 60 %). With ``target_cpu_percent`` (60 %) the
CPU the replicas used, averaged over the same window, gives a second answer, ``ceil(CPU-s per s / vcpus /
target)``, and the larger one wins. Its other mechanism, starting instances
for requests that find none free ("on demand"), is the pattern's (``container.py``); it tells the
autoscaler with ``note_demand`` so the scale-down window remembers it.

Scale to zero (KEDA, Cloud Run, Fly, Modal): with ``min_replicas = 0`` the HPA part still never goes below
one replica; after ``scale_to_zero_idle_s`` with no request the answer is 0, and a request arriving at zero
replicas brings one back at once (the pattern starts it, as KEDA's activation or Knative's activator do).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from .profiles import Profile

__all__ = ["Autoscaler", "Decision", "ScalePolicy"]


@dataclass(frozen=True)
class ScalePolicy:
    """The autoscaler's settings (HPA defaults, platform-facts.md K1, K3); every period in platform seconds."""

    target: float
    min_replicas: int = 1
    max_replicas: int = 10
    tolerance: float = 0.1
    sync_period_s: float = 15.0
    scale_up_percent: float = 100.0
    scale_up_pods: int = 4
    scale_up_period_s: float = 15.0
    scale_up_stabilization_s: float = 0.0
    scale_down_stabilization_s: float = 300.0
    scale_down_percent: float = 100.0
    scale_down_period_s: float = 15.0
    scale_to_zero_idle_s: float = 300.0
    window_s: float = 0.0  # average a deployment-wide metric over this window (0: the sync's own sample)
    cpu_target: float | None = None  # share of a replica's vCPUs to aim at (with a window); None: not on CPU
    vcpus: float = 1.0

    @classmethod
    def from_profile(cls, p: Profile) -> ScalePolicy:
        """The policy a container profile configures (its target is the one of its autoscale metric)."""
        concurrency = p.target_concurrency
        if p.target_concurrency_percent is not None:  # Cloud Run: a share of the per-instance maximum (R13)
            concurrency = p.replica_concurrency * p.target_concurrency_percent / 100.0
        target = {"concurrency": concurrency, "queue": p.target_queue_depth,
                  "p95_latency": p.target_latency_p95_ms}[p.autoscale_metric]
        return cls(target=target, min_replicas=p.min_replicas, max_replicas=p.max_replicas,
                   tolerance=p.autoscale_tolerance, sync_period_s=p.autoscale_sync_period_s,
                   scale_up_percent=p.scale_up_percent, scale_up_pods=p.scale_up_pods,
                   scale_up_period_s=p.scale_up_period_s, scale_up_stabilization_s=p.scale_up_stabilization_s,
                   scale_down_stabilization_s=p.scale_down_stabilization_s,
                   scale_down_percent=p.scale_down_percent, scale_down_period_s=p.scale_down_period_s,
                   scale_to_zero_idle_s=p.scale_to_zero_idle_s, window_s=p.autoscale_window_s,
                   cpu_target=None if p.target_cpu_percent is None else p.target_cpu_percent / 100.0,
                   vcpus=p.vcpus or 1.0)


@dataclass(frozen=True)
class Decision:
    """One sync: what the autoscaler saw and what it answered."""

    t: float  # platform seconds
    current: int
    metric: float | None  # per-replica average (or the object value, e.g. p95 ms); None: no metric
    raw: int  # the formula's answer, before stabilization, rate limits and bounds
    desired: int
    reason: str


def hpa_formula(current: int, usage_ratio: float, ready: int, tolerance: float) -> int:
    """``ceil(ratio * ready)``, or ``current`` when the ratio is within the tolerance of 1."""
    if abs(1.0 - usage_ratio) <= tolerance:
        return current
    return math.ceil(usage_ratio * ready - 1e-9)  # float noise must not add a replica


@dataclass
class Autoscaler:
    """Feed ``decide`` one sample per sync; it keeps the recommendations and scale events HPA keeps."""

    policy: ScalePolicy
    started_at: float = 0.0
    decisions: list[Decision] = field(default_factory=list)
    _recs: list[tuple[float, int]] = field(default_factory=list)
    _events: list[tuple[float, int]] = field(default_factory=list)  # (t, replicas added; negative: removed)
    _last_active: float | None = None
    _samples: deque[tuple[float, float]] = field(default_factory=deque)  # (t, total) for the windowed metric
    _cpu_samples: deque[tuple[float, float]] = field(default_factory=deque)  # (t, CPU-s per s)

    def note_change(self, t: float, delta: int) -> None:
        """Replicas changed outside a sync (activation from zero): the scale-up rate limit counts it."""
        if delta:
            self._events.append((t, delta))

    def note_demand(self, t: float, current: int, desired: int) -> None:
        """Replicas started outside a sync for waiting requests: counted by the rate limit, and kept as a
        recommendation so the scale-down window does not undo them at the next sync."""
        self.note_change(t, desired - current)
        self._recs.append((t, desired))

    def windowed(self, t: float, total: float, samples: deque[tuple[float, float]] | None = None) -> float:
        """The average of the samples of the last ``window_s`` (this one included)."""
        samples = self._samples if samples is None else samples
        samples.append((t, total))
        while samples and samples[0][0] <= t - self.policy.window_s:
            samples.popleft()
        if not samples:  # a zero window: the sample itself
            return total
        return sum(v for _, v in samples) / len(samples)

    def raw_total(self, current: int, total: float, target: float | None = None) -> int:
        """``ceil(total / target)``, or ``current`` when that is within the tolerance of it."""
        target = self.policy.target if target is None else target
        if current == 0:
            return math.ceil(total / target - 1e-9)
        return hpa_formula(current, total / target / current, current, self.policy.tolerance)

    def raw_per_replica(self, current: int, values: Sequence[float | None], extra: float = 0.0
                        ) -> tuple[int, float | None]:
        """The formula over per-replica values (None: the replica reports none yet); ``extra`` joins the sum."""
        reporting = [v for v in values if v is not None]
        if not reporting:
            return current, None
        target = self.policy.target
        total = sum(reporting) + extra
        ratio = total / len(reporting) / target
        missing = len(values) - len(reporting)
        if missing == 0:
            return hpa_formula(current, ratio, len(reporting), self.policy.tolerance), total / len(reporting)
        # Missing pods: assume the target on a scale-down and zero on a scale-up, then recompute; if that
        # flips the direction or lands within the tolerance, keep the current count (as HPA does).
        filled = total + (missing * target if ratio < 1.0 else 0.0)
        new_ratio = filled / len(values) / target
        if (abs(1.0 - new_ratio) <= self.policy.tolerance or (ratio < 1.0 < new_ratio)
                or (ratio > 1.0 > new_ratio)):
            return current, total / len(reporting)
        raw = math.ceil(new_ratio * len(values) - 1e-9)
        if (new_ratio < 1.0 and raw > current) or (new_ratio > 1.0 and raw < current):
            return current, total / len(reporting)
        return raw, total / len(reporting)

    def decide(self, t: float, current: int, values: Sequence[float | None] = (), *, value: float | None = None,
               ready: int | None = None, extra: float = 0.0, total: float | None = None,
               cpu: float | None = None, active: bool = False) -> Decision:
        """One sync at platform time ``t``.

        Per-replica metrics come as ``values`` (one per replica the deployment counts; None for one not
        reporting yet); an object metric (p95 latency) as ``value`` with the ``ready`` replica count; a
        deployment-wide total (Cloud Run's concurrency) as ``total``, averaged over ``window_s``, with the
        CPU-seconds per second the replicas used since the last sync as ``cpu`` (read with ``cpu_target``).
        ``active``: a request was outstanding or arrived since the last sync (for scale to zero).
        """
        p = self.policy
        if active or self._last_active is None:
            self._last_active = t if active else self.started_at
        metric: float | None
        if total is not None:
            average = self.windowed(t, total)
            raw, metric = self.raw_total(current, average), average
            if cpu is not None and p.cpu_target is not None:
                cpu_average = self.windowed(t, cpu, self._cpu_samples)
                raw = max(raw, self.raw_total(current, cpu_average, p.vcpus * p.cpu_target))
        elif value is not None:
            n_ready = current if ready is None else ready
            raw = current if n_ready == 0 else hpa_formula(current, value / p.target, n_ready, p.tolerance)
            metric = value
        else:
            raw, metric = self.raw_per_replica(current, values, extra)
        if current == 0:
            desired, reason = (1, "activate") if active else (0, "scaled to zero")
        elif metric is None:
            desired, reason = max(current, self._floor()), "no metric: keep"
        else:
            desired, reason = self._normalize(t, current, raw)
        if p.min_replicas == 0 and current > 0 and not active and t - self._last_active >= p.scale_to_zero_idle_s:
            desired, reason = 0, f"idle {t - self._last_active:g} s: scale to zero"
        if desired != current:
            self._events.append((t, desired - current))
        d = Decision(t=t, current=current, metric=metric, raw=raw, desired=desired, reason=reason)
        self.decisions.append(d)
        return d

    def _floor(self) -> int:
        return max(1, self.policy.min_replicas)

    def _normalize(self, t: float, current: int, raw: int) -> tuple[int, str]:
        p = self.policy
        self._recs.append((t, raw))
        horizon = max(p.scale_up_stabilization_s, p.scale_down_stabilization_s)
        self._recs = [(rt, r) for rt, r in self._recs if rt > t - horizon or rt == t]
        up = min([raw] + [r for rt, r in self._recs if rt > t - p.scale_up_stabilization_s])
        down = max([raw] + [r for rt, r in self._recs if rt > t - p.scale_down_stabilization_s])
        desired, reason = current, "within tolerance" if raw == current else "stabilized"
        if desired < up:
            desired, reason = up, "scale up"
        if desired > down:
            desired, reason = down, "scale down"
        if desired > current:
            limit = max(current, self._scale_up_limit(t, current))
            if desired > limit:
                desired, reason = limit, f"scale up limited to {limit} (max of +{p.scale_up_percent:g}% "\
                                         f"and +{p.scale_up_pods} per {p.scale_up_period_s:g} s)"
        elif desired < current:
            limit = min(current, self._scale_down_limit(t, current))
            if desired < limit:
                desired, reason = limit, f"scale down limited to {limit}"
        lo, hi = self._floor(), p.max_replicas
        if desired > hi:
            desired, reason = hi, f"at max_replicas {hi}"
        if desired < lo:
            desired, reason = lo, f"at min_replicas {lo}"
        return desired, reason

    def _changes(self, t: float, period: float) -> tuple[int, int]:
        added = sum(d for et, d in self._events if et > t - period and d > 0)
        removed = -sum(d for et, d in self._events if et > t - period and d < 0)
        return added, removed

    def _scale_up_limit(self, t: float, current: int) -> int:
        p = self.policy
        added, removed = self._changes(t, p.scale_up_period_s)
        start = current - added + removed
        return max(start + p.scale_up_pods, math.ceil(start * (1 + p.scale_up_percent / 100.0) - 1e-9))

    def _scale_down_limit(self, t: float, current: int) -> int:
        p = self.policy
        added, removed = self._changes(t, p.scale_down_period_s)
        start = current - added + removed
        return max(0, math.floor(start * (1 - p.scale_down_percent / 100.0) + 1e-9))
