"""Container state and cost with real replicas: chat history in a module global across replicas (with and
without sticky sessions), ctx.state, per-record busy shares, and the CLI running both patterns."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import harness
from emulators.billing import replica_rate_usd

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures" / "agents"
CHAT_GLOBAL = str(FIXTURES / "chat_global.py") + ":agent"
CHAT_STATE = str(FIXTURES / "chat_state.py") + ":agent"
SLEEPER = str(FIXTURES / "sleeper.py") + ":agent"


def chat(agent: str, **overrides: object) -> list[int]:
    with harness.deploy(agent, pattern="container", time_scale=0.01, min_replicas=3, gateway=False,
                        **overrides) as d:
        turns = [d.invoke({"message": f"m{i}"}, session_id="s1") for i in range(6)]
    assert all(t.ok for t in turns), [t.error for t in turns]
    return [t.output["turn"] for t in turns]


def test_module_global_history_is_lost_across_three_replicas_without_stickiness() -> None:
    """chat_global on 3 replicas, round robin: each replica knows only the turns it served."""
    assert chat(CHAT_GLOBAL) == [1, 1, 1, 2, 2, 2]


def test_module_global_history_is_kept_with_sticky_sessions() -> None:
    """With sticky_sessions=True every turn of the session lands on one replica: history is kept."""
    assert chat(CHAT_GLOBAL, sticky_sessions=True) == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("sticky", [False, True])
def test_ctx_state_keeps_history_either_way(sticky: bool) -> None:
    """chat_state keeps its history in ctx.state, so it survives any routing."""
    assert chat(CHAT_STATE, sticky_sessions=sticky) == [1, 2, 3, 4, 5, 6]


def test_records_carry_their_busy_share_and_the_summary_adds_up() -> None:
    """Two calls sharing one replica each pay about half of it; busy + idle is the whole replica time."""
    with harness.deploy(SLEEPER, profile="gcp-cloud-run", time_scale=0.01, min_replicas=1, gateway=False) as d:
        a, b = d.submit({"seconds": 10}), d.submit({"seconds": 10})
        ra, rb = d.wait(a, 30), d.wait(b, 30)
        s = d.summary()
        rate = replica_rate_usd(d.profile)

    assert ra.ok and rb.ok and ra.instance_id == rb.instance_id
    for r in (ra, rb):
        assert r.billed_ms == pytest.approx(r.duration_ms / 2, rel=0.1)  # half the replica while both ran
        assert r.cost.compute_usd == pytest.approx(r.billed_ms / 1000 * rate, rel=1e-9)
    assert s.busy_cost_usd == pytest.approx(ra.cost.compute_usd + rb.cost.compute_usd, rel=1e-9)
    assert s.idle_cost_usd > 0
    assert s.busy_cost_usd + s.idle_cost_usd == pytest.approx(s.replica_seconds * rate, rel=1e-9)
    requests = ra.cost.requests_usd + rb.cost.requests_usd  # $0.40 per 1M requests (R18), on the records
    assert requests == pytest.approx(2 * 0.40 / 1e6)
    assert s.cost_usd + s.fixed_cost_usd == pytest.approx(s.busy_cost_usd + s.idle_cost_usd + requests, rel=1e-9)


def test_deploy_takes_the_pattern_from_a_named_container_profile() -> None:
    """deploy(agent, profile="k8s-hpa") with no pattern runs the container pattern."""
    with harness.deploy(SLEEPER, profile="k8s-hpa", time_scale=0.01, gateway=False) as d:
        r = d.invoke({"seconds": 0.1})
    assert d.pattern == "container" and r.ok and r.profile == "k8s-hpa" and not r.cold_start


def test_cli_runs_serverless_and_container_side_by_side(tmp_path: Path) -> None:
    """`harness run --patterns serverless,container` shows both columns with busy/idle cost and replicas."""
    out = tmp_path / "out.json"
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", str(FIXTURES / "sleeper.py") + ":agent", "--task",
         '{"seconds": 0.5}', "--patterns", "serverless,container", "-n", "6", "-c", "2", "-q", "--json", str(out)],
        capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "container" in proc.stdout and "k8s-hpa" in proc.stdout
    assert "busy / idle cost" in proc.stdout and "replicas (peak)" in proc.stdout
    deps = {d["pattern"]: d for d in json.loads(out.read_text())["deployments"]}
    cont = deps["container"]["summary"]
    assert cont["calls"] == 6 and cont["outcomes"] == {"ok": 6}
    assert cont["idle_cost_usd"] > 0 and cont["peak_replicas"] == 1
    assert cont["replica_timeline"][0]["event"] in ("ready", "start")
