"""OpenAI wire formats: ``POST /v1/chat/completions`` (JSON and SSE chunks), ``GET /v1/models``, errors.

Shapes follow the OpenAI API reference and what the ``openai`` SDK parses: a completion carries ``usage``
(prompt, completion, total tokens); a stream is ``chat.completion.chunk`` objects ending with
``data: [DONE]``, a tool call arriving as a first delta with its id and name and then argument pieces, and
a last chunk with empty ``choices`` and the ``usage`` when ``stream_options.include_usage`` is set. Legacy
``functions``/``function_call`` requests get a ``function_call`` answer.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

from . import tokens
from .dialog import ApiError, Message, Prompt, Reply, ToolCall, ToolSpec
from .sse import Frame, sse

__all__ = ["ChatCompletionsApi", "missing_parameter", "openai_error", "openai_models", "require_model"]

_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_OPENAI_KINDS = {400: "invalid_request_error", 401: "invalid_request_error", 403: "invalid_request_error",
                 404: "invalid_request_error", 409: "invalid_request_error", 422: "invalid_request_error",
                 429: "requests"}
_OPENAI_MESSAGES = {
    500: "The server had an error while processing your request. Sorry about that!",
    503: "The server is overloaded or not ready yet.",
    504: "The server did not answer in time.",
}
FINGERPRINT = "fp_harness_sim"


def openai_error(err: ApiError) -> dict[str, Any]:
    """OpenAI's error body: ``{"error": {"message", "type", "param", "code"}}``."""
    kind = err.kind or _OPENAI_KINDS.get(err.status, "server_error" if err.status >= 500 else "invalid_request_error")
    return {"error": {"message": err.message or _OPENAI_MESSAGES.get(err.status, "error"), "type": kind,
                      "param": err.param, "code": err.code}}


def openai_models(names: list[str]) -> dict[str, Any]:
    """The ``GET /v1/models`` list."""
    return {"object": "list", "data": [openai_model(n) for n in names]}


def openai_model(name: str) -> dict[str, Any]:
    """One model object."""
    return {"id": name, "object": "model", "created": 1700000000, "owned_by": "harness-simulator"}


def missing_parameter(name: str) -> ApiError:
    """The 400 OpenAI answers when a required parameter is absent."""
    return ApiError(400, f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter")


def require_model(body: dict[str, Any]) -> str:
    """The ``model`` field, or the 400 the provider answers without one."""
    model = body.get("model")
    if model is None:
        raise missing_parameter("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, f"Invalid type for 'model': expected a string, but got {model!r} instead.",
                       param="model", code="invalid_type")
    return model


def content_text(content: Any) -> tuple[str, int]:
    """Text of a content field (a string or a list of parts) and the tokens of its non-text parts."""
    if content is None:
        return "", 0
    if isinstance(content, str):
        return content, 0
    if isinstance(content, list):
        texts: list[str] = []
        extra = 0
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict):
                text = part.get("text", part.get("refusal", part.get("output")))
                if isinstance(text, str):
                    texts.append(text)
                else:
                    extra += tokens.IMAGE_TOKENS
        return "\n".join(texts), extra
    return str(content), 0


def _max_tokens(body: dict[str, Any], *names: str) -> int | None:
    for name in names:
        value = body.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ApiError(400, f"Invalid '{name}': expected an integer >= 1, but got {value!r}.",
                               param=name, code="invalid_value")
            return value
    return None


class ChatCompletionsApi:
    """``POST /v1/chat/completions``."""

    provider = "openai"
    api = "chat.completions"

    def parse(self, body: dict[str, Any]) -> Prompt:
        """Validate the request as OpenAI does (model, non-empty messages with known roles) and normalize it."""
        model = require_model(body)
        raw = body.get("messages")
        if raw is None:
            raise missing_parameter("messages")
        if not isinstance(raw, list):
            raise ApiError(400, f"Invalid type for 'messages': expected an array of objects, but got "
                                f"{type(raw).__name__} instead.", param="messages", code="invalid_type")
        if not raw:
            raise ApiError(400, "Invalid 'messages': empty array. Expected an array with minimum length 1, "
                                "but got an empty array instead.", param="messages", code="empty_array")
        names: dict[str, str] = {}
        messages = [self._message(m, i, names) for i, m in enumerate(raw)]
        tools = [ToolSpec(f.get("name", ""), f.get("description") or "", f.get("parameters") or {})
                 for f in (t.get("function", {}) for t in body.get("tools") or [] if isinstance(t, dict)
                           and t.get("type", "function") == "function") if isinstance(f, dict)]
        tools += [ToolSpec(f.get("name", ""), f.get("description") or "", f.get("parameters") or {})
                  for f in body.get("functions") or [] if isinstance(f, dict)]
        return Prompt("openai", self.api, model, tuple(messages), tuple(tools),
                      _tool_choice(body.get("tool_choice", body.get("function_call"))),
                      _max_tokens(body, "max_completion_tokens", "max_tokens"), bool(body.get("stream")))

    @staticmethod
    def _message(m: Any, i: int, names: dict[str, str]) -> Message:
        if not isinstance(m, dict) or m.get("role") not in _ROLES:
            role = m.get("role") if isinstance(m, dict) else None
            raise ApiError(400, f"Invalid value: {role!r}. Supported values are: {', '.join(repr(r) for r in _ROLES)}.",
                           param=f"messages[{i}].role", code="invalid_value")
        text, extra = content_text(m.get("content"))
        role = m["role"]
        if role == "assistant":
            calls = [ToolCall(str(c.get("id", "")), str(c.get("function", {}).get("name", "")),
                              str(c.get("function", {}).get("arguments", "")))
                     for c in m.get("tool_calls") or [] if isinstance(c, dict)]
            fc = m.get("function_call")
            if isinstance(fc, dict):
                calls.append(ToolCall("", str(fc.get("name", "")), str(fc.get("arguments", ""))))
            names.update({c.id: c.name for c in calls})
            return Message("assistant", text, tuple(calls), extra_tokens=extra)
        if role in ("tool", "function"):
            name = m.get("name") if role == "function" else names.get(str(m.get("tool_call_id")))
            return Message("tool", text, tool_name=name, extra_tokens=extra)
        return Message("system" if role == "developer" else role, text, extra_tokens=extra)

    def render(self, prompt: Prompt, reply: Reply, body: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        """A ``chat.completion`` object."""
        legacy = _legacy(body)
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None, "refusal": None,
                                   "annotations": []}
        if reply.tool_calls and legacy:
            c = reply.tool_calls[0]
            message["function_call"] = {"name": c.name, "arguments": c.arguments}
        elif reply.tool_calls:
            message["tool_calls"] = [{"id": c.id, "type": "function",
                                      "function": {"name": c.name, "arguments": c.arguments}}
                                     for c in reply.tool_calls]
        return {"id": f"chatcmpl-{rng.getrandbits(120):030x}", "object": "chat.completion", "created": int(time.time()),
                "model": prompt.model, "choices": [{"index": 0, "message": message, "logprobs": None,
                                                    "finish_reason": _finish(reply, legacy)}],
                "usage": _usage(prompt, reply.output_tokens), "service_tier": "default",
                "system_fingerprint": FINGERPRINT}

    def frames(self, prompt: Prompt, reply: Reply, body: dict[str, Any], rng: random.Random) -> Iterator[Frame]:
        """``chat.completion.chunk`` events, then ``[DONE]``."""
        legacy = _legacy(body)
        opts = body.get("stream_options")
        with_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
        base = {"id": f"chatcmpl-{rng.getrandbits(120):030x}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": prompt.model, "service_tier": "default",
                "system_fingerprint": FINGERPRINT}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            out = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
            if with_usage:
                out["usage"] = None
            return sse(out)

        yield Frame(chunk({"role": "assistant", "content": "", "refusal": None}), lead=True)
        sent = 0
        for piece in tokens.split_tokens(reply.text):
            sent += 1
            yield Frame(chunk({"content": piece}), sent)
        for index, call in enumerate(reply.tool_calls[:1] if legacy else reply.tool_calls):
            sent += tokens.count_text(call.name)
            head = ({"function_call": {"name": call.name, "arguments": ""}} if legacy else
                    {"tool_calls": [{"index": index, "id": call.id, "type": "function",
                                     "function": {"name": call.name, "arguments": ""}}]})
            yield Frame(chunk(head), sent)
            for piece in tokens.split_tokens(call.arguments):
                sent += 1
                delta = ({"function_call": {"arguments": piece}} if legacy else
                         {"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                yield Frame(chunk(delta), sent)
        yield Frame(chunk({}, _finish(reply, legacy)), sent)
        if with_usage:
            yield Frame(sse({**base, "choices": [], "usage": _usage(prompt, sent)}), sent)
        yield Frame(sse("[DONE]"), sent)

    def error_body(self, err: ApiError) -> dict[str, Any]:
        """OpenAI's error format."""
        return openai_error(err)


def _legacy(body: dict[str, Any]) -> bool:
    return bool(body.get("functions")) and not body.get("tools")


def _finish(reply: Reply, legacy: bool) -> str:
    if reply.tool_calls:
        return "function_call" if legacy else "tool_calls"
    return "length" if reply.truncated else "stop"


def _usage(prompt: Prompt, output_tokens: int) -> dict[str, Any]:
    return {"prompt_tokens": prompt.input_tokens, "completion_tokens": output_tokens,
            "total_tokens": prompt.input_tokens + output_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


def _tool_choice(choice: Any) -> str | None:
    if isinstance(choice, str):
        return choice
    if isinstance(choice, dict):
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, dict) else choice.get("name")
        return str(name) if name else None
    return None

