"""The real anthropic SDK against the LLM simulator, only the base URL set: messages (sync, async,
streaming), tool_use blocks, usage, the Anthropic error format and overload retries."""

from __future__ import annotations

import asyncio

import anthropic
import httpx
import pytest

from emulators.llm import load_script

from .llm_helpers import ServerThread

pytestmark = pytest.mark.integration

MODEL = "claude-haiku-4-5"
WEATHER = {"name": "get_weather", "description": "Current weather in a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
ASK = [{"role": "user", "content": "What is the weather in Paris today?"}]


def test_message_answers_text_with_usage(anthropic_client: anthropic.Anthropic, llm_server: ServerThread) -> None:
    """A plain message has one text block, stop_reason end_turn, and usage the LLMCall agrees with."""
    m = anthropic_client.messages.create(model=MODEL, max_tokens=200, messages=[{"role": "user", "content": "Hello"}],
                                         system="You are terse.")
    assert m.stop_reason == "end_turn" and [b.type for b in m.content] == ["text"]
    assert m.content[0].text.startswith("Simulated answer to: Hello")
    call = llm_server.calls[-1]
    assert (call.caller, call.provider, call.api, call.status) == ("inst-a", "anthropic", "messages", 200)
    assert (call.input_tokens, call.output_tokens) == (m.usage.input_tokens, m.usage.output_tokens)


def test_stream_text_matches_and_final_usage(anthropic_client: anthropic.Anthropic) -> None:
    """messages.stream yields the same text as create and a final message with usage."""
    kwargs = {"model": MODEL, "max_tokens": 200, "messages": [{"role": "user", "content": "Hello"}]}
    whole = anthropic_client.messages.create(**kwargs)
    with anthropic_client.messages.stream(**kwargs) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == whole.content[0].text
    assert final.usage.output_tokens == whole.usage.output_tokens and final.stop_reason == "end_turn"


def test_raw_stream_event_order(anthropic_client: anthropic.Anthropic) -> None:
    """create(stream=True) yields message_start, block events, message_delta, message_stop in order."""
    events = [e.type for e in anthropic_client.messages.create(model=MODEL, max_tokens=50, stream=True,
                                                               messages=[{"role": "user", "content": "Hi"}])]
    assert events[0] == "message_start" and events[1] == "content_block_start"
    assert events[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert "content_block_delta" in events


def test_tool_use_with_input_from_the_prompt(anthropic_client: anthropic.Anthropic) -> None:
    """Offered a tool, the model answers a tool_use block whose input comes from the prompt."""
    m = anthropic_client.messages.create(model=MODEL, max_tokens=200, messages=ASK, tools=[WEATHER])
    assert m.stop_reason == "tool_use"
    (block,) = m.content
    assert block.type == "tool_use" and block.id.startswith("toolu_")
    assert block.name == "get_weather" and block.input == {"city": "Paris"}


def test_streamed_tool_use_is_assembled(anthropic_client: anthropic.Anthropic) -> None:
    """input_json_delta pieces assemble into the tool_use input in the stream's final message."""
    with anthropic_client.messages.stream(model=MODEL, max_tokens=200, messages=ASK, tools=[WEATHER]) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use" and final.content[0].input == {"city": "Paris"}


def test_tool_result_gets_a_text_answer(anthropic_client: anthropic.Anthropic) -> None:
    """A tool_result after the tool_use ends the loop with text that quotes it."""
    first = anthropic_client.messages.create(model=MODEL, max_tokens=200, messages=ASK, tools=[WEATHER])
    use = first.content[0]
    messages = [*ASK, {"role": "assistant", "content": first.content},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}]}]
    second = anthropic_client.messages.create(model=MODEL, max_tokens=200, messages=messages, tools=[WEATHER])
    assert second.stop_reason == "end_turn" and "get_weather returned sunny" in second.content[0].text
    assert second.usage.input_tokens > first.usage.input_tokens


def test_max_tokens_stop_reason(anthropic_client: anthropic.Anthropic) -> None:
    """An answer longer than max_tokens stops with stop_reason max_tokens at exactly that many tokens."""
    m = anthropic_client.messages.create(model=MODEL, max_tokens=3, messages=[{"role": "user", "content": "Hello"}])
    assert m.stop_reason == "max_tokens" and m.usage.output_tokens == 3


def test_async_client(llm_server: ServerThread) -> None:
    """AsyncAnthropic creates and streams messages."""
    async def main() -> tuple[str, str]:
        async with anthropic.AsyncAnthropic(base_url=llm_server.anthropic_url(), api_key="k") as c:
            kwargs = {"model": MODEL, "max_tokens": 100, "messages": [{"role": "user", "content": "Hey"}]}
            whole = await c.messages.create(**kwargs)
            async with c.messages.stream(**kwargs) as stream:
                text = "".join([t async for t in stream.text_stream])
            return whole.content[0].text, text

    whole, streamed = asyncio.run(main())
    assert whole == streamed


def test_missing_max_tokens_is_a_400_in_anthropic_format(llm_server: ServerThread) -> None:
    """A body without max_tokens is refused 400 with {"type": "error", "error": {...}}."""
    r = httpx.post(f"{llm_server.url}/v1/messages", json={"model": MODEL, "messages": ASK},
                   headers={"anthropic-version": "2023-06-01"})
    assert r.status_code == 400
    assert r.json() == {"type": "error", "error": {"type": "invalid_request_error",
                                                   "message": "max_tokens: Field required"}}


def test_empty_messages_raise_bad_request(anthropic_client: anthropic.Anthropic) -> None:
    """The SDK raises BadRequestError with the simulator's message for an empty message list."""
    with pytest.raises(anthropic.BadRequestError, match="at least one message"):
        anthropic_client.messages.create(model=MODEL, max_tokens=10, messages=[])


def test_overloaded_once_then_the_sdk_retry_succeeds() -> None:
    """A scripted 529 overloaded_error on the first call is retried by the SDK and the retry succeeds."""
    script = load_script({"rules": [{"api": "messages", "times": 1, "error": 529}]})
    with ServerThread(script=script) as s, anthropic.Anthropic(base_url=s.anthropic_url(), api_key="k") as c:
        m = c.messages.create(model=MODEL, max_tokens=20, messages=[{"role": "user", "content": "Hi"}])
        assert m.content[0].type == "text"
        assert [(x.status, x.fault) for x in s.calls] == [(529, "scripted"), (200, None)]


def test_count_tokens_and_models_list(anthropic_client: anthropic.Anthropic, llm_server: ServerThread) -> None:
    """count_tokens gives the input tokens a message would bill; models.list pages Anthropic's shape."""
    messages = [{"role": "user", "content": "Hello there"}]
    counted = anthropic_client.messages.count_tokens(model=MODEL, messages=messages)
    billed = anthropic_client.messages.create(model=MODEL, max_tokens=10, messages=messages)
    assert counted.input_tokens == billed.usage.input_tokens
    assert MODEL in {m.id for m in anthropic_client.models.list()}
    assert llm_server.calls[-1].api == "messages"  # counting is not an LLM call
