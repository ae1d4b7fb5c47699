"""OpenAI ``POST /v1/responses``: enough for ``client.responses.create``/``stream`` and the Agents SDK.

Input is a string or a list of items (messages, ``function_call``, ``function_call_output``); ``instructions``
become a system message; ``previous_response_id`` continues a stored conversation (the last
``STORE_SIZE`` responses are kept in memory). The answer is a ``response`` object whose ``output`` holds a
``message`` item (``output_text``) or ``function_call`` items. A stream is the typed event sequence the SDK's
stream helper accumulates: ``response.created``, ``response.in_progress``, per item ``output_item.added`` ->
deltas -> ``output_item.done``, then ``response.completed`` (``response.incomplete`` when cut by
``max_output_tokens``), every event with a ``sequence_number``.
"""

from __future__ import annotations

import random
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from . import tokens
from .dialog import ApiError, Message, Prompt, Reply, ToolCall, ToolSpec
from .openai_api import _max_tokens, content_text, missing_parameter, openai_error, require_model
from .sse import Frame, sse

__all__ = ["STORE_SIZE", "ResponsesApi"]

STORE_SIZE = 1024
_ROLES = ("system", "developer", "user", "assistant")


class ResponsesApi:
    """``POST /v1/responses``; keeps recent conversations for ``previous_response_id``."""

    provider = "openai"
    api = "responses"

    def __init__(self) -> None:
        self._store: OrderedDict[str, tuple[Message, ...]] = OrderedDict()

    def parse(self, body: dict[str, Any]) -> Prompt:
        """Normalize instructions + stored history + input items into a Prompt."""
        model = require_model(body)
        raw = body.get("input")
        prev = body.get("previous_response_id")
        if raw is None and prev is None:
            raise missing_parameter("input")
        history: list[Message] = []
        if prev is not None:
            if prev not in self._store:
                raise ApiError(400, f"Previous response with id '{prev}' not found.",
                               param="previous_response_id", code="previous_response_not_found")
            history = list(self._store[prev])
        if isinstance(raw, str):
            history.append(Message("user", raw))
        elif isinstance(raw, list):
            known = {c.id: c.name for m in history for c in m.tool_calls}
            history.extend(_items(raw, known))
        elif raw is not None:
            raise ApiError(400, f"Invalid type for 'input': expected a string or an array of input items, "
                                f"but got {type(raw).__name__} instead.", param="input", code="invalid_type")
        system = body.get("instructions")
        messages = ([Message("system", system)] if isinstance(system, str) and system else []) + history
        tools = tuple(ToolSpec(str(t.get("name", "")), t.get("description") or "", t.get("parameters") or {})
                      for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function")
        choice = body.get("tool_choice")
        if isinstance(choice, dict):
            choice = choice.get("name") if choice.get("type") == "function" else None
        return Prompt("openai", self.api, model, tuple(messages), tools, choice if isinstance(choice, str) else None,
                      _max_tokens(body, "max_output_tokens"), bool(body.get("stream")),
                      carry_from=len(messages) - len(history))

    def _remember(self, response_id: str, prompt: Prompt, reply: Reply) -> None:
        answer = Message("assistant", reply.text, reply.tool_calls)
        self._store[response_id] = (*prompt.messages[prompt.carry_from:], answer)
        while len(self._store) > STORE_SIZE:
            self._store.popitem(last=False)

    def render(self, prompt: Prompt, reply: Reply, body: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        """A completed ``response`` object."""
        ids = _Ids(rng, reply)
        self._remember(ids.response, prompt, reply)
        return _response(prompt, reply, body, ids, done=True)

    def frames(self, prompt: Prompt, reply: Reply, body: dict[str, Any], rng: random.Random) -> Iterator[Frame]:
        """The typed streaming events."""
        ids = _Ids(rng, reply)
        self._remember(ids.response, prompt, reply)
        seq = iter(range(1 << 30))

        def event(kind: str, **fields: Any) -> bytes:
            return sse({"type": kind, "sequence_number": next(seq), **fields}, event=kind)

        pending = _response(prompt, reply, body, ids, done=False)
        yield Frame(event("response.created", response=pending), lead=True)
        yield Frame(event("response.in_progress", response=pending), lead=True)
        sent = 0
        index = 0
        if reply.text or not reply.tool_calls:
            item = {"id": ids.message, "type": "message", "status": "in_progress", "content": [], "role": "assistant"}
            where = {"item_id": ids.message, "output_index": 0, "content_index": 0}
            yield Frame(event("response.output_item.added", output_index=0, item=item), sent)
            yield Frame(event("response.content_part.added", **where, part=_text_part("")), sent)
            for piece in tokens.split_tokens(reply.text):
                sent += 1
                yield Frame(event("response.output_text.delta", **where, delta=piece, logprobs=[]), sent)
            yield Frame(event("response.output_text.done", **where, text=reply.text, logprobs=[]), sent)
            yield Frame(event("response.content_part.done", **where, part=_text_part(reply.text)), sent)
            yield Frame(event("response.output_item.done", output_index=0, item=_message_item(ids, reply)), sent)
            index = 1
        for call, fc_id in zip(reply.tool_calls, ids.calls, strict=True):
            item = _call_item(fc_id, call, status="in_progress", arguments="")
            sent += tokens.count_text(call.name)
            yield Frame(event("response.output_item.added", output_index=index, item=item), sent)
            for piece in tokens.split_tokens(call.arguments):
                sent += 1
                yield Frame(event("response.function_call_arguments.delta", item_id=fc_id, output_index=index,
                                  delta=piece), sent)
            yield Frame(event("response.function_call_arguments.done", item_id=fc_id, output_index=index,
                              name=call.name, arguments=call.arguments), sent)
            yield Frame(event("response.output_item.done", output_index=index, item=_call_item(fc_id, call)), sent)
            index += 1
        final = _response(prompt, reply, body, ids, done=True)
        kind = "response.incomplete" if reply.truncated else "response.completed"
        yield Frame(event(kind, response=final), sent)

    def error_body(self, err: ApiError) -> dict[str, Any]:
        """OpenAI's error format."""
        return openai_error(err)


class _Ids:
    def __init__(self, rng: random.Random, reply: Reply) -> None:
        self.response = f"resp_{rng.getrandbits(192):048x}"
        self.message = f"msg_{rng.getrandbits(192):048x}"
        self.calls = [f"fc_{rng.getrandbits(192):048x}" for _ in reply.tool_calls]
        self.created = int(time.time())


def _items(raw: list[Any], names: dict[str, str]) -> list[Message]:
    out: list[Message] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ApiError(400, f"Invalid type for 'input[{i}]': expected an object, but got "
                                f"{type(item).__name__} instead.", param=f"input[{i}]", code="invalid_type")
        kind = item.get("type", "message")
        if kind == "message" or (kind is None and "role" in item):
            role = item.get("role")
            if role not in _ROLES:
                raise ApiError(400, f"Invalid value: {role!r}. Supported values are: "
                                    f"{', '.join(repr(r) for r in _ROLES)}.", param=f"input[{i}].role",
                               code="invalid_value")
            text, extra = content_text(item.get("content"))
            out.append(Message("system" if role == "developer" else role, text, extra_tokens=extra))
        elif kind == "function_call":
            call = ToolCall(str(item.get("call_id", "")), str(item.get("name", "")), str(item.get("arguments", "")))
            names[call.id] = call.name
            if out and out[-1].role == "assistant" and out[-1].tool_calls and not out[-1].text:
                out[-1] = Message("assistant", "", (*out[-1].tool_calls, call))  # parallel calls: one turn
            else:
                out.append(Message("assistant", "", (call,)))
        elif kind == "function_call_output":
            text, extra = content_text(item.get("output"))
            out.append(Message("tool", text, tool_name=names.get(str(item.get("call_id"))), extra_tokens=extra))
        # reasoning, item_reference and built-in tool items carry nothing the simulator answers from
    return out


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _message_item(ids: _Ids, reply: Reply) -> dict[str, Any]:
    return {"id": ids.message, "type": "message", "status": "incomplete" if reply.truncated else "completed",
            "content": [_text_part(reply.text)], "role": "assistant"}


def _call_item(fc_id: str, call: ToolCall, *, status: str = "completed",
               arguments: str | None = None) -> dict[str, Any]:
    return {"id": fc_id, "type": "function_call", "status": status, "call_id": call.id, "name": call.name,
            "arguments": call.arguments if arguments is None else arguments}


def _response(prompt: Prompt, reply: Reply, body: dict[str, Any], ids: _Ids, *, done: bool) -> dict[str, Any]:
    output: list[dict[str, Any]] = []
    if done:
        if reply.text or not reply.tool_calls:
            output.append(_message_item(ids, reply))
        output += [_call_item(fc, c) for c, fc in zip(reply.tool_calls, ids.calls, strict=True)]
    status = ("incomplete" if reply.truncated else "completed") if done else "in_progress"
    tools = [{"type": "function", "name": t.get("name"), "description": t.get("description"),
              "parameters": t.get("parameters"), "strict": t.get("strict", True)}
             for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"]
    usage = {"input_tokens": prompt.input_tokens, "input_tokens_details": {"cached_tokens": 0},
             "output_tokens": reply.output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
             "total_tokens": prompt.input_tokens + reply.output_tokens}
    return {
        "id": ids.response, "object": "response", "created_at": ids.created, "status": status,
        "background": False, "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if done and reply.truncated else None,
        "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": None, "model": prompt.model, "output": output, "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"), "reasoning": {"effort": None, "summary": None},
        "service_tier": "default", "store": True, "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": body.get("tool_choice", "auto"), "tools": tools, "top_logprobs": 0, "top_p": 1.0,
        "truncation": "disabled", "usage": usage if done else None, "user": None, "metadata": {},
    }
