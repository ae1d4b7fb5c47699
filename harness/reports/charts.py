"""Charts as inline SVG strings, drawn in Python: the HTML report needs no CDN, no JS and opens offline.

Each function takes plain numbers per pattern (already computed from the report model) and returns one
``<svg>`` element. Text is escaped; sizes are fixed so the layout does not depend on fonts loading.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

from emulators.timechart import OUTCOME_COLORS  # one colour per outcome kind in every chart

__all__ = ["OUTCOME_COLORS", "bar_chart", "instances_chart", "latency_chart", "outcomes_chart"]

WIDTH = 760
_LABEL_W = 110  # left gutter for pattern names
_PATTERN_COLORS = ("#3b6fd4", "#d4813b", "#2f9e6e", "#9b4fc4", "#c43b5d", "#6b7280")


def pattern_color(i: int) -> str:
    """The colour of the i-th pattern, the same in every chart."""
    return _PATTERN_COLORS[i % len(_PATTERN_COLORS)]


def _svg(height: int, body: list[str], title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}" '
            f'font-family="system-ui, sans-serif" font-size="12">'
            f"<title>{escape(title)}</title>{''.join(body)}</svg>")


def _text(x: float, y: float, s: str, anchor: str = "start", **attrs: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{escape(v)}"' for k, v in attrs.items())
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{escape(s)}</text>'


def _empty(title: str) -> str:
    return _svg(40, [_text(10, 24, "no data", fill="#6b7280")], title)


def _nice_log_ticks(lo: float, hi: float) -> list[float]:
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    decades = last - first
    # About a dozen labels fit the axis: 1-2-5 per decade for a narrow range, fewer decades for a wide one.
    mults = (1, 2, 5) if decades <= 4 else (1,)
    step = max(1, math.ceil(decades / 12))
    ticks = [10.0 ** e * m for e in range(first, last + 1, step) for m in mults]
    return [t for t in ticks if lo <= t <= hi]


def latency_chart(latencies: Mapping[str, Sequence[float]], title: str = "Latency distribution (ms)") -> str:
    """One strip per pattern on a log axis: every call a dot, p50 / p95 / p99 as ticks."""
    data = {p: sorted(v for v in vals if v > 0) for p, vals in latencies.items()}
    data = {p: v for p, v in data.items() if v}
    if not data:
        return _empty(title)
    lo = 10 ** math.floor(math.log10(min(v[0] for v in data.values())))
    hi = 10 ** math.ceil(math.log10(max(v[-1] for v in data.values()) * 1.0001))
    hi = max(hi, lo * 10)
    x0, x1, row_h = _LABEL_W, WIDTH - 20, 46

    def x(v: float) -> float:
        return x0 + (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * (x1 - x0)

    height = 30 + row_h * len(data) + 36
    body: list[str] = []
    for t in _nice_log_ticks(lo, hi):
        body.append(f'<line x1="{x(t):.1f}" y1="20" x2="{x(t):.1f}" y2="{height - 28}" stroke="#e5e7eb"/>')
        body.append(_text(x(t), height - 12, f"{t:g}", "middle", fill="#374151"))
    for i, (pattern, vals) in enumerate(data.items()):
        cy = 30 + row_h * i + row_h / 2
        body.append(_text(8, cy + 4, pattern, font_weight="600"))
        step = max(1, len(vals) // 1500)  # at most ~1,500 dots a row keeps the file small
        for j, v in enumerate(vals[::step]):
            jitter = ((j * 7919) % 23 - 11) * 1.1  # deterministic spread, so reruns render identically
            body.append(f'<circle cx="{x(v):.1f}" cy="{cy + jitter:.1f}" r="2.2" '
                        f'fill="{pattern_color(i)}" fill-opacity="0.45"/>')
        for q, dash in ((50, ""), (95, ' stroke-dasharray="4 2"'), (99, ' stroke-dasharray="1 2"')):
            v = vals[max(0, math.ceil(q / 100 * len(vals)) - 1)]
            body.append(f'<line x1="{x(v):.1f}" y1="{cy - 17:.1f}" x2="{x(v):.1f}" y2="{cy + 17:.1f}" '
                        f'stroke="#111827" stroke-width="2"{dash}><title>p{q} {v:,.1f} ms</title></line>')
            # p99 labelled below the strip: it often sits on p95 at the tail.
            label_y = cy + 27 if q == 99 else cy - 19
            body.append(_text(x(v), label_y, f"p{q}", "middle", font_size="10", fill="#111827"))
    return _svg(height, body, title)


def outcomes_chart(outcomes: Mapping[str, Mapping[str, int]], title: str = "Outcomes per pattern") -> str:
    """A 100% stacked bar per pattern, one segment per outcome kind, with a legend."""
    rows = {p: {k: n for k, n in o.items() if n} for p, o in outcomes.items()}
    rows = {p: o for p, o in rows.items() if o}
    if not rows:
        return _empty(title)
    kinds = [k for k in OUTCOME_COLORS if any(k in o for o in rows.values())]
    kinds += sorted({k for o in rows.values() for k in o} - set(kinds))
    x0, x1, row_h = _LABEL_W, WIDTH - 20, 34
    legend_y = 20 + row_h * len(rows) + 14
    body: list[str] = []
    for i, (pattern, o) in enumerate(rows.items()):
        y, total, cursor = 16 + row_h * i, sum(o.values()), float(x0)
        body.append(_text(8, y + 17, pattern, font_weight="600"))
        for k in kinds:
            n = o.get(k, 0)
            if not n:
                continue
            w = n / total * (x1 - x0)
            body.append(f'<rect x="{cursor:.1f}" y="{y}" width="{w:.1f}" height="24" '
                        f'fill="{OUTCOME_COLORS.get(k, "#9ca3af")}"><title>{escape(k)}: {n}</title></rect>')
            if w > 34:
                body.append(_text(cursor + w / 2, y + 16, str(n), "middle", fill="#ffffff"))
            cursor += w
    lx = 8.0
    for k in kinds:
        body.append(f'<rect x="{lx:.1f}" y="{legend_y}" width="12" height="12" '
                    f'fill="{OUTCOME_COLORS.get(k, "#9ca3af")}"/>')
        body.append(_text(lx + 16, legend_y + 10, k))
        lx += 16 + 7.2 * len(k) + 18
    return _svg(legend_y + 24, body, title)


def bar_chart(values: Mapping[str, float], title: str, fmt: str = "{:,.4f}", *, maximum: float | None = None) -> str:
    """A horizontal bar per pattern, the value printed at its end (cost per 1k calls, cold-start share)."""
    if not values:
        return _empty(title)
    x0, x1, row_h = _LABEL_W, WIDTH - 110, 30
    top = maximum if maximum is not None else max(values.values())
    top = top if top > 0 else 1.0
    body: list[str] = []
    for i, (pattern, v) in enumerate(values.items()):
        y = 10 + row_h * i
        w = max(0.0, min(1.0, v / top)) * (x1 - x0)
        body.append(_text(8, y + 15, pattern, font_weight="600"))
        body.append(f'<rect x="{x0}" y="{y}" width="{max(w, 1.0):.1f}" height="20" fill="{pattern_color(i)}">'
                    f"<title>{escape(pattern)}: {escape(fmt.format(v))}</title></rect>")
        body.append(_text(x0 + w + 6, y + 15, fmt.format(v)))
    return _svg(20 + row_h * len(values), body, title)


def instances_chart(series: Mapping[str, Sequence[tuple[float, int]]],
                    title: str = "Instances in use over time") -> str:
    """A step line per pattern: (seconds since the first call, instances in use) points."""
    data = {p: list(s) for p, s in series.items() if s}
    if not data:
        return _empty(title)
    t_max = max(t for s in data.values() for t, _ in s) or 1.0
    n_max = max(max(n for _, n in s) for s in data.values()) or 1
    x0, x1, y0, y1 = 50, WIDTH - 130, 200, 14

    def x(t: float) -> float:
        return x0 + t / t_max * (x1 - x0)

    def y(n: float) -> float:
        return y0 - n / n_max * (y0 - y1)

    body = [f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#9ca3af"/>',
            f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="#9ca3af"/>',
            _text(x0 - 6, y1 + 4, str(n_max), "end"), _text(x0 - 6, y0 + 4, "0", "end"),
            _text(x0, y0 + 18, "0 s", "middle"), _text(x1, y0 + 18, f"{t_max:,.2f} s (wall)", "middle")]
    for i, (pattern, s) in enumerate(data.items()):
        pts: list[str] = []
        prev = 0
        for t, n in s:
            pts += [f"{x(t):.1f},{y(prev):.1f}", f"{x(t):.1f},{y(n):.1f}"]
            prev = n
        body.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="{pattern_color(i)}" '
                    f'stroke-width="2"><title>{escape(pattern)}</title></polyline>')
        body.append(f'<rect x="{x1 + 14}" y="{y1 + 18 * i}" width="12" height="12" fill="{pattern_color(i)}"/>')
        body.append(_text(x1 + 30, y1 + 18 * i + 10, pattern))
    return _svg(y0 + 26, body, title)
