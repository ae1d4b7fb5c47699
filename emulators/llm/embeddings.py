"""OpenAI ``POST /v1/embeddings``: deterministic vectors in which texts sharing words lie close together.

A real embedding model cannot run here (no weights, no download), so the simulator hashes features of the
text into a fixed number of dimensions and normalizes the sum (the "hashing trick"): every word (minus a
short list of function words) and every character trigram of a word adds +-weight to two coordinates
chosen by a keyed BLAKE2 hash. Two texts that share words therefore have a high cosine similarity, a text with an
inflected form of a word ("plans" / "plan") a lower but positive one, and unrelated texts about zero: a
vector search over them returns the neighbour a person would pick for keyword-like queries, which is what
a harness test of memory needs. The same text gives the same vector in every process and run.

Answers follow the API reference: ``{"object": "list", "data": [{"object": "embedding", "index", "embedding"}],
"model", "usage": {"prompt_tokens", "total_tokens"}}``; ``encoding_format="base64"`` (what the ``openai`` SDK
asks for by default) is the little-endian float32 bytes in base64. ``dimensions`` shortens the vector as
``text-embedding-3-*`` allows; the model's own size otherwise.
"""

from __future__ import annotations

import array
import base64
import hashlib
import math
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..billing import embedding_latency
from . import tokens
from .dialog import ApiError, Message, Prompt, Reply
from .openai_api import missing_parameter, openai_error, require_model
from .sse import Frame

__all__ = ["EMBEDDING_MODELS", "EmbedRequest", "EmbeddingsApi", "embed_text", "embedding_latency_s"]

# Output sizes of the OpenAI embedding models (their documented defaults; ``dimensions`` may shorten 3-*).
EMBEDDING_MODELS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}
DEFAULT_DIMENSIONS = 1536  # an unknown model: the common size
MAX_INPUTS = 2048  # items in one request (API reference)
MAX_INPUT_TOKENS = 8192  # per item (API reference)
_WORD = re.compile(r"[a-z0-9]+")
# Each feature lands in two coordinates: a collision of two words then costs half its weight, not all of
# it (in 128-256 dimensions a single-slot collision flipped neighbours in the contract tests).
_SLOTS = 2
# Words that carry no topic: left out so "what is my plan" and "my plan is Pro" meet on "plan", not on "my".
_STOP_WORDS = ("a an and are as at be by do does did for from has have i in is it its me my of on or our so that the "
               "their them they this to was we what when where which who why will with you your")
_STOP = frozenset(_STOP_WORDS.split())


def _features(text: str) -> Iterator[tuple[str, float]]:
    words = [w for w in _WORD.findall(text.lower()) if w not in _STOP]
    if not words:  # nothing but function words (or punctuation): the whole text is the one feature
        yield "t:" + text.strip().lower(), 1.0
        return
    for w in words:
        yield "w:" + w, 1.0
        padded = f"<{w}>"
        for i in range(len(padded) - 2):
            yield "c:" + padded[i:i + 3], 0.35  # trigrams: inflections and typos stay near, weaker than words


def embed_text(text: str, dimensions: int) -> list[float]:
    """The unit vector of ``text`` in ``dimensions`` dimensions (see the module docstring)."""
    vec = [0.0] * dimensions
    for feature, weight in _features(text):
        digest = hashlib.blake2b(feature.encode(), digest_size=8 * _SLOTS, key=b"harness-emb").digest()
        for j in range(_SLOTS):
            h = int.from_bytes(digest[8 * j:8 * j + 8], "big")
            vec[h % dimensions] += weight if (h >> 63) & 1 else -weight
    norm = math.sqrt(sum(v * v for v in vec))
    if norm == 0.0:  # features cancelled out exactly: any fixed unit vector keeps the answer deterministic
        vec[0], norm = 1.0, 1.0
    return [v / norm for v in vec]


def embedding_latency_s(model: str, input_tokens: int) -> float:
    """Platform seconds the simulator waits before answering (the price table's latency figures)."""
    per_request_ms, per_1k_ms = embedding_latency(model)
    return (per_request_ms + input_tokens / 1000.0 * per_1k_ms) / 1000.0


@dataclass(frozen=True)
class EmbedRequest:
    """One embeddings request, validated: the model, its texts, their tokens and the output shape."""

    model: str
    texts: tuple[str, ...]
    token_counts: tuple[int, ...]
    dimensions: int
    base64: bool

    @property
    def input_tokens(self) -> int:
        """Tokens billed: the sum over every input."""
        return sum(self.token_counts)


def _invalid(message: str, param: str = "input", code: str | None = "invalid_value") -> ApiError:
    return ApiError(400, message, param=param, code=code)


class EmbeddingsApi:
    """``POST /v1/embeddings``: parse, embed, render (never streamed)."""

    provider = "openai"
    api = "embeddings"

    def parse_embed(self, body: dict[str, Any]) -> EmbedRequest:
        """Validate as OpenAI does (model, non-empty input of strings or token arrays, dimensions)."""
        model = require_model(body)
        raw = body.get("input")
        if raw is None:
            raise missing_parameter("input")
        items: list[Any] = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
        if not isinstance(raw, str | list) or not items:
            raise _invalid("'$.input' is invalid: expected a non-empty string or array.")
        if all(isinstance(x, int) and not isinstance(x, bool) for x in items):
            items = [items]  # one token array
        if len(items) > MAX_INPUTS:
            raise _invalid(f"'$.input' is invalid: at most {MAX_INPUTS} inputs per request, got {len(items)}.")
        texts: list[str] = []
        counts: list[int] = []
        for i, item in enumerate(items):
            if isinstance(item, str) and item:
                texts.append(item)
                counts.append(tokens.count_text(item))
            elif isinstance(item, list) and item and all(isinstance(t, int) and not isinstance(t, bool)
                                                          for t in item):
                texts.append(" ".join(f"tok{t}" for t in item))  # token ids: each id a word of its own
                counts.append(len(item))
            else:
                raise _invalid(f"'$.input[{i}]' is invalid: expected a non-empty string or array of token ids.")
            if counts[-1] > MAX_INPUT_TOKENS:
                raise _invalid(f"This model's maximum context length is {MAX_INPUT_TOKENS} tokens, however you "
                               f"requested {counts[-1]} tokens in input {i}. Please reduce your input.")
        size = EMBEDDING_MODELS.get(model, DEFAULT_DIMENSIONS)
        dims = body.get("dimensions")
        if dims is not None:
            if isinstance(dims, bool) or not isinstance(dims, int) or not 1 <= dims <= size:
                raise _invalid(f"Invalid 'dimensions': expected an integer from 1 to {size} for {model}, "
                               f"got {dims!r}.", param="dimensions")
            if model == "text-embedding-ada-002" and dims != size:
                raise _invalid("This model does not support specifying dimensions.", param="dimensions")
            size = dims
        fmt = body.get("encoding_format", "float")
        if fmt not in ("float", "base64"):
            raise _invalid(f"Invalid 'encoding_format': expected 'float' or 'base64', got {fmt!r}.",
                           param="encoding_format")
        return EmbedRequest(model, tuple(texts), tuple(counts), size, fmt == "base64")

    def render_embed(self, req: EmbedRequest) -> dict[str, Any]:
        """The answer body: one embedding per input, in order, and the usage."""
        data = []
        for i, text in enumerate(req.texts):
            vec = embed_text(text, req.dimensions)
            value: Any = vec
            if req.base64:
                packed = array.array("f", vec)
                if sys.byteorder != "little":
                    packed.byteswap()
                value = base64.b64encode(packed.tobytes()).decode()
            data.append({"object": "embedding", "index": i, "embedding": value})
        n = req.input_tokens
        return {"object": "list", "data": data, "model": req.model,
                "usage": {"prompt_tokens": n, "total_tokens": n}}

    # ---- the Api protocol (the endpoint's shared paths: errors, proxy metering, call records) -----------

    def parse(self, body: dict[str, Any]) -> Prompt:
        """The request as a Prompt (one user message per input) for rate limits and script matching."""
        req = self.parse_embed(body)
        return Prompt("openai", self.api, req.model, tuple(Message("user", t) for t in req.texts))

    def render(self, prompt: Prompt, reply: Reply, body: dict[str, Any], rng: Any) -> dict[str, Any]:
        """Not used: an embedding has no reply (``render_embed`` answers)."""
        return self.render_embed(self.parse_embed(body))

    def frames(self, prompt: Prompt, reply: Reply, body: dict[str, Any], rng: Any) -> Iterator[Frame]:
        """Embeddings are never streamed."""
        raise ApiError(400, "embeddings cannot be streamed", param="stream")

    def error_body(self, err: ApiError) -> dict[str, Any]:
        """OpenAI's error body."""
        return openai_error(err)
