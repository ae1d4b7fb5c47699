"""The real openai SDK against the LLM simulator, only the base URL set: chat completions (sync, async,
streaming, tool calls, legacy functions), the Responses API, the model list, attribution."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest

from .llm_helpers import ServerThread

pytestmark = pytest.mark.integration

ADD = {"type": "function", "function": {
    "name": "add", "description": "Add two integers.",
    "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                   "required": ["a", "b"]}}}
ADD_RESPONSES = {"type": "function", "name": "add", "description": "Add two integers.",
                 "parameters": ADD["function"]["parameters"]}
QUESTION = [{"role": "user", "content": "What is 2 + 3?"}]


def test_chat_completion_answers_text_with_usage(openai_client: openai.OpenAI, llm_server: ServerThread) -> None:
    """A plain completion has assistant text, finish_reason stop and consistent usage."""
    r = openai_client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    choice = r.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content.startswith("Simulated answer to: What is 2 + 3?")
    assert r.usage is not None
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    call = llm_server.calls[-1]
    assert (call.caller, call.provider, call.api, call.status) == ("inst-1", "openai", "chat.completions", 200)
    assert (call.input_tokens, call.output_tokens) == (r.usage.prompt_tokens, r.usage.completion_tokens)


def test_invocation_header_attributes_the_call(llm_server: ServerThread) -> None:
    """The x-harness-invocation header and the /i/{caller} prefix both reach the LLMCall."""
    with openai.OpenAI(base_url=llm_server.openai_url("inst-7"), api_key="k",
                       default_headers={"x-harness-invocation": "inv-42"}) as c:
        c.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    assert (llm_server.calls[-1].caller, llm_server.calls[-1].invocation_id) == ("inst-7", "inv-42")


def test_stream_yields_the_same_text_and_usage_last(openai_client: openai.OpenAI) -> None:
    """A streamed answer concatenates to the non-streamed one; include_usage adds a final usage chunk."""
    whole = openai_client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    chunks = list(openai_client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, stream=True,
                                                        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_stream_without_include_usage_has_no_usage_chunk(openai_client: openai.OpenAI) -> None:
    """Without stream_options.include_usage no chunk carries usage."""
    chunks = list(openai_client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, stream=True))
    assert all(c.usage is None for c in chunks) and all(c.choices for c in chunks)


def test_tool_call_with_arguments_from_the_prompt(openai_client: openai.OpenAI) -> None:
    """Offered a tool and no tool result yet, the model calls it with arguments taken from the prompt."""
    r = openai_client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, tools=[ADD])
    assert r.choices[0].finish_reason == "tool_calls"
    (call,) = r.choices[0].message.tool_calls
    assert call.function.name == "add" and call.id.startswith("call_")
    assert json.loads(call.function.arguments) == {"a": 2, "b": 3}


def test_tool_result_ends_the_loop_with_text(openai_client: openai.OpenAI) -> None:
    """Once a tool result follows the last user message the model answers in text, quoting it."""
    first = openai_client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, tools=[ADD])
    tc = first.choices[0].message.tool_calls[0]
    messages = [*QUESTION, first.choices[0].message.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": tc.id, "content": "5"}]
    second = openai_client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=[ADD])
    assert second.choices[0].finish_reason == "stop"
    assert "add returned 5" in second.choices[0].message.content
    assert second.usage.prompt_tokens > first.usage.prompt_tokens  # the conversation grew


def test_stream_helper_accumulates_a_tool_call(openai_client: openai.OpenAI) -> None:
    """chat.completions.stream assembles the streamed tool call into the final completion."""
    with openai_client.chat.completions.stream(model="gpt-4o-mini", messages=QUESTION, tools=[ADD]) as stream:
        final = stream.get_final_completion()
    (call,) = final.choices[0].message.tool_calls
    assert call.function.name == "add" and json.loads(call.function.arguments) == {"a": 2, "b": 3}


def test_legacy_functions_get_a_function_call(openai_client: openai.OpenAI) -> None:
    """A request with the legacy 'functions' field gets message.function_call and finish_reason function_call."""
    r = openai_client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, functions=[ADD["function"]])
    assert r.choices[0].finish_reason == "function_call"
    assert r.choices[0].message.function_call.name == "add"


def test_max_tokens_truncates_with_finish_reason_length(openai_client: openai.OpenAI) -> None:
    """max_tokens below the answer's length cuts it: finish_reason length, completion tokens == the cap."""
    r = openai_client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, max_tokens=5)
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 5


def test_async_client_streams_and_completes(llm_server: ServerThread) -> None:
    """The AsyncOpenAI client works for streamed and plain completions."""
    async def main() -> tuple[str, str]:
        async with openai.AsyncOpenAI(base_url=llm_server.openai_url(), api_key="k") as c:
            whole = await c.chat.completions.create(model="gpt-4o", messages=QUESTION)
            stream = await c.chat.completions.create(model="gpt-4o", messages=QUESTION, stream=True)
            parts = [ch.choices[0].delta.content or "" async for ch in stream]
            return whole.choices[0].message.content, "".join(parts)

    whole, streamed = asyncio.run(main())
    assert whole == streamed


def test_responses_create_text_and_usage(openai_client: openai.OpenAI) -> None:
    """responses.create answers a message item; output_text and usage are filled."""
    r = openai_client.responses.create(model="gpt-4o-mini", input="Say something", instructions="Be brief.")
    assert r.status == "completed" and r.output_text.startswith("Simulated answer to: Say something")
    assert r.usage.input_tokens > 0 and r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens


def test_responses_function_call_round_trip(openai_client: openai.OpenAI) -> None:
    """A function tool is called; sending function_call_output back gets a text answer."""
    first = openai_client.responses.create(model="gpt-4o-mini", input="What is 2 + 3?", tools=[ADD_RESPONSES])
    (fc,) = [o for o in first.output if o.type == "function_call"]
    assert fc.name == "add" and json.loads(fc.arguments) == {"a": 2, "b": 3}
    follow = [{"role": "user", "content": "What is 2 + 3?"}, fc.model_dump(exclude_none=True),
              {"type": "function_call_output", "call_id": fc.call_id, "output": "5"}]
    second = openai_client.responses.create(model="gpt-4o-mini", input=follow, tools=[ADD_RESPONSES])
    assert "add returned 5" in second.output_text
    output = [{"type": "function_call_output", "call_id": fc.call_id, "output": "5"}]
    chained = openai_client.responses.create(model="gpt-4o-mini", previous_response_id=first.id, tools=[ADD_RESPONSES],
                                             input=output)
    assert "add returned 5" in chained.output_text


def test_responses_unknown_previous_id_is_a_400(openai_client: openai.OpenAI) -> None:
    """previous_response_id naming nothing stored is refused with a BadRequestError."""
    with pytest.raises(openai.BadRequestError, match="not found"):
        openai_client.responses.create(model="gpt-4o-mini", previous_response_id="resp_nope", input="hi")


def test_responses_stream_helper_text_and_tool(openai_client: openai.OpenAI) -> None:
    """responses.stream accumulates streamed text and function calls into the final response."""
    with openai_client.responses.stream(model="gpt-4o-mini", input="Hello there") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        text = stream.get_final_response().output_text
    assert "".join(deltas) == text and text
    with openai_client.responses.stream(model="gpt-4o-mini", input="What is 2 + 3?", tools=[ADD_RESPONSES]) as stream:
        final = stream.get_final_response()
    assert [o.type for o in final.output] == ["function_call"]


def test_async_responses_stream(llm_server: ServerThread) -> None:
    """The async client streams Responses events ending with response.completed."""
    async def main() -> list[str]:
        async with openai.AsyncOpenAI(base_url=llm_server.openai_url(), api_key="k") as c:
            stream = await c.responses.create(model="gpt-4o-mini", input="Hi", stream=True)
            return [e.type async for e in stream]

    kinds = asyncio.run(main())
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"


def test_models_list(openai_client: openai.OpenAI) -> None:
    """GET /v1/models lists the built-in model names."""
    ids = {m.id for m in openai_client.models.list()}
    assert {"gpt-4o-mini", "claude-haiku-4-5"} <= ids
    assert openai_client.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"


def test_same_seed_same_answer_other_seed_other_answer() -> None:
    """Answers are derived from the prompt and the seed: repeatable, and a new seed changes them."""
    def answer(seed: int) -> str:
        with ServerThread(seed=seed) as s, openai.OpenAI(base_url=s.openai_url(), api_key="k") as c:
            return str(c.chat.completions.create(model="m", messages=QUESTION).choices[0].message.content)

    assert answer(1) == answer(1)
    assert answer(1) != answer(2)
