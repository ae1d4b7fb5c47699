"""Readiness on the sample agents, with real processes: state, time limits, CPU limits, planted secrets,
and the pytest ``readiness`` fixture. Each battery runs in seconds (small time scale, few calls)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.readiness import ReadinessOptions, ReadinessResult, run_readiness

pytestmark = pytest.mark.integration

AGENTS = Path(__file__).resolve().parents[2] / "fixtures" / "agents"
CHAT = {"message": "hi"}


def battery(agent: str, task: Any, **kw: Any) -> ReadinessResult:
    opts = ReadinessOptions(agent=str(AGENTS / agent) + ":agent", task=task, calls=2, burst=4, **kw)
    return run_readiness(opts)


def test_module_global_chat_loses_state_wherever_instances_are_recycled() -> None:
    """chat_global fails state management on serverless and container; on daemon and edge too once a worker
    restarts or an isolate is evicted, though there it kept its history across back-to-back turns."""
    r = battery("chat_global.py", CHAT)
    for pattern in ("serverless", "container", "daemon", "edge"):
        item = r.item("state management", pattern)
        assert item.verdict == "fail", (pattern, item)
        assert item.data["stateful"] is True  # the control session's turns built on each other
    assert "state is lost on every pattern" in " ".join(r.recommendation.reasons)


def test_ctx_state_chat_passes_state_management_everywhere(readiness: Any) -> None:
    """chat_state (history in ctx.state) passes state management on every pattern (via the pytest fixture)."""
    r = readiness(str(AGENTS / "chat_state.py") + ":agent", task=CHAT, calls=2, burst=4)
    for pattern in ("serverless", "container", "daemon", "edge"):
        item = r.item("state management", pattern)
        assert item.verdict == "pass", (pattern, item)
        assert item.data["stateful"] is True


def test_twenty_minute_task_fails_lambda_and_goes_to_the_daemon() -> None:
    """A 1,200 s task times out at aws-lambda's 900 s maximum and is recommended to the daemon pattern."""
    r = battery("long_task.py", {})
    item = r.item("time limits", "serverless")
    assert item.verdict == "fail" and item.profile == "aws-lambda"
    assert "timeout" in item.evidence and "900 s" in item.evidence
    assert r.item("time limits", "daemon").verdict == "pass"
    choice = r.recommendation.choice
    assert choice is not None and choice.pattern == "daemon"
    assert any("aws-lambda" in line for line in r.recommendation.reasons)


def test_cpu_heavy_agent_fails_the_edge() -> None:
    """200 ms of CPU per task fails time limits on the edge (10 ms CPU on Cloudflare Free) and passes elsewhere."""
    r = battery("cpu_burner.py", {"cpu_ms": 200}, patterns=("container", "edge"))
    edge = r.item("time limits", "edge")
    assert edge.verdict == "fail" and "cpu_limit" in edge.evidence
    assert r.item("time limits", "container").verdict in ("pass", "warn")


def test_planted_key_fails_secret_management_with_file_and_line() -> None:
    """The sk- key in leaky/config.toml fails secret management, naming the file and line 5."""
    pytest.importorskip("detect_secrets")
    r = battery("leaky/agent.py", CHAT, patterns=("serverless",))
    item = r.item("secret management", "serverless")
    assert item.verdict == "fail"
    assert "config.toml:5" in item.evidence
    assert any("reads OPENAI_API_KEY" in d for d in item.details)
    report = r.attach({})
    assert "sk-proj-Q3vX9" not in str(report)  # findings name where, never the value
