"""``--harness-traces PATH``: the pytest plugin writes every deployment's traces to one OTLP/JSON-lines file."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration

KEY = "sk-proj-TRACEDleak0123456789abcdef"

AGENT = '''
import os


def agent(task, ctx):
    print("debug: my key is", os.environ["LEAKY_API_KEY"], flush=True)
    if task.get("fail"):
        raise RuntimeError("could not authenticate with " + os.environ["LEAKY_API_KEY"])
    return {"ok": True}
'''

USER_TEST = f'''
import pytest


@pytest.mark.harness(env={{"LEAKY_API_KEY": "{KEY}"}})
def test_calls(deployment):
    """One good call and one that fails with the key in its error."""
    assert deployment.invoke({{}}).ok
    assert not deployment.invoke({{"fail": True}}).ok
'''


def test_the_plugin_writes_every_patterns_traces_to_one_file(pytester: pytest.Pytester) -> None:
    """Two patterns, two calls each: four traces in the file, none carrying the agent's key."""
    pytester.makepyfile(probe=AGENT, test_user=USER_TEST)
    (pytester.path / "traces.jsonl").write_text("stale line from an earlier session\n")
    result = pytester.runpytest_subprocess("--harness-agent", "probe.py:agent", "--harness-patterns",
                                           "serverless,container", "--harness-time-scale", "0.01",
                                           "--harness-traces", "traces.jsonl")
    result.assert_outcomes(passed=2)
    text = (pytester.path / "traces.jsonl").read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    spans = [s for line in lines for rs in line["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    roots = [s for s in spans if "parentSpanId" not in s]
    patterns = {kv["value"]["stringValue"] for line in lines for rs in line["resourceSpans"]
                for kv in rs["resource"]["attributes"] if kv["key"] == "harness.pattern"}
    assert len(roots) == 4 and patterns == {"serverless", "container"}
    assert KEY not in text and "TRACEDleak" not in text and "stale line" not in text
