"""A self-contained HTML report: inline CSS and inline SVG charts, no script, no CDN; it opens offline.

Charts: latency distribution per pattern, outcomes per pattern, cost per 1k calls, cold-start share and
instances in use over time; for a load run, the patterns over time (``run.load.series``, drawn by
``emulators.timechart`` as the live Locust tab and ``/_harness/dashboard`` draw them). Then the summary
table, the failures by kind, the tests, and each deployment's profile. Everything shown is read from the
(redacted) JSON model and HTML-escaped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from emulators import timechart

from . import charts, model
from .markdown import summary_rows

__all__ = ["render_html"]

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto; max-width: 1180px;
       color: #111827; background: #ffffff; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
.meta { color: #4b5563; font-size: 13px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 16px; }
figure { margin: 0; border: 1px solid #e5e7eb; border-radius: 8px; padding: 10px; overflow-x: auto; }
figcaption { font-weight: 600; margin-bottom: 6px; }
figure svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; font-size: 13px; width: 100%; }
th, td { border-bottom: 1px solid #e5e7eb; padding: 5px 8px; text-align: right; vertical-align: top; }
th:first-child, td:first-child, td.l, th.l { text-align: left; }
th { background: #f9fafb; }
.bad { color: #b91c1c; font-weight: 600; } .ok { color: #047857; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
pre { background: #f9fafb; padding: 8px; overflow-x: auto; }
"""

_HEAD = ("pattern", "profile", "calls", "ok", "failures by kind", "p50 ms", "p95 ms", "p99 ms", "cold starts",
         "cost / 1k calls", "LLM tokens in / out")


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], left: Sequence[int] = (0,)) -> str:
    th = "".join(f'<th class="{"l" if i in left else ""}">{escape(h)}</th>' for i, h in enumerate(head))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"l" if i in left else ""}">{escape(c)}</td>' for i, c in enumerate(r))
        + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _figure(caption: str, svg: str) -> str:
    return f"<figure><figcaption>{escape(caption)}</figcaption>{svg}</figure>"


def _charts(report: Mapping[str, Any]) -> str:
    sums = model.summaries(report)
    figs = [
        _figure("Latency distribution per pattern (platform ms, log scale; ticks: p50, p95, p99)",
                charts.latency_chart(model.latencies(report))),
        _figure("Outcomes per pattern", charts.outcomes_chart({p: s.get("outcomes", {}) for p, s in sums.items()})),
        _figure("Cost per 1,000 calls (USD, compute + requests + LLM + fixed)",
                charts.bar_chart({p: float(s["cost_per_1k_usd"]) for p, s in sums.items()},
                                 "Cost per 1k calls", "${:,.4f}")),
        _figure("Cold-start share of calls",
                charts.bar_chart({p: float(s["cold_start_share"]) for p, s in sums.items()},
                                 "Cold-start share", "{:.0%}", maximum=1.0)),
        _figure("Instances in use over time (from each instance's first call to its last)",
                charts.instances_chart(model.instance_series(report))),
    ]
    return '<div class="grid">' + "".join(figs) + "</div>"


def _over_time(report: Mapping[str, Any]) -> str:
    """A load run's patterns over time: the charts the Locust Patterns tab and /_harness/dashboard drew live."""
    found = model.series(report)
    how = ("Each gateway sampled every 0.5 wall s during the run (the live charts of the Locust Patterns tab "
           "and /_harness/dashboard)")
    if not found:
        found = model.series_from_records(report)
        how = ("Rebuilt from the records (no gateway sampled this run): instances are those running a call, "
               "and the records know no desired replicas or queue depth")
    if not found:
        return ""
    return ("<h2>Over time</h2>"
            f'<p class="meta">{escape(how)}; one time axis (wall seconds) for every pattern, one value axis per '
            f'row.</p><div class="over-time">{timechart.render(found)}</div>')


def _tests(report: Mapping[str, Any]) -> str:
    tests = report.get("tests") or []
    if not tests:
        return ""
    rows = [[t["nodeid"], t.get("pattern") or "-", t.get("outcome", ""), str(t.get("calls", 0)),
             f"{t.get('latency_ms', 0.0):,.1f}", f"${t.get('cost_usd', 0.0):,.6f}", t.get("message") or ""]
            for t in tests]
    return "<h2>Tests</h2>" + _table(("test", "pattern", "outcome", "calls", "latency ms (max)", "cost", "why"),
                                     rows, left=(0, 1, 2, 6))


def _profiles(report: Mapping[str, Any]) -> str:
    parts = []
    for dep in report.get("deployments") or ():
        label = f"{dep.get('pattern', '')}: {dep.get('profile_name', '')}"
        if dep.get("overrides"):
            label += " with " + ", ".join(f"{k}={v}" for k, v in dep["overrides"].items())
        body = json.dumps(dep.get("profile", {}), indent=1, default=str)
        parts.append(f"<details><summary>{escape(label)}</summary><pre>{escape(body)}</pre></details>")
    return "<h2>Profiles</h2>" + "".join(parts) if parts else ""


def _readiness(report: Mapping[str, Any]) -> str:
    """The readiness section: the checklist, the recommendation, the crossover charts (steady, bursty)."""
    sec = model.readiness(report)
    if not sec:
        return ""
    from ..readiness.chart import crossover_chart  # only reports with a readiness section need it

    patterns = list(sec.get("patterns") or {})
    by: dict[str, dict[str, Mapping[str, Any]]] = {}
    for item in sec.get("checklist") or ():
        by.setdefault(item["name"], {})[item["pattern"]] = item
    head = "".join(f"<th class=\"l\">{escape(p)} ({escape(str(sec['patterns'][p]['profile']))})</th>" for p in patterns)
    body = []
    for name, cells in by.items():
        tds = []
        for p in patterns:
            it = cells.get(p)
            if it is None:
                tds.append("<td>-</td>")
                continue
            cls = {"pass": "ok", "fail": "bad"}.get(it["verdict"], "")
            more = "".join(f"<li>{escape(str(d))}</li>" for d in it.get("details") or ())
            tds.append(f'<td class="l"><span class="{cls}">{escape(it["verdict"].upper())}</span> '
                       f"{escape(str(it['evidence']))}" + (f"<details><summary>evidence</summary><ul>{more}</ul>"
                                                           "</details>" if more else "") + "</td>")
        body.append(f"<tr><td class=\"l\">{escape(name)}</td>{''.join(tds)}</tr>")
    traffic = sec.get("traffic") or {}
    budget = sec.get("budget_usd")
    parts = ["<h2>Readiness</h2>",
             f'<p class="meta">traffic {escape(str(traffic.get("text", "")))} ({traffic.get("per_day", 0):,.0f} '
             f"tasks/day, {escape(str(traffic.get('shape', '')))}); budget "
             f"{escape(f'${budget:,.2f}/month' if budget is not None else 'none')}; LLM tier "
             f"{escape(str((sec.get('tier') or {}).get('name', '')))}</p>",
             f'<table><thead><tr><th class="l">item</th>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>']
    rec = sec.get("recommendation") or {}
    choice, runner = rec.get("choice"), rec.get("runner_up")
    lines = [f"<p><b>Recommended: {escape(choice['pattern'])} on {escape(choice['profile'])}</b> "
             f"(${choice['monthly_compute_usd']:,.2f}/month compute + ${choice['monthly_llm_usd']:,.2f}/month LLM)"
             + (f"; runner-up {escape(runner['pattern'])} on {escape(runner['profile'])} "
                f"(${runner['monthly_usd']:,.2f}/month)" if runner else "") + "</p>"
             if choice else "<p class=\"bad\">No pattern meets the limits and the budget.</p>"]
    lines.append("<ul>" + "".join(f"<li>{escape(str(r))}</li>" for r in rec.get("reasons") or ()) + "</ul>")
    if rec.get("would_change"):
        lines.append("<p>What would change the choice:</p><ul>"
                     + "".join(f"<li>{escape(str(w))}</li>" for w in rec["would_change"]) + "</ul>")
    parts += lines
    proj = sec.get("projection") or {}
    figs = []
    for shape in ("steady", "bursty"):
        if proj.get(shape):
            cross = [c for c in proj.get("crossovers") or () if c.get("shape") == shape]
            figs.append(_figure(f"Monthly compute cost by traffic, {shape} (USD, log-log; circles: crossovers)",
                                crossover_chart(proj[shape], cross, traffic.get("per_day"))))
    if figs:
        parts.append('<div class="grid">' + "".join(figs) + "</div>")
    if proj.get("llm_at_traffic") is not None:
        parts.append(f'<p class="meta">LLM cost, the same on every pattern and not in the chart: '
                     f"${proj['llm_at_traffic']:,.2f}/month at your traffic</p>")
    return "\n".join(parts)


def render_html(report: Mapping[str, Any], comparison: str | None = None) -> str:
    """The whole report as one HTML document (``comparison``: optional preformatted baseline deltas)."""
    run = report.get("run") or {}
    created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(report.get("created_at") or 0)))
    facts = [f"created {created}", f"harness {run.get('harness_version', '?')}",
             f"Python {report.get('python', '?')}", str(report.get("platform", ""))]
    if run.get("agent"):
        facts.insert(0, f"agent {run['agent']}")
    if run.get("time_scale") is not None:
        facts.append(f"time scale {run['time_scale']:g} wall s per platform s")
    elif run.get("clock") == "virtual":
        facts.append("virtual clock")
    sums = model.summaries(report)
    fails = model.failures(report)
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # No network at all: the report must render identically offline and inside CI artifact viewers.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "img-src data:\">",
        f"<title>Harness report: {escape(', '.join(sums) or 'no deployments')}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Agent deployment harness report</h1>",
        f'<p class="meta">{escape(" · ".join(facts))}</p>',
        f'<p class="meta">schema {escape(str(report.get("schema", "")))} v{escape(str(report.get("version")))}; '
        "latency and cost in platform terms; secrets redacted</p>",
        "<h2>Summary</h2>",
        _table(_HEAD, summary_rows(sums), left=(0, 1, 4)) if sums else "<p>No deployment ran.</p>",
        "<h2>Charts</h2>", _charts(report),
        _over_time(report),
    ]
    if fails:
        parts += ["<h2>Failures</h2>",
                  _table(("pattern", "outcome", "count", "first error"),
                         [(p, o, str(n), msg) for p, o, n, msg in fails], left=(0, 1, 3))]
    parts.append(_tests(report))
    parts.append(_readiness(report))
    if comparison:
        parts += ["<h2>Baseline comparison</h2>", f"<pre>{escape(comparison)}</pre>"]
    parts += [_profiles(report), "</body></html>"]
    return "\n".join(p for p in parts if p)
