"""``harness report``: reports from record stores, and two engine hosts' records merged into one report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import harness
from emulators.records import summarize
from harness.reports import DeploymentRun, build_report

pytestmark = pytest.mark.e2e

ECHO = f"{Path(__file__).resolve().parents[2] / 'fixtures' / 'agents' / 'echo.py'}:agent"
SLEEPER = f"{Path(__file__).resolve().parents[2] / 'fixtures' / 'agents' / 'sleeper.py'}:agent"


def _report(*args: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", "report", *map(str, args)], capture_output=True,
                          text=True, timeout=120)


def _host(records_dir: Path, calls: int, seconds: float) -> list[harness.Record]:
    """One engine host: a serverless deployment whose store is kept in records_dir."""
    with harness.deploy(SLEEPER, "serverless", records_dir=records_dir) as d:
        for i in range(calls):
            d.invoke({"seconds": seconds * (1 + i % 3)})
        assert d.records_path.parent == records_dir
    return d.records()


def test_merged_report_of_two_hosts_equals_one_runs_report_on_the_same_records(tmp_path: Path) -> None:
    """Two hosts' stores merged with --merge give the summary one run over all their records gives."""
    a = _host(tmp_path / "a", 12, 0.05)
    b = _host(tmp_path / "b", 9, 0.2)
    out = tmp_path / "merged.json"
    got = _report(tmp_path / "a", tmp_path / "b", "--merge", "--out", out)
    assert got.returncode == 0, got.stderr
    merged = json.loads(out.read_text())
    one = build_report([DeploymentRun(summarize(a + b), a + b, {"name": "aws-lambda"})])
    m, o = merged["summaries"]["serverless"], one["summaries"]["serverless"]
    for key in ("calls", "ok", "outcomes", "cold_starts", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
                "latency_max_ms", "input_tokens", "llm_calls"):
        assert m[key] == o[key], key
    assert m["cost_usd"] == pytest.approx(o["cost_usd"], rel=1e-12)
    assert len(merged["deployments"]) == 1 and len(merged["deployments"][0]["records"]) == 21
    assert "serverless" in got.stdout and "21" in got.stdout  # the terminal table


def test_report_of_one_store_matches_the_deployment_and_can_omit_records(tmp_path: Path) -> None:
    """A store read back reports what the deployment's summary said; --no-records keeps the JSON small."""
    with harness.deploy(ECHO, "container", records_dir=tmp_path, min_replicas=1) as d:
        for i in range(5):
            d.invoke({"i": i})
        d.advance(30)
        live = d.summary()
    out = tmp_path / "r.json"
    got = _report(d.records_path, "--no-records", "--out", out)
    assert got.returncode == 0, got.stderr
    data = json.loads(out.read_text())
    s = data["summaries"]["container"]
    assert (s["calls"], s["latency_p50_ms"], s["peak_replicas"]) == (live.calls, live.latency_p50_ms,
                                                                      live.peak_replicas)
    assert s["idle_cost_usd"] == pytest.approx(live.idle_cost_usd, rel=1e-3)  # stored at close, a moment later
    assert data["deployments"][0]["records"] == [] and data["deployments"][0]["records_omitted"] == 5


def test_report_says_what_is_wrong_with_a_bad_input(tmp_path: Path) -> None:
    """A file that is no store, or an empty directory, exits 1 with a message naming it."""
    bogus = tmp_path / "x.sqlite"
    bogus.write_text("not a database")
    got = _report(bogus)
    assert got.returncode == 1 and "not a readable record store" in got.stderr
    (tmp_path / "empty").mkdir()
    got = _report(tmp_path / "empty")
    assert got.returncode == 1 and "holds no record store" in got.stderr
