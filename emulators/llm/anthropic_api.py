"""Anthropic wire format: ``POST /v1/messages`` (JSON and streaming events), ``GET /v1/models``, errors.

A message answer has ``content`` blocks (``text``, ``tool_use`` with a parsed ``input``), a ``stop_reason``
(``end_turn``, ``tool_use``, ``max_tokens``) and ``usage``. A stream is ``message_start``, per block
``content_block_start`` -> ``content_block_delta`` (``text_delta`` or ``input_json_delta``) ->
``content_block_stop``, a ``ping``, then ``message_delta`` (stop reason and output tokens) and
``message_stop``, each as an ``event:`` + ``data:`` pair, which is what the ``anthropic`` SDK reads.
Errors are ``{"type": "error", "error": {"type", "message"}}``; overload is 529 ``overloaded_error``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

from . import tokens
from .dialog import ApiError, Message, Prompt, Reply, ToolCall, ToolSpec
from .openai_api import content_text
from .sse import Frame, sse

__all__ = ["MessagesApi", "anthropic_error", "anthropic_models"]

_KINDS = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
          504: "timeout_error", 529: "overloaded_error"}
_MESSAGES = {500: "Internal server error", 503: "Service unavailable", 504: "Request timed out",
             529: "Overloaded"}


def anthropic_error(err: ApiError) -> dict[str, Any]:
    """Anthropic's error body."""
    kind = err.kind or _KINDS.get(err.status, "api_error" if err.status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": err.message or _MESSAGES.get(err.status, "Error")}}


def anthropic_models(names: list[str]) -> dict[str, Any]:
    """The ``GET /v1/models`` page in Anthropic's shape."""
    data = [{"type": "model", "id": n, "display_name": n, "created_at": "2025-01-01T00:00:00Z"} for n in names]
    return {"data": data, "has_more": False, "first_id": names[0] if names else None,
            "last_id": names[-1] if names else None}


def _field_required(name: str) -> ApiError:
    return ApiError(400, f"{name}: Field required")


class MessagesApi:
    """``POST /v1/messages``."""

    provider = "anthropic"
    api = "messages"

    def parse(self, body: dict[str, Any]) -> Prompt:
        """Validate as the Messages API does (model, max_tokens, non-empty user/assistant messages)."""
        model = body.get("model")
        if model is None:
            raise _field_required("model")
        if not isinstance(model, str) or not model:
            raise ApiError(400, "model: Input should be a valid string")
        max_tokens = body.get("max_tokens")
        if max_tokens is None:
            raise _field_required("max_tokens")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ApiError(400, f"max_tokens: Input should be an integer >= 1, got {max_tokens!r}")
        raw = body.get("messages")
        if raw is None:
            raise _field_required("messages")
        if not isinstance(raw, list):
            raise ApiError(400, "messages: Input should be a valid list")
        if not raw:
            raise ApiError(400, "messages: at least one message is required")
        messages: list[Message] = []
        system = body.get("system")
        if system:
            text, extra = content_text(system)
            messages.append(Message("system", text, extra_tokens=extra))
        names: dict[str, str] = {}
        for i, m in enumerate(raw):
            if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
                raise ApiError(400, f"messages.{i}.role: Input should be 'user' or 'assistant'")
            messages.extend(_message(m, names))
        tools = tuple(ToolSpec(str(t.get("name", "")), t.get("description") or "", t.get("input_schema") or {})
                      for t in body.get("tools") or [] if isinstance(t, dict) and "input_schema" in t)
        return Prompt("anthropic", self.api, model, tuple(messages), tools, _tool_choice(body.get("tool_choice")),
                      max_tokens, bool(body.get("stream")))

    def render(self, prompt: Prompt, reply: Reply, body: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        """A ``message`` object."""
        msg = _message_shell(prompt, rng)
        msg["content"] = ([{"type": "text", "text": reply.text}] if reply.text or not reply.tool_calls else [])
        msg["content"] += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.parsed_arguments()}
                           for c in reply.tool_calls]
        msg["stop_reason"] = _stop(reply)
        msg["usage"] = _usage(prompt.input_tokens, reply.output_tokens)
        return msg

    def frames(self, prompt: Prompt, reply: Reply, body: dict[str, Any], rng: random.Random) -> Iterator[Frame]:
        """The streaming events."""
        def event(kind: str, **fields: Any) -> bytes:
            return sse({"type": kind, **fields}, event=kind)

        shell = _message_shell(prompt, rng)
        shell.update(content=[], stop_reason=None, usage=_usage(prompt.input_tokens, 1))
        yield Frame(event("message_start", message=shell), lead=True)
        sent = 0
        index = 0
        if reply.text or not reply.tool_calls:
            yield Frame(event("content_block_start", index=0, content_block={"type": "text", "text": ""}))
            yield Frame(event("ping"))
            for piece in tokens.split_tokens(reply.text):
                sent += 1
                yield Frame(event("content_block_delta", index=0, delta={"type": "text_delta", "text": piece}), sent)
            yield Frame(event("content_block_stop", index=0), sent)
            index = 1
        for call in reply.tool_calls:
            sent += tokens.count_text(call.name)
            block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
            yield Frame(event("content_block_start", index=index, content_block=block), sent)
            for piece in tokens.split_tokens(call.arguments):
                sent += 1
                yield Frame(event("content_block_delta", index=index,
                                  delta={"type": "input_json_delta", "partial_json": piece}), sent)
            yield Frame(event("content_block_stop", index=index), sent)
            index += 1
        yield Frame(event("message_delta", delta={"stop_reason": _stop(reply), "stop_sequence": None},
                          usage={"output_tokens": sent}), sent)
        yield Frame(event("message_stop"), sent)

    def error_body(self, err: ApiError) -> dict[str, Any]:
        """Anthropic's error format."""
        return anthropic_error(err)


def _message(m: dict[str, Any], names: dict[str, str]) -> list[Message]:
    role = m["role"]
    content = m.get("content")
    if not isinstance(content, list):
        text, extra = content_text(content)
        return [Message(role, text, extra_tokens=extra)]
    texts: list[str] = []
    extra = 0
    calls: list[ToolCall] = []
    results: list[Message] = []
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "thinking":
            texts.append(str(block.get("thinking", "")))
        elif kind == "tool_use":
            call = ToolCall(str(block.get("id", "")), str(block.get("name", "")),
                            json.dumps(block.get("input", {}), ensure_ascii=False))
            names[call.id] = call.name
            calls.append(call)
        elif kind == "tool_result":
            text, more = content_text(block.get("content"))
            results.append(Message("tool", text, tool_name=names.get(str(block.get("tool_use_id"))),
                                   extra_tokens=more))
        elif isinstance(block, str):
            texts.append(block)
        else:
            extra += tokens.IMAGE_TOKENS
    out: list[Message] = []
    if texts or calls or extra or not results:
        out.append(Message(role, "\n".join(texts), tuple(calls), extra_tokens=extra))
    return out + results  # tool results last: they are what the next answer responds to


def _message_shell(prompt: Prompt, rng: random.Random) -> dict[str, Any]:
    return {"id": f"msg_{rng.getrandbits(120):030x}", "type": "message", "role": "assistant", "model": prompt.model,
            "content": [], "stop_reason": None, "stop_sequence": None}


def _stop(reply: Reply) -> str:
    if reply.tool_calls:
        return "tool_use"
    return "max_tokens" if reply.truncated else "end_turn"


def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {"input_tokens": input_tokens, "output_tokens": output_tokens, "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0, "service_tier": "standard"}


def _tool_choice(choice: Any) -> str | None:
    if not isinstance(choice, dict):
        return None
    kind = choice.get("type")
    if kind == "any":
        return "required"
    if kind == "tool":
        return str(choice.get("name")) or None
    return "none" if kind == "none" else None
