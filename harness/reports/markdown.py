"""Markdown rendering of a report: short enough for a CI job summary (``$GITHUB_STEP_SUMMARY``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import model

__all__ = ["render_markdown", "summary_rows"]

_COLUMNS = ("pattern", "profile", "calls", "ok", "failures", "p50 ms", "p95 ms", "p99 ms", "cold starts",
            "cost / 1k", "LLM tokens in / out")


def _cell(s: object) -> str:
    # A pipe or newline inside a cell would break the table.
    return str(s).replace("|", "\\|").replace("\n", " ")


def summary_rows(summaries: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    """One row of display strings per pattern (shared by the Markdown and HTML tables)."""
    rows = []
    for pattern, s in summaries.items():
        kinds = ", ".join(f"{k} {n}" for k, n in s.get("outcomes", {}).items() if k != "ok") or "-"
        rows.append([
            pattern, str(s.get("profile", "")), str(s["calls"]), str(s["ok"]), kinds,
            f"{s['latency_p50_ms']:,.1f}", f"{s['latency_p95_ms']:,.1f}", f"{s['latency_p99_ms']:,.1f}",
            f"{s['cold_starts']} ({s['cold_start_share']:.0%})", f"${s['cost_per_1k_usd']:,.4f}",
            f"{s.get('input_tokens', 0):,} / {s.get('output_tokens', 0):,}",
        ])
    return rows


def render_markdown(report: Mapping[str, Any], comparison: str | None = None) -> str:
    """The summary table per pattern, the failures by kind, failed tests and (if given) the comparison."""
    run = report.get("run") or {}
    lines = ["## Agent deployment harness", ""]
    facts = [f"harness {run.get('harness_version', '?')}", f"Python {report.get('python', '?')}"]
    if run.get("agent"):
        facts.insert(0, f"agent `{_cell(run['agent'])}`")
    if run.get("time_scale") is not None:
        facts.append(f"time scale {run['time_scale']:g}")
    elif run.get("clock") == "virtual":
        facts.append("virtual clock")
    lines += [" · ".join(facts), "", "Latency and cost are platform figures.", ""]
    sums = model.summaries(report)
    if sums:
        lines += ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * 2 + "---:|" * 2 + "---|" + "---:|" * 6]
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in summary_rows(sums)]
    else:
        lines.append("No deployment ran.")
    fails = model.failures(report)
    if fails:
        lines += ["", "### Failures", "", "| pattern | outcome | count | first error |", "|---|---|---:|---|"]
        lines += [f"| {p} | {o} | {n} | {_cell(msg)} |" for p, o, n, msg in fails]
    failed_tests = [t for t in report.get("tests") or () if t.get("outcome") == "failed"]
    if failed_tests:
        lines += ["", "### Failed tests", ""]
        lines += [f"- `{_cell(t['nodeid'])}` on **{t.get('pattern') or '?'}**: {_cell(t.get('message') or '')}"
                  for t in failed_tests]
    if comparison:
        lines += ["", "### Baseline comparison", "", comparison]
    return "\n".join(lines).rstrip() + "\n"
