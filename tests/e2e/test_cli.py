"""End to end: the ``harness`` console script as a user runs it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
AGENTS = ROOT / "fixtures" / "agents"


def _harness(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def test_run_writes_html_and_markdown_reports_and_refuses_an_unknown_suffix(tmp_path: Path) -> None:
    """`--report` writes each file in the format of its suffix; a suffix it cannot tell is exit 2."""
    html, md = tmp_path / "r.html", tmp_path / "r.md"
    proc = _harness("run", f"{AGENTS / 'echo.py'}:agent", "--patterns", "serverless,container", "-n", "4", "-q",
                    "--report", str(html), "--report", str(md))
    assert proc.returncode == 0, proc.stderr
    assert html.read_text().lstrip().lower().startswith("<!doctype html") and "<svg" in html.read_text()
    assert "serverless" in md.read_text() and "container" in md.read_text()
    bad = _harness("run", f"{AGENTS / 'echo.py'}:agent", "--report", str(tmp_path / "r.txt"))
    assert bad.returncode == 2 and ".json, .md or .html" in bad.stderr


def test_run_recycle_every_recycles_between_rounds_on_every_pattern(tmp_path: Path) -> None:
    """`--recycle-every 2`: a module-global chat starts over after each recycle, on every pattern."""
    out = tmp_path / "out.json"
    proc = _harness("run", f"{AGENTS / 'chat_global.py'}:agent", "--patterns", "all", "-n", "4", "-q",
                    "--recycle-every", "2", "--session", "shared", "--task", '{"message": "hi"}',
                    "--json", str(out), timeout=120)
    assert proc.returncode == 0, proc.stderr
    for dep in json.loads(out.read_text())["deployments"]:
        turns = [r["output"]["turn"] for r in dep["records"] if r["trigger"] == "invoke"]
        assert turns == [1, 2, 1, 2], (dep["summary"]["pattern"], turns)


def test_run_prints_summary_and_writes_json(tmp_path: Path) -> None:
    """`harness run` runs N calls, prints the summary table and writes one record per call as JSON."""
    out = tmp_path / "out.json"
    proc = _harness("run", f"{AGENTS / 'echo.py'}:agent", "--patterns", "serverless", "-n", "12", "-c", "3",
                    "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "Summary (platform time)" in proc.stdout
    assert "aws-lambda" in proc.stdout
    report = json.loads(out.read_text())
    [dep] = report["deployments"]
    assert dep["summary"]["calls"] == 12
    assert dep["summary"]["outcomes"] == {"ok": 12}
    assert len(dep["records"]) == 12
    assert all(r["output"] == {"echo": {}} for r in dep["records"])


def test_run_reports_failures_by_kind() -> None:
    """Failures are summarized by outcome kind with their first error message."""
    proc = _harness("run", f"{AGENTS / 'sleeper.py'}:agent", "--task", '{"seconds": 5}', "--set", "timeout_s=2",
                    "--time-scale", "0.001", "-n", "3", "-q")
    assert proc.returncode == 0, proc.stderr
    assert "timeout" in proc.stdout
    assert "Task timed out after 2.00 seconds" in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "fixtures/agents/echo.py:agen"], "defines no 'agen'"),
        (["run", "fixtures/agents/missing.py:agent"], "does not exist"),
        (["run", "fixtures/agents/echo.py:agent", "--patterns", "lamda"], "unknown pattern 'lamda'"),
        (["run", "fixtures/agents/echo.py:agent", "--set", "timout_s=3"], "did you mean 'timeout_s'"),
        (["run", "fixtures/agents/echo.py:agent", "--profile", "aws-lamda"], "did you mean 'aws-lambda'"),
        (["run", "fixtures/agents/echo.py:agent", "--task", "{not json"], "not valid JSON"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(args: list[str], message: str) -> None:
    """Bad input exits with status 2 and a message saying what was wrong."""
    proc = _harness(*args)
    assert proc.returncode == 2
    assert message in proc.stderr


def test_profiles_lists_shipped_profiles() -> None:
    """`harness profiles` lists every shipped profile with its fidelity: cited and estimated fields of all."""
    proc = _harness("profiles")
    assert proc.returncode == 0, proc.stderr
    for name in ("aws-lambda", "vercel-functions", "netlify-functions"):
        assert name in proc.stdout
    assert "fidelity" in proc.stdout
    row = next(line for line in proc.stdout.splitlines() if "aws-lambda" in line)
    assert re.search(r"\d+ cited, \d+ est\. / \d+", row), row


def test_profiles_fidelity_prints_the_docs_table() -> None:
    """`harness profiles --fidelity` prints docs/fidelity.md: a summary row and a field table per profile."""
    proc = _harness("profiles", "--fidelity")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (ROOT / "docs" / "fidelity.md").read_text(encoding="utf-8")
    assert "| [aws-lambda](#aws-lambda) | serverless |" in proc.stdout


def test_sigint_stops_the_run_and_leaves_no_process() -> None:
    """Ctrl-C (SIGINT) during `harness run` exits 130 and no process of the run remains."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", f"{AGENTS / 'sleeper.py'}:agent", "--task",
         '{"seconds": 200}', "--set", "timeout_s=900", "--time-scale", "0.01", "-n", "4", "-c", "2", "-q"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    parent = psutil.Process(proc.pid)
    seen: set[int] = set()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # until the zygote and both instances are up
        kids = parent.children(recursive=True)
        seen |= {k.pid for k in kids}
        if len(kids) >= 3:
            break
        time.sleep(0.05)
    assert len(seen) >= 3, "the run never started its instances"
    time.sleep(0.2)
    seen |= {k.pid for k in parent.children(recursive=True)}
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(psutil.pid_exists(p) and _alive(p) for p in seen):
        time.sleep(0.05)
    assert not [p for p in seen if psutil.pid_exists(p) and _alive(p)], "processes of the run remain"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_console_script_is_installed() -> None:
    """The `harness` console script is on PATH after install and answers --help."""
    exe = Path(sys.executable).with_name("harness")
    cmd = [str(exe)] if exe.exists() else ["harness"]
    proc = subprocess.run([*cmd, "--help"], capture_output=True, text=True, timeout=30,
                          env={**os.environ})
    assert proc.returncode == 0
    assert "run" in proc.stdout


SCRIPT = """
import os, signal, threading, harness, psutil
with harness.deploy(%r, time_scale=0.01, timeout_s=900) as d:
    threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    try:
        d.invoke({"seconds": 300})
    except KeyboardInterrupt:
        print(" ".join(str(p.pid) for p in psutil.Process().children(recursive=True)), flush=True)
        raise
"""


def test_ctrl_c_in_a_user_script_reaps_every_process(tmp_path: Path) -> None:
    """Ctrl-C while a script blocks in d.invoke() propagates KeyboardInterrupt and the with-block reaps all."""
    script = tmp_path / "script.py"
    script.write_text(SCRIPT % f"{AGENTS / 'sleeper.py'}:agent")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 130 or "KeyboardInterrupt" in proc.stderr
    pids = [int(p) for p in proc.stdout.split()]
    assert len(pids) >= 2  # the zygote and the busy instance (and the spare) were up when Ctrl-C came
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    assert not [p for p in pids if _alive(p)]
