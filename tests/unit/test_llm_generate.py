"""The deterministic default answer: text derived from the prompt, tool calls with schema-driven arguments."""

from __future__ import annotations

import json
import random

from emulators.llm import Message, Prompt, ToolSpec
from emulators.llm.generate import arguments_for, default_reply

ADD = ToolSpec("add", "Add.", {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                               "required": ["a", "b"]})
WEATHER = ToolSpec("get_weather", "", {"type": "object", "properties": {"city": {"type": "string"}},
                                       "required": ["city"]})


def _prompt(*messages: Message, tools: tuple[ToolSpec, ...] = (), choice: str | None = None,
            provider: str = "openai") -> Prompt:
    return Prompt(provider, "chat.completions", "m", messages, tools, choice)


def test_numbers_in_the_prompt_fill_numeric_fields_in_order() -> None:
    """'What is 2 + 3?' gives add(a=2, b=3)."""
    assert arguments_for(ADD.parameters, "What is 2 + 3?", random.Random(0)) == {"a": 2, "b": 3}


def test_capitalized_name_fills_a_plain_string() -> None:
    """A capitalized word that does not start a sentence fills a string field ('in Paris' -> 'Paris')."""
    assert arguments_for(WEATHER.parameters, "What's the weather in Paris today?", random.Random(0)) == {
        "city": "Paris"}


def test_query_like_fields_get_the_message() -> None:
    """A field named like a query gets the user's message itself."""
    schema = {"type": "object", "properties": {"query": {"type": "string"}}}
    assert arguments_for(schema, "cheap flights to rome", random.Random(0)) == {"query": "cheap flights to rome"}


def test_schema_features_enum_bounds_formats_arrays_refs_and_optional_fields() -> None:
    """Enums, numeric bounds, formats, arrays, nested objects, $ref and required-only objects are honoured."""
    schema = {
        "type": "object",
        "properties": {
            "unit": {"enum": ["c", "f"]},
            "n": {"type": "integer", "minimum": 10, "maximum": 20},
            "when": {"type": "string", "format": "date"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "flag": {"type": "boolean"},
            "where": {"$ref": "#/$defs/place"},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "number", "minimum": 1, "maximum": 2}]},
            "optional": {"type": "string"},
        },
        "required": ["unit", "n", "when", "tags", "flag", "where", "maybe"],
        "$defs": {"place": {"type": "object", "properties": {"zip": {"type": "string", "minLength": 5}},
                            "required": ["zip"]}},
    }
    out = arguments_for(schema, "no numbers here", random.Random(1))
    assert out["unit"] in ("c", "f") and 10 <= out["n"] <= 20 and out["when"] == "2025-01-01"
    assert len(out["tags"]) == 2 and out["flag"] is True and len(out["where"]["zip"]) >= 5
    assert 1 <= out["maybe"] <= 2 and "optional" not in out


def test_arguments_are_seeded() -> None:
    """The same seed gives the same arguments; the values come from the RNG when the prompt has none."""
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}}
    assert arguments_for(schema, "", random.Random(5)) == arguments_for(schema, "", random.Random(5))


def test_default_calls_a_tool_first_then_answers_with_the_result() -> None:
    """With tools and no tool result yet: one tool call; with its result after the last user message: text."""
    ask = Message("user", "What is 2 + 3?")
    first = default_reply(_prompt(ask, tools=(ADD, WEATHER)), random.Random(0))
    (call,) = first.tool_calls  # no tool named in the message: the first one offered
    assert call.name == "add" and json.loads(call.arguments) == {"a": 2, "b": 3}
    done = default_reply(_prompt(ask, Message("assistant", "", first.tool_calls), Message("tool", "5", tool_name="add"),
                                 tools=(ADD, WEATHER)), random.Random(0))
    assert not done.tool_calls and "add returned 5" in done.text


def test_the_tool_named_in_the_message_is_preferred() -> None:
    """A tool whose name appears in the user's message is the one called."""
    reply = default_reply(_prompt(Message("user", "please get weather for Oslo"), tools=(ADD, WEATHER)),
                          random.Random(0))
    assert reply.tool_calls[0].name == "get_weather"


def test_tool_choice_none_and_forced() -> None:
    """tool_choice none answers text; a named tool_choice calls that tool even after results."""
    ask = Message("user", "What is 2 + 3?")
    assert not default_reply(_prompt(ask, tools=(ADD,), choice="none"), random.Random(0)).tool_calls
    forced = default_reply(_prompt(ask, Message("tool", "5"), tools=(ADD, WEATHER), choice="get_weather"),
                           random.Random(0))
    assert forced.tool_calls[0].name == "get_weather"


def test_a_new_user_message_starts_a_new_tool_round() -> None:
    """Tool results before the last user message do not count: the new question gets a tool call again."""
    convo = (Message("user", "2 + 3?"), Message("assistant", "", ()), Message("tool", "5"),
             Message("assistant", "It is 5."), Message("user", "And 4 + 4?"))
    assert default_reply(_prompt(*convo, tools=(ADD,)), random.Random(0)).tool_calls


def test_default_text_echoes_the_question_and_is_seeded() -> None:
    """Text answers start by echoing the last user message and repeat for the same seed."""
    p = _prompt(Message("user", "Tell me a joke"))
    a, b = default_reply(p, random.Random(3)), default_reply(p, random.Random(3))
    assert a == b and a.text.startswith("Simulated answer to: Tell me a joke")


def test_anthropic_tool_ids_use_the_toolu_prefix() -> None:
    """Tool call ids look like the provider's: call_ for OpenAI, toolu_ for Anthropic."""
    ask = Message("user", "What is 2 + 3?")
    assert default_reply(_prompt(ask, tools=(ADD,)), random.Random(0)).tool_calls[0].id.startswith("call_")
    anthropic = default_reply(_prompt(ask, tools=(ADD,), provider="anthropic"), random.Random(0))
    assert anthropic.tool_calls[0].id.startswith("toolu_")
