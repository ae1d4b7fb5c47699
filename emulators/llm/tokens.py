"""Token counts without a tokenizer: a documented approximation that needs no download.

The rule (OpenAI's own rule of thumb, about four characters of English per token):

- a piece of text counts ``ceil(len(text) / 4)`` tokens (empty text: 0);
- every message adds ``MESSAGE_OVERHEAD`` (4) tokens for its role and separators, and every request adds
  ``REPLY_PRIMING`` (3) for the assistant turn it asks for, as OpenAI's chat format does;
- a tool call (in the prompt or the reply) counts its name plus its JSON arguments;
- an offered tool counts the compact JSON of its definition (name, description, schema);
- an image or other non-text part counts ``IMAGE_TOKENS`` (85, a low-detail image).

So prompt tokens grow with the conversation as they do with a real model. Streaming splits text into
pieces of ``CHARS_PER_TOKEN`` characters, one piece per token, so the number of streamed pieces of a text
equals its token count and the latency model can pace them.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = [
    "CHARS_PER_TOKEN",
    "IMAGE_TOKENS",
    "MESSAGE_OVERHEAD",
    "REPLY_PRIMING",
    "count_json",
    "count_text",
    "fit_text",
    "split_tokens",
    "truncate_tokens",
]

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 4
REPLY_PRIMING = 3
IMAGE_TOKENS = 85


def count_text(text: str) -> int:
    """Tokens in a piece of text: ceil(characters / 4)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def count_json(value: Any) -> int:
    """Tokens in a JSON value, counted on its compact serialization."""
    if isinstance(value, str):
        return count_text(value)
    return count_text(json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True))


def split_tokens(text: str) -> list[str]:
    """The text cut into one piece per token (the unit of streaming); ``"".join`` gives it back."""
    return [text[i:i + CHARS_PER_TOKEN] for i in range(0, len(text), CHARS_PER_TOKEN)]


def truncate_tokens(text: str, max_tokens: int) -> str:
    """The longest prefix of ``text`` that fits in ``max_tokens`` tokens."""
    return text[: max(0, max_tokens) * CHARS_PER_TOKEN]


def fit_text(text: str, tokens: int) -> str:
    """``text`` cut or padded (by repeating it) to exactly ``tokens`` tokens, for scripted answer lengths."""
    if tokens <= 0:
        return ""
    want = tokens * CHARS_PER_TOKEN
    base = text.strip() or "ok"
    out = base
    while len(out) < want:
        out = f"{out} {base}"
    out = out[:want]
    if out.endswith(" "):  # a trailing space would be lost by clients that strip; keep the count exact
        out = out[:-1] + "."
    return out
