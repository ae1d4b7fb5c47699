"""Unit tests of the Locust glue that needs no Locust: scenarios, shapes, harness stats, the command line."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from emulators.errors import ConfigError
from harness.cli.main import cli
from harness.load.runner import LoadOptions, locust_argv
from harness.load.scenario import SessionIds, load_scenario, parse_scenario, resolve_agent
from harness.load.shapes import target
from harness.load.stats import HarnessStats

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "fixtures" / "scenarios").glob("*.toml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_shipped_scenarios_load_and_name_an_existing_agent(path: Path) -> None:
    """Every shipped scenario parses and its agent file resolves to a file that exists."""
    s = load_scenario(path)
    assert s.tasks and s.agent is not None
    resolved = resolve_agent(s.agent, s.source)
    assert Path(resolved.rpartition(":")[0]).is_file()


@pytest.mark.parametrize(("data", "message"), [
    ({}, "at least one [[tasks]]"),
    ({"tasks": [{"mode": "websocket"}]}, "unknown mode 'websocket'"),
    ({"tasks": [{"weight": 0}]}, "add up to 0"),
    ({"tasks": [{}], "session": {"mode": "sometimes"}}, "session mode 'sometimes'"),
    ({"tasks": [{}], "think_time": {"min_s": 2, "max_s": 1}}, "below min_s"),
    ({"tasks": [{}], "thinktime": {}}, "unknown key(s) thinktime"),
])
def test_bad_scenarios_are_config_errors_naming_the_problem(data: dict[str, object], message: str) -> None:
    """A scenario mistake is a ConfigError that names the file and the bad value."""
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        parse_scenario(data, "s.toml")


def test_sticky_sessions_rotate_after_n_tasks_and_per_task_sessions_never_repeat() -> None:
    """Sticky sessions keep one id for rotate_after tasks; per-task ones are new every time."""
    sticky = parse_scenario({"tasks": [{}], "session": {"mode": "sticky", "rotate_after": 2}})
    ids = SessionIds(sticky, "u")
    got = [ids.next() for _ in range(4)]
    assert got[0] == got[1] != got[2] == got[3]
    per_task = SessionIds(parse_scenario({"tasks": [{}], "session": {"mode": "per-task"}}), "u")
    assert len({per_task.next() for _ in range(5)}) == 5


def test_task_mix_follows_the_weights() -> None:
    """Tasks are drawn in proportion to their weights."""
    s = parse_scenario({"tasks": [{"name": "a", "weight": 9}, {"name": "b", "weight": 1}]})
    rng = random.Random(1)
    picks = [s.pick(rng).name for _ in range(2000)]
    assert 0.85 < picks.count("a") / len(picks) < 0.95


def test_burst_is_warm_then_idle_then_everyone_at_once() -> None:
    """The burst shape: one user per pattern, then zero, then the peak spawned within a second."""
    at = [target("burst", t, run_time=10, peak=20, spawn_rate=1, floor=2) for t in (0.5, 3.0, 5.0, 9.9)]
    assert at == [(2, 20.0), (0, 20.0), (20, 20.0), (20, 20.0)]
    assert target("burst", 10.0, run_time=10, peak=20, spawn_rate=1) is None


def test_diurnal_peaks_at_noon_and_ramp_climbs_to_the_peak() -> None:
    """Diurnal is lowest at the ends and highest mid-run; ramp rises monotonically to --users."""
    day = [target("diurnal", t, run_time=24, peak=50, spawn_rate=1, floor=1) for t in range(24)]
    users = [d[0] for d in day if d]
    assert users[0] == 1 and max(users) == users[12] == 50
    ramp = [target("ramp", t, run_time=10, peak=30, spawn_rate=1, floor=1) for t in range(10)]
    counts = [r[0] for r in ramp if r]
    assert counts == sorted(counts) and counts[-1] == 30
    with pytest.raises(ValueError, match="unknown shape 'spike'"):
        target("spike", 0, run_time=1, peak=1, spawn_rate=1)


def test_worker_deltas_merged_on_the_master_equal_the_workers_figures() -> None:
    """Two workers' deltas merged on the master give their summed calls, outcomes, cost and p95."""
    master = HarnessStats()
    workers = [HarnessStats(track_delta=True), HarnessStats(track_delta=True)]
    for i, w in enumerate(workers):
        for n in range(50):
            w.observe("serverless", "throttled" if n % 10 == 0 else "ok", cold_start=n == 0, instance=f"i{i}",
                      latency_ms=100.0 + n, cost_usd=0.001)
        master.merge(w.delta())
        assert w.delta() == {}  # a delta is sent once
    row = master.rows(["serverless"])[0]
    assert row["calls"] == 100 and row["failures"] == 10 and row["failures_by_kind"] == "throttled 10"
    assert row["cold_start_share"] == "2.0%" and row["instances_seen"] == 2
    assert row["cost_per_1k_usd"] == pytest.approx(1.0)
    assert row["p95_ms"] == 150.0  # latencies 101..149 rounded to 10 ms above 100 ms; throttles excluded


def test_locust_command_line_of_a_headless_run() -> None:
    """harness load's Locust command writes CSV, HTML, JSON and Markdown into --out and passes --set, --memory on."""
    argv = locust_argv(LoadOptions(agent="a.py:agent", patterns="serverless", shape="burst", users=50,
                                   out=Path("out"), sets=("serverless.max_concurrency=4",),
                                   memory="sqlite:///m.db"))
    joined = " ".join(argv)
    assert "--headless --csv out/locust --html out/locust.html" in joined
    assert "--harness-report out/report.json,out/report.md" in joined
    assert "--shape burst" in joined and "--users 50" in joined
    assert "--harness-set serverless.max_concurrency=4" in joined
    assert "--harness-memory sqlite:///m.db" in joined


@pytest.mark.parametrize(("args", "message"), [
    (["a.py:agent", "--patterns", "lamda"], "unknown pattern 'lamda'"),
    (["a.py:agent", "--shape", "spike"], "'spike' is not one of"),
    (["a.py:agent", "--run-time", "soon"], "not a time span"),
    ([], "give AGENT"),
    (["a.py:agent", "--memory", "redis://127.0.0.1/0"],  # harness run --memory's message
     "memory store 'redis://127.0.0.1/0': expected sqlite:// (the default)"),
    (["--harness-url", "http://127.0.0.1:1", "--memory", "sqlite:///m.db"], "use their own: harness serve --memory"),
])
def test_harness_load_bad_input_exits_2(args: list[str], message: str) -> None:
    """Bad input to harness load exits 2 with a message, before any process starts."""
    result = CliRunner().invoke(cli, ["load", *args])
    assert result.exit_code == 2 and message in result.output


def test_harness_load_does_not_import_locust_until_it_runs() -> None:
    """Loading the CLI (harness load included) leaves Locust and gevent unimported."""
    code = "import sys, harness.cli.main; print('locust' in sys.modules or 'gevent' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
