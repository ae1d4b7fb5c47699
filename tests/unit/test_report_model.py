"""The JSON report model and its renderers: versioned shape, per-pattern merge, v1 reading, Markdown, HTML."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from emulators.errors import ConfigError
from emulators.records import Cost, Record, summarize
from harness.reports import REPORT_SCHEMA, REPORT_VERSION, DeploymentRun, build_report, load_report, write_report
from harness.reports.html import render_html
from harness.reports.markdown import render_markdown


def rec(pattern: str = "serverless", outcome: str = "ok", latency: float = 10.0, **kw: Any) -> Record:
    return Record(ok=outcome == "ok", outcome=outcome, latency_ms=latency, pattern=pattern, profile="aws-lambda",
                  cost=Cost(compute_usd=0.001), started_at=100.0 + latency / 1000, ended_at=100.5,
                  instance_id="i-0001", **kw)


def run(pattern: str, records: list[Record], **kw: Any) -> DeploymentRun:
    return DeploymentRun(summarize(records, pattern=pattern, profile="aws-lambda"), records,
                         {"name": "aws-lambda", "seed": 7}, time_scale=0.01, **kw)


def test_report_has_the_versioned_shape() -> None:
    """A report carries schema, version, run metadata, per-pattern summaries, deployments, records, tests."""
    report = build_report([run("serverless", [rec(), rec(outcome="timeout", error="Task timed out")])],
                          agent="a.py:agent", tests=[{"nodeid": "t", "outcome": "passed"}])
    assert report["schema"] == REPORT_SCHEMA and report["version"] == REPORT_VERSION == 2
    meta = report["run"]
    assert meta["agent"] == "a.py:agent" and meta["time_scale"] == 0.01 and meta["seed"] == 7
    assert {"harness_version", "python", "platform", "machine", "profiles"} <= set(meta)
    assert meta["profiles"] == {"serverless": "aws-lambda"}
    assert report["summaries"]["serverless"]["calls"] == 2
    [dep] = report["deployments"]
    assert len(dep["records"]) == 2 and dep["summary"]["outcomes"] == {"ok": 1, "timeout": 1}
    assert report["tests"] == [{"nodeid": "t", "outcome": "passed"}]
    json.dumps(report)  # JSON-compatible throughout


def test_deployments_of_one_pattern_merge_into_one_summary() -> None:
    """Two deployments of a pattern (two modules) give one summary computed from all their records."""
    report = build_report([run("serverless", [rec(latency=10)]), run("serverless", [rec(latency=30)])])
    s = report["summaries"]["serverless"]
    assert s["calls"] == 2 and s["latency_max_ms"] == 30
    assert len(report["deployments"]) == 2


def test_a_version_1_report_still_loads(tmp_path: Path) -> None:
    """A report written before the versioned schema loads, with its per-pattern summaries derived."""
    records = [rec(), rec(outcome="crash")]
    v1 = {"version": 1, "created_at": 0, "python": "3.11", "platform": "x", "deployments": [
        {"summary": summarize(records).to_json(), "profile": {}, "records": [r.to_json() for r in records]}]}
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(v1))
    assert load_report(path)["summaries"]["serverless"]["failures"] == 1


@pytest.mark.parametrize(("content", "message"), [
    (None, "does not exist"), ("<html>", "not valid JSON"), ('{"version": 99}', "has version 99"),
])
def test_a_bad_report_file_is_a_config_error(tmp_path: Path, content: str | None, message: str) -> None:
    """Loading a missing, non-JSON or unknown-version report says what is wrong."""
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_report(path)


def test_write_report_picks_the_renderer_by_suffix(tmp_path: Path) -> None:
    """.json, .md and .html each get their renderer; an unknown suffix is refused."""
    report = build_report([run("serverless", [rec()])])
    assert json.loads(write_report(report, tmp_path / "r.json").read_text())["version"] == REPORT_VERSION
    assert write_report(report, tmp_path / "r.md").read_text().startswith("## Agent deployment harness")
    assert write_report(report, tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
    with pytest.raises(ConfigError, match="suffix"):
        write_report(report, tmp_path / "r.txt")


def test_markdown_has_a_row_per_pattern_and_the_failures() -> None:
    """The Markdown summary has one table row per pattern and lists failures with their first error."""
    report = build_report([run("serverless", [rec(), rec(outcome="oom", error="out of memory | killed")]),
                           run("container", [rec("container")])])
    md = render_markdown(report)
    assert re.search(r"^\| serverless \| aws-lambda \| 2 \| 1 \| oom 1 \|", md, re.M)
    assert re.search(r"^\| container \|", md, re.M)
    assert "out of memory \\| killed" in md  # a pipe in an error does not break the table


def test_html_is_self_contained_with_every_chart() -> None:
    """The HTML has the five charts and six over time per pattern as inline SVG, no script, no external reference."""
    report = build_report([run("serverless", [rec(latency=v) for v in (5, 50, 500)] + [rec(outcome="timeout")]),
                           run("edge", [rec("edge", latency=2)])])
    html = render_html(report)
    for title in ("Latency distribution", "Outcomes per pattern", "Cost per 1k calls", "Cold-start share",
                  "Instances in use over time"):
        assert f"<title>{title}" in html
    assert html.count("<svg") == 5 + 2 * 6
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)


def test_html_escapes_what_the_agent_wrote() -> None:
    """An agent's error text is escaped, never interpreted as markup."""
    report = build_report([run("serverless", [rec(outcome="agent_error", error="<script>alert(1)</script>")])])
    html = render_html(report)
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html


def _timed(i: int, pattern: str, outcome: str = "ok", cold: bool = False) -> Record:
    return Record(ok=outcome == "ok", outcome=outcome, latency_ms=100.0 + i, pattern=pattern, profile="p",
                  cost=Cost(compute_usd=0.001, llm_usd=0.002), started_at=1000.0 + i, ended_at=1000.1 + i,
                  instance_id=f"{pattern}-{i % 2}", cold_start=cold)


def test_html_draws_a_load_runs_series_over_time() -> None:
    """A load report's run.load.series is drawn under "Over time": one SVG per figure and pattern."""
    points = [{"i": k + 1, "at": 50.0 + k, "calls": 5 * k, "outcomes": {"ok": 5 * k}, "cold_starts": 1,
               "instances": 2, "desired": 3, "queue_depth": 4, "compute_usd": 0.1 * k, "llm_usd": 0.0,
               "p50_ms": 3.0, "p95_ms": 8.0} for k in range(4)]
    report = build_report([run("container", [rec("container")])],
                          extra={"load": {"series": {"container": {"profile": "k8s-hpa", "points": points}}}})
    html = render_html(report)
    assert "Over time" in html and "Each gateway sampled" in html
    drawn = dict(re.findall(r'data-chart="(\w+)" data-pattern="container" data-points="(\d+)"', html))
    assert set(drawn) == {"rate", "latency", "instances", "cold", "queue", "cost"}
    assert all(int(n) > 0 for n in drawn.values())


def test_series_from_records_rebuilds_rates_costs_and_latency_when_nothing_sampled() -> None:
    """Without a sampled series, the records give cumulative calls, outcomes and cost per bin, and the HTML
    report draws them (no desired replicas or queue depth: records do not know them)."""
    recs = [_timed(i, "serverless", "timeout" if i == 3 else "ok", cold=i == 0) for i in range(10)]
    report = build_report([run("serverless", recs)])
    from harness.reports.model import series_from_records

    [(pattern, tl)] = series_from_records(report, bins=9).items()
    last = tl["points"][-1]
    assert pattern == "serverless" and last["calls"] == 10 and last["outcomes"] == {"ok": 9, "timeout": 1}
    assert last["cold_starts"] == 1 and abs(last["llm_usd"] - 0.02) < 1e-9 and abs(last["compute_usd"] - 0.01) < 1e-9
    assert last["desired"] is None and last["queue_depth"] is None
    assert [p["calls"] for p in tl["points"]] == sorted(p["calls"] for p in tl["points"])
    html = render_html(report)
    assert "Rebuilt from the records" in html and 'data-chart="rate" data-pattern="serverless"' in html
