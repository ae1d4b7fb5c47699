"""End to end: `harness compare` as a CI job runs it (deltas printed; exit 0, 1 on a regression, 2 on bad input)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from emulators.records import Record, summarize
from harness.reports import DeploymentRun, build_report

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def _report(path: Path, latency: float) -> Path:
    records = [Record(ok=True, outcome="ok", latency_ms=latency, pattern="serverless", profile="aws-lambda")] * 20
    path.write_text(json.dumps(build_report([DeploymentRun(summarize(records), records, {})])))
    return path


def _compare(*args: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", "compare", *map(str, args)], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)


def test_a_p95_twice_the_baseline_exits_1_with_the_delta(tmp_path: Path) -> None:
    """p95 doubled against a +20% rule: exit 1, the deltas table and a REGRESSION line naming the rule."""
    proc = _compare(_report(tmp_path / "new.json", 200), "--baseline", _report(tmp_path / "old.json", 100),
                    "--fail-on", "p95:+20%")
    assert proc.returncode == 1, proc.stderr
    assert "Baseline comparison" in proc.stdout
    assert "REGRESSION: serverless p95 100.0 ms -> 200.0 ms (+100.0%), allowed +20% (p95:+20%)" in proc.stdout


def test_within_the_threshold_exits_0(tmp_path: Path) -> None:
    """A 10% slower p95 under the default rules passes, and the Markdown comparison is appended."""
    md = tmp_path / "summary.md"
    proc = _compare(_report(tmp_path / "new.json", 110), "--baseline", _report(tmp_path / "old.json", 100),
                    "--markdown", md)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "every check passed" in proc.stdout
    assert "| serverless | p95 | 100.0 ms | 110.0 ms | +10.0% |" in md.read_text()


def test_absolute_slos_without_a_baseline(tmp_path: Path) -> None:
    """SLOs alone: p95<2s passes at 1.5 s, and p95<1s fails it."""
    new = _report(tmp_path / "new.json", 1500)
    assert _compare(new, "--fail-on", "p95<2s,cost_per_1k<$0.50,failures=0").returncode == 0
    assert _compare(new, "--fail-on", "p95<1s").returncode == 1


@pytest.mark.parametrize(("args", "message"), [
    (["--fail-on", "p95>>2s"], "accepted grammar"),
    ([], "nothing to check"),
    (["--baseline", "missing.json"], "does not exist"),
])
def test_bad_input_exits_2(tmp_path: Path, args: list[str], message: str) -> None:
    """A bad rule, no rule at all or a missing baseline exits 2 with a message."""
    proc = _compare(_report(tmp_path / "new.json", 100), *args)
    assert proc.returncode == 2
    assert message in proc.stderr
