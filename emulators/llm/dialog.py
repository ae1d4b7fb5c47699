"""The provider-neutral view of one request (``Prompt``) and of the model's answer (``Reply``).

Each API module (chat completions, responses, messages) turns its request body into a ``Prompt`` and
renders a ``Reply`` in its own wire format; the script and the default answer only ever see these.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from . import tokens

__all__ = ["ApiError", "Message", "Prompt", "Reply", "ToolCall", "ToolSpec"]


class ApiError(Exception):
    """A request the endpoint refuses, rendered in the provider's own error format by the API module."""

    def __init__(self, status: int, message: str, *, kind: str | None = None,
                 param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind  # the provider's error type; None: derived from the status by the API module
        self.param = param
        self.code = code
        self.headers = headers or {}


@dataclass(frozen=True)
class ToolCall:
    """One function call the model makes: ``arguments`` is a JSON object text, as the APIs carry it."""

    id: str
    name: str
    arguments: str

    @property
    def tokens(self) -> int:
        """Tokens of the call: its name plus its JSON arguments."""
        return tokens.count_text(self.name) + tokens.count_text(self.arguments)

    def parsed_arguments(self) -> Any:
        """The arguments as a JSON value ({} when they are not valid JSON)."""
        try:
            return json.loads(self.arguments) if self.arguments else {}
        except json.JSONDecodeError:
            return {}


@dataclass(frozen=True)
class ToolSpec:
    """A function tool the request offers: its name, description and JSON-schema parameters."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        """Tokens of the definition, counted on its JSON."""
        return tokens.count_json({"name": self.name, "description": self.description, "parameters": self.parameters})


@dataclass(frozen=True)
class Message:
    """One normalized message: role is system, user, assistant or tool (a tool result)."""

    role: str
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_name: str | None = None  # for a tool result: the tool that produced it, when known
    extra_tokens: int = 0  # images and other non-text parts

    @property
    def tokens(self) -> int:
        """Tokens of the message: overhead + text + tool calls + non-text parts."""
        return (tokens.MESSAGE_OVERHEAD + tokens.count_text(self.text) + self.extra_tokens
                + sum(c.tokens for c in self.tool_calls))


@dataclass(frozen=True)
class Prompt:
    """One request, whatever its API: what the script matches on and the default answer is derived from."""

    provider: str  # openai | anthropic
    api: str  # chat.completions | responses | messages
    model: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str | None = None  # None/"auto", "none", "required", or the name of one tool
    max_tokens: int | None = None
    stream: bool = False
    carry_from: int = 0  # messages before this index (per-request instructions) are not carried into a continuation

    @property
    def input_tokens(self) -> int:
        """Prompt tokens: every message, every offered tool, and the reply priming."""
        return tokens.REPLY_PRIMING + sum(m.tokens for m in self.messages) + sum(t.tokens for t in self.tools)

    @property
    def last_user(self) -> str:
        """Text of the last user message ('' when there is none)."""
        return next((m.text for m in reversed(self.messages) if m.role == "user"), "")

    @property
    def turn(self) -> int:
        """Which model turn this is in the conversation: 1 + the number of assistant messages so far."""
        return 1 + sum(1 for m in self.messages if m.role == "assistant")

    def tool_results(self) -> list[Message]:
        """The tool results that came after the last user message (what the model has not answered yet)."""
        out: list[Message] = []
        for m in reversed(self.messages):
            if m.role == "user":
                break
            if m.role == "tool":
                out.append(m)
        return out[::-1]

    def tool(self, name: str) -> ToolSpec | None:
        """The offered tool of that name."""
        return next((t for t in self.tools if t.name == name), None)


@dataclass(frozen=True)
class Reply:
    """The model's answer: text, tool calls, or both; ``truncated`` when max_tokens cut the text."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    truncated: bool = False

    @property
    def output_tokens(self) -> int:
        """Completion tokens: the text plus each tool call."""
        return tokens.count_text(self.text) + sum(c.tokens for c in self.tool_calls)

    def capped(self, max_tokens: int | None) -> Reply:
        """The reply with its text cut to what ``max_tokens`` leaves after the tool calls."""
        if max_tokens is None or self.output_tokens <= max_tokens:
            return self
        room = max(0, max_tokens - sum(c.tokens for c in self.tool_calls))
        return Reply(tokens.truncate_tokens(self.text, room), self.tool_calls, truncated=True)
