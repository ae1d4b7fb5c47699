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

Scale to zero (KEDA, Cloud Run, Fly, Modal): with ``min_replicas = 0`` the HPA part still never goes below
one replica; after ``scale_to_zero_idle_s`` with no request the answer is 0, and a request arriving at zero
replicas brings one back at once (the pattern starts it, as KEDA's activation or Knative's activator do).
"""

from __future__ import annotations

import math
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

    @classmethod
    def from_profile(cls, p: Profile) -> ScalePolicy:
        """The policy a container profile configures (its target is the one of its autoscale metric)."""
        target = {"concurrency": p.target_concurrency, "queue": p.target_queue_depth,
                  "p95_latency": p.target_latency_p95_ms}[p.autoscale_metric]
        return cls(target=target, min_replicas=p.min_replicas, max_replicas=p.max_replicas,
                   tolerance=p.autoscale_tolerance, sync_period_s=p.autoscale_sync_period_s,
                   scale_up_percent=p.scale_up_percent, scale_up_pods=p.scale_up_pods,
                   scale_up_period_s=p.scale_up_period_s, scale_up_stabilization_s=p.scale_up_stabilization_s,
                   scale_down_stabilization_s=p.scale_down_stabilization_s,
                   scale_down_percent=p.scale_down_percent, scale_down_period_s=p.scale_down_period_s,
                   scale_to_zero_idle_s=p.scale_to_zero_idle_s)


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

    def note_change(self, t: float, delta: int) -> None:
        """Replicas changed outside a sync (activation from zero): the scale-up rate limit counts it."""
        if delta:
            self._events.append((t, delta))

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
               ready: int | None = None, extra: float = 0.0, active: bool = False) -> Decision:
        """One sync at platform time ``t``.

        Per-replica metrics come as ``values`` (one per replica the deployment counts; None for one not
        reporting yet); an object metric (p95 latency) as ``value`` with the ``ready`` replica count.
        ``active``: a request was outstanding or arrived since the last sync (for scale to zero).
        """
        p = self.policy
        if active or self._last_active is None:
            self._last_active = t if active else self.started_at
        if value is not None:
            n_ready = current if ready is None else ready
            raw = current if n_ready == 0 else hpa_formula(current, value / p.target, n_ready, p.tolerance)
            metric: float | None = value
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
