"""Server-sent events as the providers send them, and the ``Api`` seam each wire format implements.

A stream is a sequence of ``Frame``: the bytes of one event and the number of output tokens the client has
once it arrives (``lead`` frames, the head of the answer, go out at once). The server paces frames by that
count (time to first token + tokens / tokens per second), so the API modules say what to send, never when.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from .dialog import ApiError, Prompt, Reply

__all__ = ["Api", "Frame", "sse"]


@dataclass(frozen=True)
class Frame:
    """One server-sent event and the cumulative output tokens delivered once it is sent."""

    data: bytes
    tokens: int = 0
    lead: bool = False  # sent at once, before the first token (response head events)


def sse(data: dict[str, Any] | str, event: str | None = None) -> bytes:
    """One event in SSE framing: an optional ``event:`` line, one ``data:`` line, a blank line."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


class Api(Protocol):
    """One wire format (chat completions, responses, messages): parse a request, render an answer."""

    provider: str
    api: str

    def parse(self, body: dict[str, Any]) -> Prompt:
        """The request as a Prompt; raises ApiError (400) for a request the provider would refuse."""
        ...

    def render(self, prompt: Prompt, reply: Reply, body: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        """The non-streaming answer body."""
        ...

    def frames(self, prompt: Prompt, reply: Reply, body: dict[str, Any], rng: random.Random) -> Iterator[Frame]:
        """The streaming answer, event by event."""
        ...

    def error_body(self, err: ApiError) -> dict[str, Any]:
        """The provider's JSON error body for ``err``."""
        ...
