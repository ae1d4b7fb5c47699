"""deploy(source=...) and --harness-from: a deployment file's limits reach real deployments."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import harness
from emulators.errors import ConfigError

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "fixtures" / "deployments"


@pytest.mark.parametrize(("path", "function", "pattern", "profile"), [
    ("sam/template.yaml", "ApiFunction", "serverless", "aws-lambda"),
    ("sam/template.yaml", "WorkerFunction", "daemon", "daemon-local"),
    ("serverless/serverless.yml", "ask", "serverless", "aws-lambda"),
    ("wrangler/wrangler.toml", None, "edge", "cloudflare-workers-paid"),
    ("vercel/vercel.json", None, "serverless", "vercel-functions"),
    ("k8s/manifests.yaml", None, "container", "k8s-hpa"),
    ("k8s-dir", None, "container", "k8s-hpa"),  # a folder of manifests, as kubectl apply -f DIR
    ("fly/fly.toml", None, "container", "fly-machines"),
    ("cloudrun/service.yaml", None, "container", "gcp-cloud-run"),
])
def test_every_sample_deploys_and_answers(path: str, function: str | None, pattern: str, profile: str) -> None:
    """Each sample deploys from its file alone (agent, pattern, profile, env) and answers a call."""
    with harness.deploy(source=SAMPLES / path, function=function, gateway=False, llm="off") as d:
        r = d.invoke({"question": "hi", "text": "a b", "message": "m"})
        assert r.ok, r.error
        assert (d.pattern, d.profile.name) == (pattern, profile)
        assert d.config.env or path.startswith("vercel")  # the file's env reached the deployment


def test_declared_timeout_is_enforced(tmp_path: Path) -> None:
    """A handler that outlives the template's Timeout times out, as it would on Lambda."""
    (tmp_path / "app.py").write_text("import time\n\ndef handler(event, context):\n    time.sleep(1.5)\n"
                                     "    return {}\n")
    (tmp_path / "template.yaml").write_text(textwrap.dedent("""
        Transform: AWS::Serverless-2016-10-31
        Resources:
          Slow:
            Type: AWS::Serverless::Function
            Properties:
              Handler: app.handler
              Runtime: python3.12
              Timeout: 1
        """))
    with harness.deploy(source=tmp_path / "template.yaml", gateway=False, llm="off") as d:
        r = d.invoke({})
        assert r.outcome == "timeout" and d.profile.timeout_s == 1.0


def test_explicit_arguments_win_and_several_functions_need_a_name() -> None:
    """An explicit override wins over the file; a multi-function file without function= lists the names."""
    with harness.deploy(source=SAMPLES / "sam" / "template.yaml", function="ApiFunction", memory_mb=512,
                        gateway=False, llm="off") as d:
        assert (d.profile.memory_mb, d.profile.timeout_s) == (512.0, 20.0)
    with pytest.raises(ConfigError, match="ApiFunction, WorkerFunction"):
        harness.deploy(source=SAMPLES / "sam" / "template.yaml", gateway=False)
    with pytest.raises(ConfigError, match="pass source= too"):
        harness.deploy("x.py:agent", function="ApiFunction", gateway=False)


def test_another_pattern_takes_the_agent_env_timeout_and_memory_only() -> None:
    """On the container pattern the Lambda's Timeout and MemorySize carry over; its concurrency cap does not."""
    with harness.deploy(source=SAMPLES / "sam" / "template.yaml", function="ApiFunction", pattern="container",
                        gateway=False, llm="off") as d:
        assert (d.profile.name, d.profile.memory_mb, d.profile.timeout_s) == ("k8s-hpa", 256.0, 20.0)
        assert d.profile.max_replicas == 10  # k8s-hpa's own scaling, not ReservedConcurrentExecutions
        assert d.config.env["MODEL"] == "gpt-4o-mini" and d.invoke({"question": "x"}).ok
    with harness.deploy(source=SAMPLES / "sam" / "template.yaml", function="ApiFunction", pattern="edge",
                        gateway=False, llm="off") as d:
        assert (d.profile.memory_mb, d.profile.timeout_s) == (128.0, 900.0)  # the isolate's, not the Lambda's


def test_pytest_option_harness_from(pytester: pytest.Pytester) -> None:
    """--harness-from runs the deployment fixture on the file's own pattern with its limits."""
    pytester.makepyfile(test_it='''
        def test_limits(deployment):
            """The declared limits and env reach the deployment."""
            r = deployment.invoke({"question": "hi"})
            assert r.ok, r.error
            assert deployment.pattern == "serverless" and deployment.profile.memory_mb == 256
            assert deployment.profile.timeout_s == 20
        ''')
    result = pytester.runpytest("-p", "no:cacheprovider", f"--harness-from={SAMPLES / 'sam' / 'template.yaml'}",
                                "--harness-function=ApiFunction")
    result.assert_outcomes(passed=1)
    bad = pytester.runpytest("-p", "no:cacheprovider", f"--harness-from={SAMPLES / 'sam' / 'template.yaml'}",
                             "--harness-function=Nope")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    assert "ApiFunction, WorkerFunction" in bad.stderr.str()


def test_pytest_harness_from_runs_each_function_on_its_own_pattern(pytester: pytest.Pytester) -> None:
    """Without --harness-function a file's functions each run on their declared pattern, ids naming both."""
    pytester.makepyfile(test_each='''
        def test_answers(deployment):
            """Every function answers on its own pattern."""
            assert deployment.invoke({"question": "hi", "text": "a b"}).ok
        ''')
    result = pytester.runpytest("-p", "no:cacheprovider", "-v",
                                f"--harness-from={SAMPLES / 'sam' / 'template.yaml'}")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_answers?ApiFunction-serverless? PASSED*",
                                 "*test_answers?WorkerFunction-daemon? PASSED*"])
