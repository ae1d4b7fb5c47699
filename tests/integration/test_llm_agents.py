"""The sample tool-calling agents (fixtures/agents/openai_tools.py, anthropic_tools.py) run their real SDK
loops end to end against the simulator, pointed at it only by the environment."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .llm_helpers import LLM_SCRIPTS, ServerThread, load_agent

pytestmark = pytest.mark.integration


class _Ctx:
    invocation_id = "inv-1"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerThread]:
    """A simulator with the three-call tool-loop script, and the SDK environment pointing at it."""
    with ServerThread(script=LLM_SCRIPTS / "tool_loop.toml") as s:
        monkeypatch.setenv("OPENAI_BASE_URL", s.openai_url("inst-9"))
        monkeypatch.setenv("OPENAI_API_KEY", "harness-key")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", s.anthropic_url("inst-9"))
        monkeypatch.setenv("ANTHROPIC_API_KEY", "harness-key")
        yield s


def test_openai_agent_runs_a_three_call_tool_loop(server: ServerThread) -> None:
    """add, then get_weather, then text: three model calls, both tool results in the answer."""
    out = load_agent("openai_tools").agent({"question": "What is 2 + 3, and the weather in Paris?"}, _Ctx())
    assert out["model_calls"] == 3
    assert "5" in out["answer"] and "sunny and 21 C in Paris" in out["answer"]
    calls = server.calls
    assert [(c.caller, c.invocation_id, c.status) for c in calls] == [("inst-9", "inv-1", 200)] * 3
    assert calls[0].input_tokens < calls[1].input_tokens < calls[2].input_tokens  # the conversation grows


def test_anthropic_agent_runs_a_three_call_tool_loop(server: ServerThread) -> None:
    """The anthropic SDK loop makes the same three calls and ends with text quoting both tools."""
    out = load_agent("anthropic_tools").agent({"question": "What is 2 + 3, and the weather in Paris?"}, _Ctx())
    assert out["model_calls"] == 3
    assert "sunny and 21 C in Paris" in out["answer"]
    assert [c.api for c in server.calls] == ["messages"] * 3


def test_unscripted_default_loop_is_two_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a script the default answer calls one tool and then answers: two calls, repeatable."""
    with ServerThread() as s:
        monkeypatch.setenv("OPENAI_BASE_URL", s.openai_url())
        monkeypatch.setenv("OPENAI_API_KEY", "k")
        first = load_agent("openai_tools").agent({"question": "What is 4 + 5?"})
        again = load_agent("openai_tools").agent({"question": "What is 4 + 5?"})
    assert first == again and first["model_calls"] == 2 and "add returned 9" in first["answer"]
