"""End to end: Locust load tests through ``harness load`` and the locustfile, headless and distributed.

Every run is a child process in a session of its own; on failure its whole tree (Locust, its workers, the
engine host, zygotes, instances) is killed by pid, and the integration marker's leftover check applies.
"""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.load.runner import reap_tree

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "fixtures" / "scenarios"
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"


def _run(argv: list[str], timeout: float = 90) -> str:
    """Run ``argv`` to its end and return its output; kill its whole tree if anything goes wrong."""
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except BaseException:
        reap_tree(proc.pid)
        proc.communicate()
        raise
    assert proc.returncode == 0, out[-4000:]
    return out


def _harness_load(out: Path, *args: str) -> dict[str, Any]:
    _run([sys.executable, "-m", "harness.cli", "load", "--out", str(out), *args])
    report: dict[str, Any] = json.loads((out / "report.json").read_text())
    return report


def test_headless_smoke_writes_csv_html_and_the_harness_report(tmp_path: Path) -> None:
    """A headless run of all four patterns writes Locust's CSV and HTML and a schema-2 JSON report."""
    # Edge on the Paid plan: this checks the load plumbing, and the Free plan's 10 ms of CPU per request, which
    # the emitter needs about a tenth of, was passed by 2 of 88 calls on a loaded 2-core machine.
    report = _harness_load(tmp_path, "--scenario", str(SCENARIOS / "smoke.toml"), "--users", "8",
                           "--run-time", "6s", "--time-scale", "0.01", "--profile", "edge=cloudflare-workers-paid")
    assert report["schema"] == "agent-deploy-harness/report" and report["version"] == 2
    assert report["run"]["source"] == "locust"
    assert set(report["summaries"]) == {"serverless", "container", "daemon", "edge"}
    for pattern, s in report["summaries"].items():
        assert s["calls"] > 0 and s["ok"] == s["calls"], (pattern, s["outcomes"])
    rows = list(csv.DictReader((tmp_path / "locust_stats.csv").open()))
    names = {r["Name"] for r in rows}
    for pattern in ("serverless", "container", "daemon", "edge"):  # request names per pattern and mode
        assert {f"{pattern} /invoke", f"{pattern} /tasks", f"{pattern} /tasks/{{id}}",
                f"{pattern} /invoke/stream"} <= names
    assert "<html" in (tmp_path / "locust.html").read_text()[:2000].lower()
    assert (tmp_path / "report.md").read_text().startswith("## ")
    load = report["run"]["load"]
    # Locust counted exactly the requests the gateways answered (their /stats, minus the sampler's polls).
    assert load["locust"]["requests"] == sum(load["gateway_requests"].values())
    assert {p: s["calls"] for p, s in load["harness"].items()} == {p: s["calls"] for p, s in
                                                                    report["summaries"].items()}


def _phase_of(started: float, at: float, run_time: float) -> str:
    x = (at - started) / run_time
    return "warm" if x < 0.2 else "idle" if x < 0.4 else "burst"


def test_burst_shows_cold_starts_throttles_and_hpa_lag_in_the_report(tmp_path: Path) -> None:
    """Burst vs serverless: cold starts rise at the spike and calls past max_concurrency are throttled;
    vs the container pool: the replica count rises only after the HPA's sync period."""
    run_time = 10.0
    report = _harness_load(
        tmp_path, "--scenario", str(SCENARIOS / "spiky.toml"), "--patterns", "serverless,container",
        "--shape", "burst", "--users", "12", "--run-time", f"{run_time:g}s", "--time-scale", "0.05",
        "--set", "serverless.max_concurrency=4", "--set", "serverless.idle_expiry_s=20",
        "--set", "container.target_concurrency=2", "--set", "container.replica_concurrency=4")
    load = report["run"]["load"]
    started = load["started_at"]
    serverless = next(d for d in report["deployments"] if d["pattern"] == "serverless")
    cold = {"warm": 0, "idle": 0, "burst": 0}
    throttled = dict(cold)
    for r in serverless["records"]:
        phase = _phase_of(started, r["started_at"], run_time)
        cold[phase] += r["cold_start"]
        throttled[phase] += r["outcome"] == "throttled"
    # The idle phase (2 s wall = 40 platform s) outlives idle_expiry_s=20: the spike starts from cold.
    assert cold["burst"] >= 3 and cold["burst"] > cold["warm"], cold
    assert throttled["burst"] > 0 and throttled["warm"] == 0, throttled
    assert report["summaries"]["serverless"]["outcomes"].get("throttled", 0) > 0

    container = report["summaries"]["container"]
    assert container["peak_replicas"] > 1, container["replica_timeline"][:5]
    samples = [(s["at"] - started, s["instances"]) for s in load["timeline"]["container"]]
    burst_at = 0.4 * run_time
    assert max(n for t, n in samples if t < burst_at - 0.3) == 1  # one replica until the spike
    scaled_at = min(t for t, n in samples if n > 1)
    # HPA lag: a sync every 15 platform s (0.75 s wall here) plus the replica's start, not instant.
    assert scaled_at - burst_at > 0.2, (scaled_at, burst_at)
    assert any(p["event"] == "scale" for p in container["replica_timeline"])
    # The same dynamics in the charts' series: serverless cold starts come at the spike, and the container's
    # desired replicas rise after it.
    series = {p: tl["points"] for p, tl in load["series"].items()}
    cold_at = [b["at"] - started for a, b in zip(series["serverless"], series["serverless"][1:], strict=False)
               if b["cold_starts"] > a["cold_starts"]]
    assert any(t >= burst_at for t in cold_at), cold_at
    desired = [(p["at"] - started, p["desired"]) for p in series["container"]]
    assert max(n for t, n in desired if t < burst_at - 0.3) == 1 and max(n for _, n in desired) > 1, desired


def test_master_and_two_workers_count_what_the_gateways_saw(tmp_path: Path) -> None:
    """A master with two workers: the master's totals equal the sum of requests the gateways answered,
    and the harness stats on the master are the workers' (the master runs no users)."""
    base = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]
    port = _free_port()
    master = subprocess.Popen(
        [*base, "--master", "--headless", "--expect-workers", "2", "--master-bind-port", str(port), "--users", "8",
         "--spawn-rate", "8", "--run-time", "8s", "--stop-timeout", "10", "--exit-code-on-error", "0",
         "--scenario", str(SCENARIOS / "smoke.toml"), "--time-scale", "0.01", "--csv", str(tmp_path / "m"),
         "--harness-report", str(tmp_path / "report.json")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    procs = [master]
    try:
        for _ in range(2):
            procs.append(subprocess.Popen([*base, "--worker", "--master-port", str(port)], cwd=ROOT,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          start_new_session=True))
        out, _ = master.communicate(timeout=90)
        assert master.returncode == 0, out[-4000:]
        for w in procs[1:]:
            assert w.wait(30) == 0
    except BaseException:
        for p in procs:
            reap_tree(p.pid)
        raise
    report = json.loads((tmp_path / "report.json").read_text())
    load = report["run"]["load"]
    seen = sum(load["gateway_requests"].values())
    aggregated = next(r for r in csv.DictReader((tmp_path / "m_stats.csv").open()) if r["Name"] == "Aggregated")
    assert seen > 100
    assert load["locust"]["requests"] == int(aggregated["Request Count"]) == seen, (load["gateway_requests"],
                                                                                   aggregated["Request Count"])
    assert set(load["harness"]) == {"serverless", "container", "daemon", "edge"}
    assert all(s["calls"] > 0 for s in load["harness"].values())
    # The charts' series come from the gateways, which every worker's users hit: the last point of each
    # pattern counts every call its summary does.
    series = load["series"]
    assert {p: tl["points"][-1]["calls"] for p, tl in series.items()} == \
        {p: s["calls"] for p, s in report["summaries"].items()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


FACT = "I am on the Pro plan, billed yearly"


def _support_scenario(path: Path, says: str) -> Path:
    """A scenario of one sync task for the support agent, which remembers what a customer says in ctx.memory."""
    agent = ROOT / "fixtures" / "agents" / "support_memory.py"
    path.write_text(f'name = "support"\nagent = "{agent}:agent"\nthink_time = {{ min_s = 0.1, max_s = 0.2 }}\n'
                    f'[[tasks]]\nname = "visit"\nmode = "invoke"\n'
                    f'payload = {{ customer = "ada", says = "{says}", asks = "which plan am I on?" }}\n')
    return path


def test_memory_outlives_a_load_run_also_with_a_master_and_worker(tmp_path: Path) -> None:
    """--memory URL: a later run (master + a worker, two patterns) on the same file recalls the first run's fact."""
    memory = f"sqlite:///{tmp_path / 'memory.db'}"
    # timeout_s=60: more than Lambda's default 3 s for a cold start that imports openai on a busy machine (at
    # 0.01 the gateway's 29 s count that import at its platform length, not at 1/time_scale: 2026-12-06).
    common = ["--users", "1", "--run-time", "4s", "--time-scale", "0.01", "--set", "timeout_s=60", "--memory", memory]
    first = _harness_load(tmp_path / "first", "--scenario", str(_support_scenario(tmp_path / "a.toml", FACT)),
                          "--patterns", "serverless", *common)
    later = _harness_load(tmp_path / "later", "--scenario",
                          str(_support_scenario(tmp_path / "b.toml", "I moved to the Team plan")),
                          "--patterns", "serverless,container", "--processes", "1", *common)
    for report in (first, later):
        outputs = {d["pattern"]: [r["output"] for r in d["records"] if r["ok"]] for d in report["deployments"]}
        assert all(outputs.values()) and set(outputs) == set(report["summaries"]), report["summaries"]
        # Concurrent first visits may each store the fact; none of them is the later run's own.
        assert {t for out in outputs.values() for o in out for t in o["remembered"]} == {FACT}, outputs
