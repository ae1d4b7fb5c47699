"""Secrets never reach a report file: a key leaked by an agent is redacted in JSON, Markdown, HTML and JUnit."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration

ENV_KEY = "sk-proj-LEAKEDenv0123456789abcdefXYZ"
PLAIN_KEY = "hunter2-correct-horse-battery"  # no key shape: only known as a secret env var's value
INHERITED_KEY = "inheritedTOKENvalue-987654321"

LEAKY_AGENT = '''
import os
import httpx


def agent(task, ctx):
    key, plain, inherited = os.environ["LEAKY_API_KEY"], os.environ["DB_PASSWORD"], os.environ["CI_DEPLOY_TOKEN"]
    print("debug: my key is", key, plain, inherited, flush=True)
    # The key goes to the LLM endpoint too, as a header and in the prompt.
    reply = httpx.post(os.environ["OPENAI_BASE_URL"] + "/chat/completions",
                       headers={"Authorization": f"Bearer {key}"}, timeout=10,
                       json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"key={key}"}]})
    ctx.emit({"headers": {"Authorization": f"Bearer {key}"}, "api_key": key})
    if task.get("fail"):
        raise RuntimeError(f"could not authenticate with {key} / {plain} / {inherited}")
    return {"key": key, "plain": plain, "inherited": inherited, "llm": reply.json()}
'''

USER_TEST = f'''
import pytest

ENV = {{"LEAKY_API_KEY": "{ENV_KEY}", "DB_PASSWORD": "{PLAIN_KEY}"}}
# timeout_s: at time_scale 0.001 the agent's real HTTP round trip counts 1000x; not what this checks.


@pytest.mark.harness(env=ENV, timeout_s=900)
def test_leaks_in_output(deployment):
    """The agent returns its keys; the test prints them and fails showing them."""
    r = deployment.invoke({{}})
    print("output:", r.output)
    assert r.output["key"] == "something else"


@pytest.mark.harness(env=ENV, timeout_s=900)
def test_leaks_in_error(deployment):
    """The agent fails with its keys in the message."""
    assert deployment.invoke({{"fail": True}}).ok
'''


def test_a_leaked_key_appears_in_no_output_file(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys from the agent's env (given or inherited) in its output, error, events and LLM call are redacted."""
    monkeypatch.setenv("CI_DEPLOY_TOKEN", INHERITED_KEY)
    pytester.makepyfile(leaky=LEAKY_AGENT, test_user=USER_TEST)
    result = pytester.runpytest_subprocess(
        "--harness-agent", "leaky.py:agent", "--harness-patterns", "serverless", "--harness-time-scale", "0.001",
        "--harness-report", "out.json", "--harness-html", "out.html", "--harness-markdown", "out.md",
        "--junitxml", "junit.xml", "-o", "junit_logging=all")
    result.assert_outcomes(failed=2)
    files = {name: (pytester.path / name).read_text() for name in ("out.json", "out.html", "out.md", "junit.xml")}
    for name, text in files.items():
        for secret in (ENV_KEY, PLAIN_KEY, INHERITED_KEY, "LEAKEDenv"):
            assert secret not in text, f"{secret!r} leaked into {name}"
    assert "[REDACTED]" in files["out.json"]
    assert "[REDACTED]" in files["junit.xml"]  # the failure text and captured output were rewritten, not dropped
    assert "could not authenticate with" in files["out.json"]  # the rest of the message survives
    summary = json.loads(files["out.json"])["summaries"]["serverless"]
    assert summary["calls"] == 2 and summary["llm_calls"] == 2  # the key really went to the LLM endpoint
