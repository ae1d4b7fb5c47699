"""Read-side helpers over the JSON report model, shared by the Markdown and HTML renderers.

Renderers never see Records or Summaries, only the (already redacted) JSON model, so a report file written
by one harness version renders the same later, and nothing a renderer shows can bypass redaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["failures", "instance_series", "latencies", "readiness", "records_by_pattern", "series",
           "series_from_records", "summaries"]


def summaries(report: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per-pattern summaries, in report order."""
    return dict(report.get("summaries") or {})


def records_by_pattern(report: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every record of every deployment, grouped by pattern (warm-up pings included)."""
    out: dict[str, list[dict[str, Any]]] = {p: [] for p in summaries(report)}
    for dep in report.get("deployments") or ():
        out.setdefault(dep.get("pattern") or dep["summary"]["pattern"], []).extend(dep.get("records") or ())
    return out


def latencies(report: Mapping[str, Any]) -> dict[str, list[float]]:
    """Latencies (platform ms) of the calls each pattern ran; refused calls excluded, as in summaries."""
    return {p: [float(r["latency_ms"]) for r in recs
                if r.get("trigger", "invoke") == "invoke" and r["outcome"] not in ("throttled", "payload_too_large")]
            for p, recs in records_by_pattern(report).items()}


def instance_series(report: Mapping[str, Any]) -> dict[str, list[tuple[float, int]]]:
    """Instances in use over time per pattern, from the records alone.

    An instance counts from the start of its first call to the end of its last one (records do not see
    it idling before expiry, so this is a lower bound of what the platform keeps alive). Time is wall
    seconds since the pattern's first call.
    """
    out: dict[str, list[tuple[float, int]]] = {}
    for pattern, recs in records_by_pattern(report).items():
        spans: dict[str, list[float]] = {}
        for r in recs:
            iid = r.get("instance_id")
            if not iid or not r.get("started_at"):
                continue
            s = spans.setdefault(iid, [r["started_at"], r["ended_at"] or r["started_at"]])
            s[0], s[1] = min(s[0], r["started_at"]), max(s[1], r["ended_at"] or r["started_at"])
        if not spans:
            out[pattern] = []
            continue
        t0 = min(s[0] for s in spans.values())
        edges = sorted([(s[0] - t0, 1) for s in spans.values()] + [(s[1] - t0, -1) for s in spans.values()],
                       key=lambda e: (e[0], -e[1]))
        level, series = 0, []
        for t, d in edges:
            level += d
            series.append((t, level))
        out[pattern] = series
    return out


def series(report: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The deployments sampled over time (a load run's ``run.load.series``: each gateway's timeline), or {}.

    The same points the Locust Patterns tab and ``/_harness/dashboard`` draw while the run goes.
    """
    load = (report.get("run") or {}).get("load") or {}
    found = load.get("series") if isinstance(load, Mapping) else None
    return {str(p): dict(tl) for p, tl in found.items()} if isinstance(found, Mapping) else {}


def series_from_records(report: Mapping[str, Any], bins: int = 120) -> dict[str, dict[str, Any]]:
    """Timeline points rebuilt from the records, for a report no gateway sampled (``harness run``, pytest).

    The records' end times fall in up to ``bins`` equal wall-time bins shared by every pattern; a point per
    bin holds the cumulative counts and costs, the p50/p95 of the calls that ended in it and the instances in
    use then (``instance_series``: a lower bound). Records do not know the autoscaler's desired count or the
    queue's depth, so those stay empty.
    """
    by = {p: [r for r in recs if r.get("trigger", "invoke") == "invoke" and r.get("ended_at")]
          for p, recs in records_by_pattern(report).items()}
    ends = [float(r["ended_at"]) for recs in by.values() for r in recs]
    if not ends:
        return {}
    t0, t1 = min(float(r.get("started_at") or r["ended_at"]) for recs in by.values() for r in recs), max(ends)
    width = max((t1 - t0) / bins, 1e-3)
    instances = instance_series(report)
    profiles = {p: str(s.get("profile", "")) for p, s in summaries(report).items()}
    out: dict[str, dict[str, Any]] = {}
    for pattern, recs in by.items():
        recs = sorted(recs, key=lambda r: float(r["ended_at"]))
        first = min((float(r["started_at"]) for r in recs if r.get("started_at")), default=t0)
        steps = instances.get(pattern, [])
        points: list[dict[str, Any]] = []
        calls = cold = 0
        outcomes: dict[str, int] = {}
        compute = llm = 0.0
        k = 0
        for b in range(bins + 1):
            edge = t0 + width * b
            window: list[float] = []
            while k < len(recs) and float(recs[k]["ended_at"]) <= edge + 1e-9:
                r = recs[k]
                calls, cold = calls + 1, cold + bool(r.get("cold_start"))
                outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
                cost = r.get("cost") or {}
                llm += float(cost.get("llm_usd", 0.0))
                compute += float(cost.get("total_usd", 0.0)) - float(cost.get("llm_usd", 0.0))
                if r["outcome"] not in ("throttled", "payload_too_large"):
                    window.append(float(r["latency_ms"]))
                k += 1
            level = next((n for t, n in reversed(steps) if t <= edge - first), 0)
            window.sort()
            points.append({
                "i": b + 1, "at": edge, "calls": calls, "outcomes": dict(outcomes), "cold_starts": cold,
                "instances": level, "desired": None, "queue_depth": None, "compute_usd": compute, "llm_usd": llm,
                "p50_ms": window[max(0, -(-len(window) // 2) - 1)] if window else None,
                "p95_ms": window[max(0, -(-len(window) * 95 // 100) - 1)] if window else None})
        out[pattern] = {"profile": profiles.get(pattern, ""), "interval_s": width, "points": points}
    return out


def failures(report: Mapping[str, Any], limit: int = 20) -> list[tuple[str, str, int, str]]:
    """(pattern, outcome, count, first error line) for each failure kind, most frequent first."""
    seen: dict[tuple[str, str], list[Any]] = {}
    for pattern, recs in records_by_pattern(report).items():
        for r in recs:
            if r["ok"] or r.get("trigger", "invoke") != "invoke":
                continue
            entry = seen.setdefault((pattern, r["outcome"]), [0, ""])
            entry[0] += 1
            if not entry[1] and r.get("error"):
                entry[1] = str(r["error"]).strip().splitlines()[0][:200]
    rows = [(p, o, int(n), msg) for (p, o), (n, msg) in seen.items()]
    return sorted(rows, key=lambda row: -row[2])[:limit]


def readiness(report: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``readiness`` section (``harness readiness``, the pytest ``readiness`` fixture), or None."""
    section = report.get("readiness")
    return dict(section) if isinstance(section, Mapping) else None
