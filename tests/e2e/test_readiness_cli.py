"""End to end: ``harness readiness`` as a user runs it: the checklist table, the reports, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
AGENTS = ROOT / "fixtures" / "agents"


def _harness(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def test_readiness_prints_the_checklist_and_writes_both_reports(tmp_path: Path) -> None:
    """`harness readiness` prints the checklist table and the recommendation and writes JSON and HTML."""
    out, page = tmp_path / "r.json", tmp_path / "r.html"
    proc = _harness("readiness", f"{AGENTS / 'chat_state.py'}:agent", "--task", '{"message": "hi"}',
                    "--patterns", "serverless,daemon", "--traffic", "5000/day,bursty", "--budget", "$50",
                    "--calls", "2", "--json", str(out), "--html", str(page))
    assert proc.returncode == 0, proc.stderr
    assert "state management" in proc.stdout and "PASS" in proc.stdout
    assert "Recommended:" in proc.stdout
    section = json.loads(out.read_text())["readiness"]
    assert {i["name"] for i in section["checklist"]} >= {"time limits", "scaling", "secret management"}
    assert section["traffic"]["shape"] == "bursty" and section["budget_usd"] == 50.0
    assert section["projection"]["crossovers"] or section["projection"]["steady"]
    html = page.read_text()
    assert "<h2>Readiness</h2>" in html and "Monthly compute cost by traffic" in html


@pytest.mark.parametrize("args", [
    ["--traffic", "lots"],
    ["--budget", "cheap"],
    ["--patterns", "lamda"],
    ["--llm-tier", "gold"],
])
def test_readiness_bad_input_exits_2(args: list[str]) -> None:
    """A traffic, budget, pattern or tier that does not parse exits 2 with the message, before anything runs."""
    proc = _harness("readiness", f"{AGENTS / 'echo.py'}:agent", *args, timeout=30)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_readiness_missing_agent_exits_2() -> None:
    """An agent file that does not exist exits 2 naming it."""
    proc = _harness("readiness", "fixtures/agents/nope.py:agent", timeout=30)
    assert proc.returncode == 2
    assert "nope.py" in proc.stderr
