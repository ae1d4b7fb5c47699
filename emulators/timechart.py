"""Time-series charts of ``Timeline`` points as inline SVG: one renderer for every view of a run over time.

The gateway's ``/_harness/dashboard``, the Locust "Patterns" tab and the offline HTML report all call
``render`` on the same timeline document (``{pattern: {"profile", "points"}}``), so the live and the offline
pictures are drawn the same way. No script and no dependency: Python writes the SVG, a page that wants it
live fetches the fragment again (the pages here every 2 s).

Layout: a row per figure (requests/s and failures/s by outcome kind, p50/p95 latency, instances with the
autoscaler's desired count, cold starts per interval, queue depth, cumulative cost compute vs LLM), a
column per pattern. Every chart shares one time axis (wall seconds since the first point of any pattern)
and each row one value axis, so the patterns compare at a glance. Each ``<svg>`` carries ``data-chart``,
``data-pattern`` and ``data-points`` (points drawn), which the browser tests read.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

__all__ = ["FIGURES", "OUTCOME_COLORS", "render", "rows"]

OUTCOME_COLORS = {
    "ok": "#2f9e6e", "agent_error": "#d64545", "init_error": "#a33b3b", "timeout": "#e08a1e",
    "gateway_timeout": "#f0b429", "oom": "#7b3fb3", "cpu_limit": "#b07fd9", "throttled": "#3b82c4",
    "payload_too_large": "#5aa0d8", "subrequest_limit": "#8fb8de", "crash": "#111827",
    "llm_rate_limited": "#c9a227", "dead_lettered": "#6b7280", "lost": "#ff00aa",
}
FIGURES = (  # (key, title): the rows, top to bottom
    ("rate", "Requests/s (line) and failures/s by kind"),
    ("latency", "Latency per interval, platform ms, log scale (p50 solid, p95 dashed)"),
    ("instances", "Live instances / replicas / workers (dashed: autoscaler's desired)"),
    ("cold", "Cold starts per interval"),
    ("queue", "Queue depth (waiting work)"),
    ("cost", "Cumulative cost, USD (compute solid, LLM dashed)"),
)
W, H = 340, 130  # one chart's viewBox; it scales to its column
_L, _R, _T, _B = 46, 8, 8, 20  # margins: value labels left, time labels below
_MAX_DRAWN = 400  # points per line: more are merged (cumulative counts keep rates exact)

Series = list[tuple[float, float | None]]


def _thin(points: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """At most ``_MAX_DRAWN`` points: every k-th (and the last); latency of merged intervals is their max."""
    if len(points) <= _MAX_DRAWN:
        return list(points)
    k = math.ceil(len(points) / _MAX_DRAWN)
    out: list[Mapping[str, Any]] = []
    for start in range(0, len(points), k):
        group = points[start:start + k]
        last = dict(group[-1])
        for q in ("p50_ms", "p95_ms"):
            vals = [p[q] for p in group if p.get(q) is not None]
            last[q] = max(vals) if vals else None
        out.append(last)
    return out


def rows(points: Sequence[Mapping[str, Any]], t0: float) -> dict[str, dict[str, Series]]:
    """The lines of each figure for one pattern: ``{figure: {line name: [(t, value or None), ...]}}``."""
    pts = _thin(points)
    out: dict[str, dict[str, Series]] = {key: {} for key, _ in FIGURES}
    kinds = sorted({k for p in pts for k in p.get("outcomes", {}) if k != "ok"})
    prev: Mapping[str, Any] | None = None
    for p in _rate_points(pts):
        t = float(p["at"]) - t0
        if prev is not None:
            dt = max(1e-6, float(p["at"]) - float(prev["at"]))
            out["rate"].setdefault("requests", []).append((t, (p["calls"] - prev["calls"]) / dt))
            for k in kinds:
                n = p.get("outcomes", {}).get(k, 0) - prev.get("outcomes", {}).get(k, 0)
                out["rate"].setdefault(k, []).append((t, n / dt))
            out["cold"].setdefault("cold starts", []).append((t, float(p["cold_starts"] - prev["cold_starts"])))
        prev = p
    for p in pts:
        t = float(p["at"]) - t0
        out["latency"].setdefault("p50", []).append((t, p.get("p50_ms")))
        out["latency"].setdefault("p95", []).append((t, p.get("p95_ms")))
        out["instances"].setdefault("instances", []).append((t, float(p.get("instances", 0))))
        if p.get("desired") is not None:
            out["instances"].setdefault("desired", []).append((t, float(p["desired"])))
        if p.get("queue_depth") is not None:
            out["queue"].setdefault("queue depth", []).append((t, float(p["queue_depth"])))
        out["cost"].setdefault("compute", []).append((t, float(p.get("compute_usd", 0.0))))
        out["cost"].setdefault("LLM", []).append((t, float(p.get("llm_usd", 0.0))))
    return out


def _rate_points(pts: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The points rates are measured between: one much closer to the previous than the usual interval (a
    reader's extra point at the end of a run) merges into its neighbour, so a few calls over a few
    milliseconds do not draw as a spike of thousands a second."""
    if len(pts) < 3:
        return list(pts)
    gaps = sorted(float(b["at"]) - float(a["at"]) for a, b in itertools.pairwise(pts))
    short = 0.5 * gaps[len(gaps) // 2]
    kept = [pts[0]]
    for p in pts[1:]:
        if float(p["at"]) - float(kept[-1]["at"]) >= short:
            kept.append(p)
        elif p is pts[-1] and len(kept) > 1:
            kept[-1] = p  # the last point still counts: it ends the interval before it
    return kept


_STYLE = {  # line name -> (colour, dash)
    "requests": ("#1f2937", ""), "p50": ("#3b6fd4", ""), "p95": ("#d4813b", "5 3"),
    "instances": ("#2f9e6e", ""), "desired": ("#111827", "4 3"), "cold starts": ("#c43b5d", ""),
    "queue depth": ("#9b4fc4", ""), "compute": ("#3b6fd4", ""), "LLM": ("#d4813b", "5 3"),
}


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) < 1e-3:
        return f"{v:.1e}"
    if abs(v) < 0.01:
        return f"{v:.1g}"
    if abs(v) < 10:
        return f"{v:.2g}" if abs(v) < 1 else f"{v:.1f}".rstrip("0").rstrip(".")
    return f"{v:,.0f}"


def _text(x: float, y: float, s: str, anchor: str = "start", fill: str = "#4b5563") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}">{escape(s)}</text>'


def _chart(key: str, pattern: str, lines: Mapping[str, Series], t_max: float, scale: tuple[float, float]) -> str:
    """One figure of one pattern; ``scale``: (0, top) linear, or (lo, hi) with lo > 0 on a log axis (latency)."""
    drawn = sum(1 for s in lines.values() for _, v in s if v is not None)
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
            'style="width:100%;max-width:520px;height:auto;display:block" '
            f'role="img" aria-label="{escape(pattern)}: {escape(key)}" data-chart="{key}" '
            f'data-pattern="{escape(pattern)}" data-points="{drawn}" font-family="system-ui, sans-serif" '
            f'font-size="10">')
    x0, x1, y0, y1 = _L, W - _R, H - _B, _T
    body = [f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="#fafafa" stroke="#e5e7eb"/>']
    if not drawn:
        what = "no queue figures" if key == "queue" else "no data yet"
        return head + "".join(body) + _text((x0 + x1) / 2, (y0 + y1) / 2 + 4, what, "middle") + "</svg>"
    lo, top = scale
    top = top if top > lo else lo + 1.0
    log = lo > 0  # latency: one burst's queueing must not flatten the rest of the run into the axis

    def x(t: float) -> float:
        return x0 + t / t_max * (x1 - x0)

    def y(v: float) -> float:
        if log:
            share = (math.log10(min(max(v, lo), top)) - math.log10(lo)) / (math.log10(top) - math.log10(lo))
        else:
            share = min(v, top) / top
        return y0 - share * (y0 - y1)

    ticks = [10.0 ** e for e in range(round(math.log10(lo)) + 1, round(math.log10(top)))] if log else [top / 2]
    for tick in [*ticks, top]:
        body.append(f'<line x1="{x0}" y1="{y(tick):.1f}" x2="{x1}" y2="{y(tick):.1f}" stroke="#e5e7eb"/>')
    if log and len(ticks) <= 4:
        body += [_text(x0 - 4, y(tick) + 3, _fmt(tick), "end") for tick in ticks]
    body += [_text(x0 - 4, y1 + 8, _fmt(top), "end"), _text(x0 - 4, y0, _fmt(lo) if log else "0", "end"),
             _text(x0, H - 6, "0 s"), _text(x1, H - 6, f"{t_max:,.0f} s" if t_max >= 10 else f"{t_max:.1f} s", "end")]
    for name, series in lines.items():
        if key == "cold":  # counts per interval: bars, so a spike of cold starts reads as one
            bw = max(1.5, (x1 - x0) / max(1, len(series)) * 0.8)
            for t, v in series:
                if v:
                    body.append(f'<rect x="{x(t) - bw:.1f}" y="{y(v):.1f}" width="{bw:.1f}" '
                                f'height="{y0 - y(v):.1f}" fill="#c43b5d"><title>{v:g} at {t:.1f} s</title></rect>')
            continue
        colour, dash = _STYLE.get(name, (OUTCOME_COLORS.get(name, "#9ca3af"), ""))
        step = key in ("instances", "queue")  # gauges hold their value until the next sample
        runs: list[list[str]] = [[]]
        last: float | None = None
        for t, v in series:
            if v is None:
                if runs[-1]:
                    runs.append([])
                last = None
                continue
            if step and last is not None:
                runs[-1].append(f"{x(t):.1f},{y(last):.1f}")
            runs[-1].append(f"{x(t):.1f},{y(v):.1f}")
            last = v
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        for run in runs:
            if len(run) == 1:
                cx, cy = run[0].split(",")
                body.append(f'<circle cx="{cx}" cy="{cy}" r="1.8" fill="{colour}"/>')
            elif run:
                body.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="{colour}" '
                            f'stroke-width="1.6"{dash_attr}><title>{escape(name)}</title></polyline>')
    legend = [n for n in lines if n not in ("requests",) and key in ("rate", "instances", "cost", "latency")]
    lx = x0 + 4.0
    for n in legend:
        colour = _STYLE.get(n, (OUTCOME_COLORS.get(n, "#9ca3af"), ""))[0]
        body.append(f'<rect x="{lx:.1f}" y="{y1 + 3}" width="8" height="8" fill="{colour}"/>')
        body.append(_text(lx + 10, y1 + 10, n, fill="#111827"))
        lx += 18 + 6.0 * len(n)
    return head + "".join(body) + "</svg>"


def _scale(per_pattern: Sequence[Mapping[str, Series]], key: str) -> tuple[float, float]:
    """One value axis for a row: (0, peak) linear, or whole decades around the values for latency (log)."""
    vals = [v for lines in per_pattern for s in lines.values() for _, v in s if v is not None]
    if key == "latency":
        positive = [v for v in vals if v > 0]
        if not positive:
            return 0.0, 1.0
        lo = 10.0 ** math.floor(math.log10(min(positive)))
        return lo, max(lo * 10, 10.0 ** math.ceil(math.log10(max(positive))))
    return 0.0, max(vals, default=0.0) * (1.0 if key == "cold" else 1.05)


def render(timelines: Mapping[str, Mapping[str, Any]], only: str | None = None,
           figures: Callable[[str], bool] | None = None) -> str:
    """The charts of ``{pattern: {"profile": name, "points": [...]}}`` as an HTML fragment (inline CSS and SVG).

    ``only`` keeps one pattern; ``figures`` filters the rows by key. Patterns without points still get
    their column ("no data yet"), so a page shows every pattern from the start.
    """
    shown = {p: tl for p, tl in timelines.items() if only in (None, "", p)}
    if not shown:
        return '<p class="tc-empty">no timeline yet</p>'
    firsts = [float(tl["points"][0]["at"]) for tl in shown.values() if tl.get("points")]
    lasts = [float(tl["points"][-1]["at"]) for tl in shown.values() if tl.get("points")]
    t0 = min(firsts, default=0.0)
    t_max = max(1.0, max(lasts, default=0.0) - t0)
    per = {p: rows(tl.get("points") or [], t0) for p, tl in shown.items()}
    cols = len(shown)
    parts = [f'<div class="tc-grid" style="display:grid;grid-template-columns:repeat({cols},minmax(0,1fr));'
             'gap:4px 10px;align-items:start">']
    for p, tl in shown.items():
        parts.append(f'<div class="tc-head" style="font-weight:600">{escape(p)} '
                     f'<span style="font-weight:400;color:#6b7280">{escape(str(tl.get("profile", "")))}</span></div>')
    for key, title in FIGURES:
        if figures is not None and not figures(key):
            continue
        parts.append(f'<div class="tc-title" style="grid-column:1/-1;font-size:12px;color:#374151;'
                     f'margin-top:6px">{escape(title)}</div>')
        scale = _scale([per[p][key] for p in shown], key)
        for p in shown:
            parts.append(f'<div class="tc-cell">{_chart(key, p, per[p][key], t_max, scale)}</div>')
    parts.append("</div>")
    return "".join(parts)
