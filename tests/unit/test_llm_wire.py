"""Wire formats of the LLM simulator without a server: request parsing and 400s, answer bodies, the order
and pacing of streamed events, cuts, and the providers' error bodies."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest

from emulators.clock import Clock
from emulators.llm import ApiError, Reply, ToolCall
from emulators.llm.anthropic_api import MessagesApi, anthropic_error
from emulators.llm.openai_api import ChatCompletionsApi, openai_error
from emulators.llm.pacing import PartialResponse, StreamResponse, Waiter
from emulators.llm.responses_api import ResponsesApi
from emulators.llm.sse import Frame

CALL = ToolCall("call_1", "add", '{"a": 2, "b": 3}')


def _events(frames: list[Frame]) -> list[tuple[str | None, Any]]:
    out: list[tuple[str | None, Any]] = []
    for f in frames:
        text = f.data.decode()
        event = text.split("\n")[0][7:] if text.startswith("event: ") else None
        data = text.split("data: ", 1)[1].strip()
        out.append((event, data if data == "[DONE]" else json.loads(data)))
    return out


def test_chat_parse_normalizes_roles_tools_and_tool_results() -> None:
    """Chat messages become a Prompt: developer -> system, tool results named after their call."""
    body = {"model": "m", "max_tokens": 9, "tool_choice": {"type": "function", "function": {"name": "add"}},
            "tools": [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}],
            "messages": [{"role": "developer", "content": "be brief"},
                         {"role": "user", "content": [{"type": "text", "text": "2+3"},
                                                      {"type": "image_url", "image_url": {"url": "x"}}]},
                         {"role": "assistant", "content": None, "tool_calls": [
                             {"id": "c1", "type": "function", "function": {"name": "add", "arguments": "{}"}}]},
                         {"role": "tool", "tool_call_id": "c1", "content": "5"}]}
    p = ChatCompletionsApi().parse(body)
    assert [m.role for m in p.messages] == ["system", "user", "assistant", "tool"]
    assert p.messages[1].extra_tokens == 85 and p.messages[3].tool_name == "add"
    assert (p.tool_choice, p.max_tokens, p.turn, [t.name for t in p.tools]) == ("add", 9, 2, ["add"])


@pytest.mark.parametrize(("body", "param", "code"), [
    ({"messages": [{"role": "user", "content": "x"}]}, "model", "missing_required_parameter"),
    ({"model": "m"}, "messages", "missing_required_parameter"),
    ({"model": "m", "messages": []}, "messages", "empty_array"),
    ({"model": "m", "messages": {"role": "user"}}, "messages", "invalid_type"),
    ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "invalid_value"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens", "invalid_value"),
])
def test_chat_parse_refuses_what_openai_refuses(body: dict[str, Any], param: str, code: str) -> None:
    """Malformed chat requests are 400 ApiErrors with OpenAI's param and code."""
    with pytest.raises(ApiError) as info:
        ChatCompletionsApi().parse(body)
    assert (info.value.status, info.value.param, info.value.code) == (400, param, code)


def test_chat_stream_paces_one_chunk_per_token_and_ends_with_done() -> None:
    """The chat stream has a lead role chunk, one chunk per token, the finish chunk, usage, then [DONE]."""
    api = ChatCompletionsApi()
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream_options": {"include_usage": True}}
    prompt = api.parse(body)
    reply = Reply("x" * 40)
    frames = list(api.frames(prompt, reply, body, random.Random(0)))
    events = _events(frames)
    assert frames[0].lead and not any(f.lead for f in frames[1:])
    assert [f.tokens for f in frames[1:11]] == list(range(1, 11)) and frames[-1].tokens == 10
    assert events[-1][1] == "[DONE]" and events[-2][1]["usage"]["completion_tokens"] == 10
    assert events[-3][1]["choices"][0]["finish_reason"] == "stop"


def test_chat_stream_tool_call_pieces_rebuild_the_arguments() -> None:
    """A streamed tool call starts with id and name, and its argument pieces join to the arguments."""
    api = ChatCompletionsApi()
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    events = _events(list(api.frames(api.parse(body), Reply(tool_calls=(CALL,)), body, random.Random(0))))
    deltas = [e[1]["choices"][0]["delta"] for e in events[1:-2]]
    assert deltas[0]["tool_calls"][0] == {"index": 0, "id": "call_1", "type": "function",
                                          "function": {"name": "add", "arguments": ""}}
    assert "".join(d["tool_calls"][0]["function"]["arguments"] for d in deltas[1:]) == CALL.arguments


def test_responses_events_are_numbered_and_complete() -> None:
    """Responses stream events carry increasing sequence numbers, matching event names, and end completed."""
    api = ResponsesApi()
    body = {"model": "m", "input": "hi", "instructions": "brief"}
    prompt = api.parse(body)
    assert [m.role for m in prompt.messages] == ["system", "user"] and prompt.carry_from == 1
    events = _events(list(api.frames(prompt, Reply("hello there", (CALL,)), body, random.Random(0))))
    assert [e[1]["sequence_number"] for e in events] == list(range(len(events)))
    assert all(name == data["type"] for name, data in events)
    kinds = [name for name, _ in events]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds[-1] == "response.completed" and "response.function_call_arguments.done" in kinds
    final = events[-1][1]["response"]
    assert [o["type"] for o in final["output"]] == ["message", "function_call"] and final["usage"]["output_tokens"]


def test_responses_input_items_merge_parallel_calls_into_one_turn() -> None:
    """Consecutive function_call items form one assistant turn; their outputs are named tool results."""
    items = [{"role": "user", "content": "q"},
             {"type": "function_call", "call_id": "a", "name": "f", "arguments": "{}"},
             {"type": "function_call", "call_id": "b", "name": "g", "arguments": "{}"},
             {"type": "function_call_output", "call_id": "b", "output": "1"},
             {"type": "reasoning", "summary": []}]
    p = ResponsesApi().parse({"model": "m", "input": items})
    assert [m.role for m in p.messages] == ["user", "assistant", "tool"] and p.turn == 2
    assert len(p.messages[1].tool_calls) == 2 and p.messages[2].tool_name == "g"


def test_anthropic_parse_requires_max_tokens_and_splits_tool_results() -> None:
    """Messages need max_tokens; tool_result blocks become tool results after the user's text."""
    api = MessagesApi()
    with pytest.raises(ApiError, match="max_tokens: Field required"):
        api.parse({"model": "m", "messages": [{"role": "user", "content": "x"}]})
    p = api.parse({"model": "m", "max_tokens": 5, "system": [{"type": "text", "text": "sys"}], "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "w", "input": {"c": "P"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}]}]})
    assert [m.role for m in p.messages] == ["system", "user", "assistant", "tool"]
    assert p.messages[3].tool_name == "w" and p.tool_results()[0].text == "sunny"


def test_anthropic_stream_event_sequence() -> None:
    """message_start, text block, tool_use block with JSON pieces, message_delta with usage, message_stop."""
    api = MessagesApi()
    body = {"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    events = _events(list(api.frames(api.parse(body), Reply("ok", (CALL,)), body, random.Random(0))))
    kinds = [k for k, _ in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    pieces = [d["delta"]["partial_json"] for k, d in events if k == "content_block_delta"
              and d["delta"]["type"] == "input_json_delta"]
    assert json.loads("".join(pieces)) == {"a": 2, "b": 3}
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use" and events[-2][1]["usage"]["output_tokens"] == 1 + 5


def test_error_bodies_follow_each_provider() -> None:
    """OpenAI errors are {"error": {...}} with server_error for 5xx; Anthropic's name 429 and 529 kinds."""
    assert openai_error(ApiError(503, ""))["error"]["type"] == "server_error"
    assert openai_error(ApiError(400, "bad", param="x"))["error"] == {
        "message": "bad", "type": "invalid_request_error", "param": "x", "code": None}
    assert anthropic_error(ApiError(529, ""))["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    assert anthropic_error(ApiError(429, "slow down"))["error"]["type"] == "rate_limit_error"


class _Pipe:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, message: Any) -> None:
        self.sent.append(message)

    async def receive(self) -> Any:
        await asyncio.sleep(3600)  # the client never leaves


def _run_stream(cut: bool, tokens: int = 10) -> tuple[_Pipe, list[tuple[float, int, str]]]:
    ended: list[tuple[float, int, str]] = []
    frames = [Frame(b"head", lead=True)] + [Frame(b"t", k) for k in range(1, tokens + 1)] + [Frame(b"end", tokens)]

    async def main() -> _Pipe:
        pipe = _Pipe()
        response = StreamResponse(iter(frames), waiter=Waiter(Clock(0.001)), ttft_s=0.5, tokens_per_s=10,
                                  total_tokens=tokens, cut=cut, headers={}, on_begin=lambda s: None,
                                  on_end=lambda *a: ended.append(a))
        await response({"type": "http"}, pipe.receive, pipe.send)
        return pipe

    return asyncio.run(main()), ended


def test_stream_response_sends_everything_and_reports_the_planned_wait() -> None:
    """A full stream ends with more_body False and reports ttft + tokens / rate as its platform wait."""
    pipe, ended = _run_stream(cut=False)
    body = b"".join(m.get("body", b"") for m in pipe.sent[1:])
    assert body == b"head" + b"t" * 10 + b"end" and pipe.sent[-1]["more_body"] is False
    assert ended == [(pytest.approx(1.5), 10, "done")]


def test_stream_response_cut_stops_half_way_unfinished() -> None:
    """A cut stream sends half the tokens and never its final frame (more_body stays True)."""
    pipe, ended = _run_stream(cut=True)
    body = b"".join(m.get("body", b"") for m in pipe.sent[1:])
    assert body == b"head" + b"t" * 5 and pipe.sent[-1]["more_body"] is True
    assert ended[0][1:] == (5, "cut")


def test_partial_response_announces_the_full_length_and_sends_half() -> None:
    """A cut JSON body keeps its full content-length but sends only its first half."""
    async def main() -> _Pipe:
        pipe = _Pipe()
        await PartialResponse(b"0123456789", headers={})({"type": "http"}, pipe.receive, pipe.send)
        return pipe

    pipe = asyncio.run(main())
    assert (b"content-length", b"10") in pipe.sent[0]["headers"]
    assert pipe.sent[1] == {"type": "http.response.body", "body": b"01234", "more_body": True}
