"""A deployment's figures over time: one point every ``interval_s`` wall seconds, for live and offline charts.

A point holds the deployment's cumulative counts (calls, outcomes by kind, cold starts, cost split into
compute and LLM) and its gauges at that moment (live instances, the autoscaler's desired replicas, the
queue's depth), plus the latency percentiles of the calls that finished since the previous point. Rates
(requests/s, failures/s) are differences of the cumulative counts, so a reader that skips points (or a
buffer that thins itself) still gets every call counted.

Everything comes from the deployment's own ``Tally`` and fleet, so sampling costs the same after a
million calls as after ten. The buffer is bounded: when it is full, every other point goes and the
interval doubles, so an hour-long ``harness serve`` keeps the whole run at a coarser grain.
Points are plain JSON dicts; ``timechart`` draws them (the gateway's ``/_harness/dashboard``, the Locust
"Patterns" tab and the HTML report share it).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import Any

from .pattern import Emulator
from .tally import RELATIVE_ERROR, Histogram

__all__ = ["DEFAULT_INTERVAL_S", "MAX_POINTS", "Timeline", "TimelineBook", "point_from", "thin"]

DEFAULT_INTERVAL_S = 0.5  # the engine host's /stats cadence: the live charts and the JSON report agree
_GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)  # the histogram's bucket ratio (see tally.py)
MAX_POINTS = 2400  # 20 min at 0.5 s before the buffer thins itself; a JSON point is ~250 bytes


def _interval(now: Histogram, before: dict[int, int], zeros_before: int) -> Histogram:
    """The calls ``now`` counted since ``before`` (its buckets then), as a histogram of their own."""
    h = Histogram()
    h.buckets = {i: n - before.get(i, 0) for i, n in now.buckets.items() if n - before.get(i, 0) > 0}
    h.zeros = now.zeros - zeros_before
    h.count = sum(h.buckets.values()) + h.zeros
    # The interval's exact extremes are not kept: its extreme buckets' answers (within 1 %) stand in, inside
    # the run's exact bounds (the histogram answers its last rank with max, its first with min).
    if h.buckets:
        h.min = max(now.min, _bucket_value(min(h.buckets)))
        h.max = min(now.max, _bucket_value(max(h.buckets)))
    if h.zeros:
        h.min = min(h.min, max(now.min, 0.0))
        h.max = max(h.max, h.min)
    return h


def _bucket_value(i: int) -> float:
    return 2 * _GAMMA ** i / (_GAMMA + 1)


def point_from(emulator: Emulator, *, queue_depth: int | None = None) -> dict[str, Any]:
    """The cumulative counts and the gauges of ``emulator`` now (no interval latency: ``Timeline`` adds it)."""
    tally = emulator.records.tally
    s = emulator.summary()
    desired = getattr(emulator, "desired", None)  # container: the replica count the autoscaler asks for
    return {
        "at": round(time.time(), 3),
        "calls": tally.calls,
        "outcomes": dict(tally.outcomes),
        "cold_starts": tally.cold,
        "instances": sum(1 for i in emulator.pool.instances if getattr(i, "alive", True)),
        "desired": int(desired) if isinstance(desired, int) and emulator.pattern == "container" else None,
        "queue_depth": queue_depth,
        # Compute: what the invocations cost beyond their LLM calls, plus capacity billed while idle.
        "compute_usd": round(s.cost_usd - s.llm_cost_usd + s.fixed_cost_usd, 9),
        "llm_usd": round(s.llm_cost_usd, 9),
    }


def thin(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Half the points: the first and every other one after it (cumulative counts keep rates right)."""
    return points[:1] + points[2::2]


class TimelineBook:
    """A copy of several deployments' timelines, fed with the newer points a reader fetched (``add``).

    The Locust master keeps one from what the engine host relays, and the host one per gateway for the
    report; bounded as a ``Timeline`` is.
    """

    def __init__(self, max_points: int = MAX_POINTS) -> None:
        self.max_points = max(4, max_points)
        self.patterns: dict[str, dict[str, Any]] = {}

    def add(self, doc: Mapping[str, Mapping[str, Any]]) -> None:
        """Merge ``{pattern: {"profile", "interval_s", "points"}}``: points numbered after the last kept."""
        for pattern, tl in doc.items():
            mine = self.patterns.setdefault(pattern, {"profile": "", "interval_s": DEFAULT_INTERVAL_S, "points": []})
            mine["profile"] = tl.get("profile", mine["profile"])
            mine["interval_s"] = tl.get("interval_s", mine["interval_s"])
            last = self.last(pattern)
            mine["points"].extend(p for p in tl.get("points") or () if int(p.get("i", 0)) > last)
            if len(mine["points"]) > self.max_points:
                mine["points"] = thin(mine["points"])

    def last(self, pattern: str) -> int:
        """The number of the newest point kept of ``pattern`` (0: none)."""
        pts = self.patterns.get(pattern, {}).get("points") or []
        return int(pts[-1]["i"]) if pts else 0

    def since_query(self) -> str:
        """``since=`` for the next fetch: ``pattern:N,...``."""
        return ",".join(f"{p}:{self.last(p)}" for p in self.patterns)

    def clear(self) -> None:
        """Forget everything (a new run from the web UI)."""
        self.patterns.clear()

    def to_json(self) -> dict[str, dict[str, Any]]:
        """The timeline document (what ``timechart.render`` draws)."""
        return {p: {**tl, "points": list(tl["points"])} for p, tl in self.patterns.items()}


class Timeline:
    """Samples one deployment every ``interval_s`` wall seconds into a bounded list of points."""

    def __init__(self, emulator: Emulator, *, interval_s: float = DEFAULT_INTERVAL_S,
                 max_points: int = MAX_POINTS) -> None:
        self.emulator = emulator
        self.interval_s = interval_s
        self.max_points = max(4, max_points)
        self.points: list[dict[str, Any]] = []
        self._seq = 0
        self._buckets: dict[int, int] = {}
        self._zeros = 0
        self._task: asyncio.Task[None] | None = None
        # Timelines shown together (several deployments served by one process); empty: this one alone.
        self.peers: list[Timeline] = []

    @property
    def pattern(self) -> str:
        """The pattern of the deployment sampled."""
        return self.emulator.pattern

    @property
    def profile(self) -> str:
        """The profile name of the deployment sampled."""
        return self.emulator.profile.name

    @property
    def running(self) -> bool:
        """True while the sampling loop runs."""
        return self._task is not None and not self._task.done()

    async def _queue_depth(self) -> int | None:
        depth = getattr(self.emulator, "queue_depth", None)  # daemon: messages waiting on the queue
        if depth is None:
            return None
        try:
            return int(await depth())
        except Exception:  # a broker hiccup must not stop the charts: this point has no depth
            return None

    async def sample(self) -> dict[str, Any]:
        """Take one point now and keep it; returns it."""
        p = point_from(self.emulator, queue_depth=await self._queue_depth())
        lat = self.emulator.records.tally.latency
        window = _interval(lat, self._buckets, self._zeros)
        self._buckets, self._zeros = dict(lat.buckets), lat.zeros
        p["p50_ms"] = round(window.percentile(50), 3) if window.count else None
        p["p95_ms"] = round(window.percentile(95), 3) if window.count else None
        self._seq += 1
        p["i"] = self._seq
        self.points.append(p)
        if len(self.points) > self.max_points:
            # Keep the first point and every other one after it: cumulative counts keep rates right.
            self.points = thin(self.points)
            self.interval_s *= 2
        return p

    def since(self, seq: int = 0) -> list[dict[str, Any]]:
        """The points taken after point number ``seq`` (0: all of them)."""
        if not self.points or seq < self.points[0]["i"]:
            return list(self.points)
        return [p for p in self.points if p["i"] > seq]

    def to_json(self, seq: int = 0) -> dict[str, Any]:
        """This pattern's entry of a timeline document: profile, sampling interval, points after ``seq``."""
        return {"profile": self.profile, "interval_s": self.interval_s, "points": self.since(seq)}

    def start(self) -> None:
        """Start sampling in the running loop (idempotent)."""
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"timeline-{self.pattern}")

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # a figure that fails once must not end the charts
                await self.sample()
            await asyncio.sleep(self.interval_s)

    async def stop(self) -> None:
        """Stop sampling (the points stay)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
