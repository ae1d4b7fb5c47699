"""The Docker instance runtime: engine-detected OOM, the same outcomes as the process runtime, no leftovers.

Skipped, with the reason, where no Docker engine is reachable (``.ci/run`` starts one where it can).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import harness
from emulators.errors import ConfigError
from emulators.runtime.docker import LABEL, dockerfile, engine_problem, parse_runtime

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
AGENTS = ROOT / "fixtures" / "agents"
_PROBLEM = engine_problem()
needs_engine = pytest.mark.skipif(_PROBLEM is not None, reason=f"Docker tests skipped: {_PROBLEM}")


@pytest.fixture(scope="module")
def engine() -> Any:
    """A docker SDK client for the engine the tests run against."""
    if _PROBLEM is not None:
        pytest.skip(f"Docker tests skipped: {_PROBLEM}")
    import docker

    client = docker.from_env()
    yield client
    client.close()


def run_id_of(d: Any) -> str:
    """The run id of a deployment, from its run directory's name (``harness-<run id>-XXXX``)."""
    return Path(d.run_dir).name.split("-")[1]


def leftovers(client: Any, run_id: str) -> list[str]:
    """Every container, network, volume and image of ``run_id`` the engine still has."""
    filters = {"label": f"{LABEL}={run_id}"}
    api = client.api
    return ([f"container {c['Id'][:12]}" for c in api.containers(all=True, filters=filters)]
            + [f"network {n['Name']}" for n in api.networks(filters=filters)]
            + [f"volume {v['Name']}" for v in api.volumes(filters=filters).get("Volumes") or []]
            + [f"image {i['Id'][:19]}" for i in api.images(filters=filters)])


def wait_no_leftovers(client: Any, run_id: str, grace_s: float = 10.0) -> list[str]:
    """Poll until the run has nothing left in the engine or ``grace_s`` passed; what is left."""
    deadline = time.monotonic() + grace_s
    left = leftovers(client, run_id)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = leftovers(client, run_id)
    return left


@needs_engine
def test_memory_hog_over_the_cap_is_oom_from_the_engine_state(engine: Any) -> None:
    """A 300 MB allocation in a 128 MB container is ``oom``, as the engine's OOMKilled state says."""
    since = int(time.time()) - 1
    # No time limit can fire first: the outcome can only come from how the engine says the container ended.
    with harness.deploy(f"{AGENTS / 'memory_hog.py'}:agent", runtime="docker", time_scale=0.01, gateway=False,
                        memory_mb=128, timeout_s=900) as d:
        run_id = run_id_of(d)
        r = d.invoke({"mb": 300})
        assert r.outcome == "oom", r.error
        assert "128 MB" in (r.error or "")
        assert d.invoke({"mb": 10}).ok  # a new container took the killed one's place
    events = list(engine.events(since=since, until=int(time.time()) + 1, decode=True,
                                filters={"type": "container", "event": "oom", "label": f"{LABEL}={run_id}"}))
    # One container was OOM-killed: the one running the hog. The engine may report that one kill more than
    # once (seen in CI: two "oom" events for one container), so count containers, not events.
    assert events and {e["Action"] for e in events} == {"oom"}
    assert len({e["Actor"]["ID"] for e in events}) == 1, events


CASES = [
    ("echo.py", {"x": 1}),
    ("crasher.py", {"how": "exit"}),
    ("crasher.py", {"how": "signal"}),
    ("crasher.py", {"how": "segfault"}),
    ("crasher.py", {"how": "raise"}),
    ("crasher.py", {"how": "nonjson"}),
    ("memory_hog.py", {"mb": 40}),
    ("sleeper.py", {"seconds": 1}),
]


def outcomes(agent: str, task: dict[str, Any], runtime: str) -> list[tuple[str, bool, Any]]:
    """(outcome, cold start, output) of two calls in a row on ``runtime``."""
    with harness.deploy(f"{AGENTS / agent}:agent", runtime=runtime, time_scale=0.01, gateway=False) as d:
        records = [d.invoke(task), d.invoke(task)]
    return [(r.outcome, r.cold_start, r.output if agent != "sleeper.py" else None) for r in records]


@needs_engine
@pytest.mark.parametrize(("agent", "task"), CASES, ids=[f"{a[:-3]}-{json.dumps(t)}" for a, t in CASES])
def test_sample_agents_have_the_same_outcomes_on_process_and_docker(agent: str, task: dict[str, Any]) -> None:
    """A sample agent's outcomes (and outputs) are the same on the process and the Docker runtime."""
    assert outcomes(agent, task, "docker") == outcomes(agent, task, "process")


@needs_engine
def test_nothing_of_the_run_remains_after_a_run(engine: Any) -> None:
    """After a run, no container, network, volume or image of it remains."""
    with harness.deploy(f"{AGENTS / 'sleeper.py'}:agent", runtime="docker", time_scale=0.01, gateway=False) as d:
        run_id = run_id_of(d)
        a, b = d.submit({"seconds": 1}), d.submit({"seconds": 1})
        assert d.wait(a, 60).ok and d.wait(b, 60).ok
        assert any(k.startswith("container") for k in leftovers(engine, run_id))
    assert wait_no_leftovers(engine, run_id) == []


@needs_engine
def test_nothing_of_the_run_remains_after_a_failed_run(engine: Any) -> None:
    """A crashed instance and an exception leaving the ``with`` block with a call in flight leave nothing."""
    with pytest.raises(RuntimeError, match="boom"), harness.deploy(
            f"{AGENTS / 'crasher.py'}:agent", runtime="docker", time_scale=0.01, gateway=False) as d:
        run_id = run_id_of(d)
        assert d.invoke({"how": "segfault"}).outcome == "crash"
        d.submit({"how": "hang"})
        raise RuntimeError("boom")
    assert wait_no_leftovers(engine, run_id) == []


@needs_engine
def test_nothing_of_the_run_remains_after_sigint_of_a_cli_run(engine: Any, tmp_path: Path) -> None:
    """Ctrl-C (SIGINT) of ``harness run`` with calls in flight removes every container of the run."""
    before = {c["Id"] for c in engine.api.containers(all=True, filters={"label": LABEL})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", f"{AGENTS / 'sleeper.py'}:agent", "--set", "runtime='docker'",
         "--set", "timeout_s=900", "--requests", "4", "--concurrency", "2", "--task", '{"seconds": 300}',
         "--time-scale", "0.01", "-q"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        run_ids: set[str] = set()
        deadline = time.monotonic() + 60
        while len(run_ids) == 0 and time.monotonic() < deadline and proc.poll() is None:
            now = [c for c in engine.api.containers(filters={"label": LABEL}) if c["Id"] not in before]
            if len([c for c in now if c["State"] == "running"]) >= 2:
                run_ids = {c["Labels"][LABEL] for c in now}
            time.sleep(0.1)
        assert run_ids, proc.stdout.read().decode() if proc.poll() is not None and proc.stdout else "no container"
        time.sleep(0.5)  # the calls are in flight
        os.kill(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out.decode()
    for run_id in run_ids:
        assert wait_no_leftovers(engine, run_id) == []


def test_runtime_names_are_checked() -> None:
    """An unknown runtime is a ConfigError naming the choices; ``docker:IMAGE`` names a built image."""
    assert parse_runtime("docker") == ("docker", None)
    assert parse_runtime("docker:my/agent:1") == ("docker", "my/agent:1")
    with pytest.raises(ConfigError, match=r"unknown runtime 'dokcer'.*did you mean 'docker'"):
        harness.deploy(f"{AGENTS / 'echo.py'}:agent", runtime="dokcer")


def test_generated_dockerfile_installs_the_harness_on_the_given_base(tmp_path: Path) -> None:
    """The generated Dockerfile starts from the configured base, installs the harness and the agent's requirements."""
    (tmp_path / "requirements.txt").write_text("httpx\n")
    text = dockerfile("registry.example/python:3.12", tmp_path)
    assert text.splitlines()[1] == "FROM registry.example/python:3.12"
    assert "pip install --no-cache-dir 'agent-deploy-harness[llm]'" in text
    assert "-r /tmp/agent-requirements.txt" in text
    assert 'ENTRYPOINT ["python", "-m", "emulators.runtime.docker.entry"]' in text


@needs_engine
def test_the_plugin_option_runs_instances_in_containers(pytester: pytest.Pytester, engine: Any) -> None:
    """``--harness-runtime docker`` deploys the ``deployment`` fixture's instances as containers."""
    pytester.makepyfile(test_uses="""
        def test_answers(deployment):
            '''The agent answers.'''
            r = deployment.invoke({"x": 1})
            assert r.ok, r.error
        """)
    since = int(time.time()) - 1

    def runs_started() -> set[str]:
        events = engine.events(since=since, until=int(time.time()) + 1, decode=True,
                               filters={"type": "container", "event": "start", "label": LABEL})
        return {e["Actor"]["Attributes"][LABEL] for e in events}

    earlier = runs_started()  # runs of earlier tests within the same second
    result = pytester.runpytest_inprocess(
        f"--harness-agent={AGENTS / 'echo.py'}:agent", "--harness-patterns=serverless,container",
        "--harness-runtime", "docker", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert len(runs_started() - earlier) == 2  # one run per pattern, its instances in containers
