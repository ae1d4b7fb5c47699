"""The deterministic default answer: derived from the prompt, so an unscripted run repeats exactly.

- Tool results after the last user message: answer in text, quoting them (the loop ends).
- Tools offered (and ``tool_choice`` not "none"): call one, with arguments generated from its JSON schema.
  The tool named in the last user message is preferred, else the first one offered.
- Otherwise: a text answer that starts by echoing the last user message, padded with seeded words.

Arguments come from the schema, filled from the prompt where it has something to give: numbers in the last
user message fill integer/number fields in order ("what is 2 + 3?" -> ``add(a=2, b=3)``); a capitalized
word that does not start the message fills plain strings ("weather in Paris" -> ``city="Paris"``); fields
named like a query (query, question, text, ...) get the message itself. The rest is seeded.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

from . import tokens
from .dialog import Prompt, Reply, ToolCall, ToolSpec

__all__ = ["arguments_for", "call_id", "default_reply", "default_text", "tool_call"]

_WORDS = ("the", "model", "answer", "is", "simulated", "and", "repeatable", "for", "this", "prompt", "with",
          "a", "seed", "so", "tests", "see", "the", "same", "text", "every", "run")
_QUERY_NAMES = {"query", "q", "question", "text", "prompt", "input", "message", "search", "content", "topic"}
_FORMATS = {"date": "2025-01-01", "date-time": "2025-01-01T00:00:00Z", "time": "12:00:00",
            "email": "user@example.com", "uri": "https://example.com", "url": "https://example.com",
            "uuid": "00000000-0000-4000-8000-000000000000"}
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_WORD = re.compile(r"[A-Za-z][A-Za-z\-']*|[.!?]")
_MAX_DEPTH = 6


def call_id(rng: random.Random, prefix: str = "call_") -> str:
    """A seeded identifier in the style the provider uses (call_..., toolu_..., fc_...)."""
    return f"{prefix}{rng.getrandbits(96):024x}"


def default_text(prompt: Prompt, rng: random.Random) -> str:
    """A seeded text answer of 20-60 tokens that begins by echoing the last user message."""
    results = prompt.tool_results()
    if results:
        said = "; ".join(f"{m.tool_name or 'the tool'} returned {m.text.strip()[:200]}" for m in results)
        return f"Based on the tool results: {said}."
    asked = " ".join(prompt.last_user.split())[:120].rstrip(" .")
    head = f"Simulated answer to: {asked}" if asked else "Simulated answer."
    target = rng.randint(20, 60) * tokens.CHARS_PER_TOKEN
    words = [head]
    while len(" ".join(words)) < target:
        words.append(rng.choice(_WORDS))
    return " ".join(words).rstrip(".") + "."


def default_reply(prompt: Prompt, rng: random.Random) -> Reply:
    """The answer when no script rule matches (see the module docstring)."""
    choice = prompt.tool_choice
    # A forced choice ("required" or a tool's name) calls a tool even after results, as a real model must.
    wants_tool = bool(prompt.tools) and choice != "none" and (
        not prompt.tool_results() or choice not in (None, "auto"))
    if wants_tool:
        tool = _pick_tool(prompt)
        return Reply(tool_calls=(tool_call(tool, prompt, rng),))
    return Reply(text=default_text(prompt, rng))


def tool_call(tool: ToolSpec, prompt: Prompt, rng: random.Random, arguments: Any = None) -> ToolCall:
    """A call of ``tool``: with the given arguments, or with arguments generated from its schema."""
    args = arguments if arguments is not None else arguments_for(tool.parameters, prompt.last_user, rng)
    prefix = "toolu_" if prompt.provider == "anthropic" else "call_"
    return ToolCall(call_id(rng, prefix), tool.name, json.dumps(args, ensure_ascii=False))


def _pick_tool(prompt: Prompt) -> ToolSpec:
    if prompt.tool_choice not in (None, "auto", "none", "required"):
        named = prompt.tool(prompt.tool_choice)
        if named is not None:
            return named
    asked = prompt.last_user.lower()
    for tool in prompt.tools:
        if tool.name.lower() in asked or tool.name.lower().replace("_", " ") in asked:
            return tool
    return prompt.tools[0]


def arguments_for(schema: dict[str, Any], prompt_text: str, rng: random.Random) -> Any:
    """A value that satisfies ``schema`` (the common JSON-schema subset tools use), filled from the prompt."""
    numbers = [float(n) for n in _NUMBER.findall(prompt_text)]
    names = _names(prompt_text)
    return _Filler(schema, prompt_text, numbers, names, rng).value(schema, "", 0)


def _names(text: str) -> list[str]:
    """Capitalized words that do not start a sentence: likely names ("Paris", "Ada")."""
    out: list[str] = []
    starts = True
    for word in _WORD.findall(text):
        if word in ".!?":
            starts = True
            continue
        if not starts and word[0].isupper() and len(word) > 1 and "'" not in word:
            out.append(word)
        starts = False
    return out


class _Filler:
    def __init__(self, root: dict[str, Any], text: str, numbers: list[float], names: list[str],
                 rng: random.Random) -> None:
        self.root, self.text, self.numbers, self.names, self.rng = root, text, numbers, names, rng

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            node: Any = self.root
            for part in ref[2:].split("/"):
                node = node.get(part, {}) if isinstance(node, dict) else {}
            return node if isinstance(node, dict) else {}
        return schema

    def value(self, schema: Any, name: str, depth: int) -> Any:
        if not isinstance(schema, dict) or depth > _MAX_DEPTH:
            return None
        schema = self._resolve(schema)
        if "const" in schema:
            return schema["const"]
        if "default" in schema:
            return schema["default"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return self.rng.choice(schema["enum"])
        for key in ("anyOf", "oneOf", "allOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                usable = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
                return self.value((usable or options)[0], name, depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            kind = "object" if "properties" in schema else "string"
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            count = max(1, int(schema.get("minItems", 1)))
            return [self.value(schema.get("items", {}), name, depth + 1) for _ in range(count)]
        if kind in ("integer", "number"):
            return self._number(schema, kind == "integer")
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return self._string(schema, name)

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        props = schema.get("properties") or {}
        required = schema.get("required")
        keys = [k for k in props if k in required] if isinstance(required, list) else list(props)
        return {k: self.value(props[k], k, depth + 1) for k in keys}

    def _number(self, schema: dict[str, Any], integer: bool) -> int | float:
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        high = schema.get("maximum", schema.get("exclusiveMaximum", 100))
        while self.numbers:
            n = self.numbers.pop(0)
            if low <= n <= high and (not integer or n.is_integer()):
                return int(n) if integer else n
        if integer:
            return self.rng.randint(int(low), int(max(low, high)))
        return round(self.rng.uniform(float(low), float(max(low, high))), 2)

    def _string(self, schema: dict[str, Any], name: str) -> str:
        fmt = schema.get("format")
        if isinstance(fmt, str) and fmt in _FORMATS:
            out = _FORMATS[fmt]
        elif name.lower() in _QUERY_NAMES and self.text.strip():
            out = " ".join(self.text.split())[:200]
        elif self.names:
            out = self.names.pop(0)
        else:
            out = "example"
        low = int(schema.get("minLength", 0))
        high = schema.get("maxLength")
        if len(out) < low:
            out = out + "x" * (low - len(out))
        if isinstance(high, int):
            out = out[:high]
        return out
