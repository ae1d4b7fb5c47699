"""The crossover chart: monthly compute cost per profile over traffic volume, as inline SVG.

Drawn from the report's JSON (``readiness.projection``) with the report charts' helpers, so the HTML
report stays script-free and offline. Both axes are logarithmic: costs span decades between a
pay-per-use function at 10 tasks a day and a warm pool at a million.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from ..reports.charts import WIDTH, _empty, _nice_log_ticks, _svg, _text, pattern_color

__all__ = ["crossover_chart"]


def crossover_chart(series: Mapping[str, Sequence[Sequence[float]]], crossings: Sequence[Mapping[str, Any]] = (),
                    traffic_per_day: float | None = None, title: str = "Monthly compute cost by traffic") -> str:
    """A log-log line per profile ``(tasks/day, USD/month)``; crossings as circles; the traffic as a rule."""
    data = {name: [(float(x), float(y)) for x, y in pts if x > 0 and y > 0] for name, pts in series.items()}
    data = {k: v for k, v in data.items() if v}
    if not data:
        return _empty(title)
    xs = [x for v in data.values() for x, _ in v]
    ys = [y for v in data.values() for _, y in v]
    x_lo, x_hi = 10 ** math.floor(math.log10(min(xs))), 10 ** math.ceil(math.log10(max(xs)))
    y_lo, y_hi = 10 ** math.floor(math.log10(min(ys))), 10 ** math.ceil(math.log10(max(ys)))
    y_hi = max(y_hi, y_lo * 10)
    left, right, top, bottom = 70, WIDTH - 190, 14, 300

    def px(v: float) -> float:
        return left + (math.log10(v) - math.log10(x_lo)) / (math.log10(x_hi) - math.log10(x_lo)) * (right - left)

    def py(v: float) -> float:
        return bottom - (math.log10(v) - math.log10(y_lo)) / (math.log10(y_hi) - math.log10(y_lo)) * (bottom - top)

    body = [f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#9ca3af"/>',
            f'<line x1="{left}" y1="{bottom}" x2="{left}" y2="{top}" stroke="#9ca3af"/>']
    for t in _nice_log_ticks(x_lo, x_hi):
        if t in (1, 10) or math.log10(t).is_integer():
            body.append(f'<line x1="{px(t):.1f}" y1="{top}" x2="{px(t):.1f}" y2="{bottom}" stroke="#f3f4f6"/>')
            body.append(_text(px(t), bottom + 16, f"{t:,.0f}", "middle", fill="#374151"))
    for t in _nice_log_ticks(y_lo, y_hi):
        if math.log10(t).is_integer():
            body.append(f'<line x1="{left}" y1="{py(t):.1f}" x2="{right}" y2="{py(t):.1f}" stroke="#f3f4f6"/>')
            body.append(_text(left - 6, py(t) + 4, f"${t:,.4g}", "end", fill="#374151"))
    body.append(_text((left + right) / 2, bottom + 34, "tasks per day", "middle", fill="#374151"))
    if traffic_per_day and x_lo <= traffic_per_day <= x_hi:
        x = px(traffic_per_day)
        body.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="#111827" '
                    f'stroke-dasharray="4 3"><title>your traffic: {traffic_per_day:,.0f} tasks/day</title></line>')
        body.append(_text(x + 4, top + 10, "your traffic", font_size="10"))
    for i, (name, pts) in enumerate(data.items()):
        color = pattern_color(i)
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        body.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2">'
                    f"<title>{escape(name)}</title></polyline>")
        for x, y in pts:
            body.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2" fill="{color}">'
                        f"<title>{escape(name)}: {x:,.0f} tasks/day, ${y:,.6g}/month</title></circle>")
        body.append(f'<rect x="{right + 14}" y="{top + 18 * i}" width="12" height="12" fill="{color}"/>')
        body.append(_text(right + 30, top + 18 * i + 10, name))
    for c in crossings:
        n, usd = float(c["per_day"]), float(c["monthly_usd"])
        if x_lo <= n <= x_hi and y_lo <= usd <= y_hi:
            body.append(f'<circle cx="{px(n):.1f}" cy="{py(usd):.1f}" r="5" fill="none" stroke="#111827" '
                        f'stroke-width="2"><title>{escape(str(c["a"]))} = {escape(str(c["b"]))} at {n:,.0f} '
                        f"tasks/day, ${usd:,.2f}/month</title></circle>")
    return _svg(bottom + 44, body, title)
