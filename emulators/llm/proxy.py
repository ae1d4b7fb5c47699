"""Metering proxy mode: forward a request the endpoint admitted to a real OpenAI/Anthropic-compatible upstream.

The endpoint still parses the request (so a malformed one is a 400 in the provider's format, as in
simulator mode), applies the same RPM/TPM limits and injects the same scripted or random faults; only an
answer it would have simulated is fetched from the upstream instead. Tokens are metered from the
upstream's own ``usage``: the JSON body's ``usage``, or for streams the usage the events carry (chat
completions: the last chunk, so ``stream_options.include_usage`` is switched on for the upstream and that
chunk is kept from a client that did not ask for it; responses: ``response.completed``; messages:
``message_start`` and ``message_delta``).

The API key: the caller's own, unless it is a harness key (``harness-...``, what instances are given), in
which case the proxy's configured key, else the harness process's ``OPENAI_API_KEY`` /
``ANTHROPIC_API_KEY``. A key is sent upstream and nowhere else: never logged, never in an ``LLMCall``.

The upstream's latency is real time, not an emulated wait, so it is not scaled. An upstream that cannot be
reached is a 502 naming its address (without credentials), after a connect timeout of a few seconds.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from starlette.responses import Response, StreamingResponse

from ..errors import ConfigError
from .dialog import ApiError
from .sse import Api

__all__ = ["Upstream", "Usage"]

# Response headers worth passing back: the provider's own rate-limit view and request ids.
_KEEP = ("content-type", "retry-after", "retry-after-ms", "request-id", "x-request-id", "openai-processing-ms",
         "openai-version", "anthropic-ratelimit-", "x-ratelimit-")
# Request headers the SDKs send that the provider reads (auth is set by the proxy itself).
_FORWARD = ("content-type", "accept", "anthropic-version", "anthropic-beta", "openai-beta", "openai-organization",
            "openai-project", "user-agent")


@dataclass
class Usage:
    """What the upstream answered: status and the tokens its ``usage`` reported."""

    status: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cut: bool = False


def _shown(url: str) -> str:
    """The URL without user:password, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class Upstream:
    """One upstream base URL and the HTTP client that talks to it."""

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout_s: float = 600.0,
                 connect_timeout_s: float = 5.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"LLM upstream {base_url!r} is not an http(s) URL; give e.g. https://api.openai.com "
                              f"or the base URL of an OpenAI/Anthropic-compatible server")
        # The routes carry /v1 themselves; accept a base given with or without it.
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.shown = _shown(self.base_url)
        self._key = api_key
        self._timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
        self._client: httpx.AsyncClient | None = None

    async def aclose(self) -> None:
        """Close the connections to the upstream."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _key_for(self, provider: str, caller_key: str | None) -> str | None:
        if caller_key and caller_key != "anonymous" and not caller_key.startswith("harness-"):
            return caller_key
        if self._key:
            return self._key
        return os.environ.get("ANTHROPIC_API_KEY" if provider == "anthropic" else "OPENAI_API_KEY")

    def _headers(self, api: Api, incoming: dict[str, str], caller_key: str | None) -> dict[str, str]:
        out = {k: v for k, v in incoming.items() if k.lower() in _FORWARD}
        key = self._key_for(api.provider, caller_key)
        if key:
            if api.provider == "anthropic":
                out["x-api-key"] = key
            else:
                out["authorization"] = f"Bearer {key}"
        return out

    async def forward(self, api: Api, path: str, body: dict[str, Any], incoming: dict[str, str],
                      caller_key: str | None, *, cut: bool, done: Callable[[Usage], None]) -> Response:
        """Send the request upstream and relay the answer; ``done`` gets the metered usage at the end."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        stream = bool(body.get("stream"))
        wants_usage = True
        if stream and api.api == "chat.completions":
            opts = body.get("stream_options") or {}
            wants_usage = bool(isinstance(opts, dict) and opts.get("include_usage"))
            body = {**body, "stream_options": {**(opts if isinstance(opts, dict) else {}), "include_usage": True}}
        request = self._client.build_request("POST", self.base_url + path, json=body,
                                             headers=self._headers(api, incoming, caller_key))
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise ApiError(504, f"The LLM upstream {self.shown} did not answer in time ({type(exc).__name__}).") \
                from None
        except httpx.HTTPError as exc:
            raise ApiError(502, f"The LLM upstream {self.shown} is unreachable ({type(exc).__name__}: {exc}); "
                                f"check the upstream URL and that the provider is up.") from None
        headers = {k: v for k, v in response.headers.items() if k.lower().startswith(_KEEP)}
        if not stream or response.status_code != 200:
            try:
                raw = await response.aread()
            finally:
                await response.aclose()
            usage = _body_usage(api, raw)
            usage.status = response.status_code
            if cut and response.status_code == 200:
                from .pacing import PartialResponse

                usage.cut = True
                done(usage)
                return PartialResponse(raw, headers=headers)
            done(usage)
            return Response(raw, status_code=response.status_code, headers=headers)
        return StreamingResponse(self._relay(api, response, wants_usage, cut, done), headers=headers,
                                 media_type="text/event-stream")

    async def _relay(self, api: Api, response: httpx.Response, wants_usage: bool, cut: bool,
                     done: Callable[[Usage], None]) -> AsyncIterator[bytes]:
        usage = Usage(status=200)
        buffer = b""
        events = 0
        try:
            async for chunk in response.aiter_bytes():
                buffer += chunk
                while b"\n\n" in buffer:
                    event, buffer = buffer.split(b"\n\n", 1)
                    events += 1
                    data = _meter(api, event, usage)
                    if not wants_usage and _usage_only_chunk(data):
                        continue
                    if cut and events > 3:
                        # Stop relaying mid-stream: the connection closes without the final events.
                        usage.cut = True
                        return
                    yield event + b"\n\n"
            if buffer.strip():
                _meter(api, buffer, usage)
                yield buffer
        finally:
            await response.aclose()
            done(usage)


def _body_usage(api: Api, raw: bytes) -> Usage:
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return Usage()
    u = data.get("usage") if isinstance(data, dict) else None
    return _from_usage(api, u, Usage())


def _from_usage(api: Api, u: Any, into: Usage) -> Usage:
    if not isinstance(u, dict):
        return into
    if api.api in ("chat.completions", "embeddings"):  # embeddings: prompt_tokens only
        into.input_tokens = int(u.get("prompt_tokens") or into.input_tokens)
        into.output_tokens = int(u.get("completion_tokens") or into.output_tokens)
    else:
        into.input_tokens = int(u.get("input_tokens") or into.input_tokens)
        into.output_tokens = int(u.get("output_tokens") or into.output_tokens)
    return into


def _meter(api: Api, event: bytes, usage: Usage) -> Any:
    """Read the usage an event carries into ``usage``; returns the event's JSON data (or None)."""
    data: Any = None
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            payload = line[5:].strip()
            if payload == b"[DONE]":
                return None
            try:
                data = json.loads(payload)
            except (json.JSONDecodeError, UnicodeDecodeError):
                return None
    if not isinstance(data, dict):
        return data
    if api.api == "chat.completions":
        _from_usage(api, data.get("usage"), usage)
    elif api.api == "responses":
        resp = data.get("response")
        if data.get("type") == "response.completed" and isinstance(resp, dict):
            _from_usage(api, resp.get("usage"), usage)
    else:  # messages: input tokens in message_start, output tokens (cumulative) in message_delta
        msg = data.get("message")
        if data.get("type") == "message_start" and isinstance(msg, dict):
            _from_usage(api, msg.get("usage"), usage)
        elif data.get("type") == "message_delta":
            _from_usage(api, data.get("usage"), usage)
    return data


def _usage_only_chunk(data: Any) -> bool:
    """The chat-completions chunk the proxy asked for to meter a stream (empty choices, usage set)."""
    return isinstance(data, dict) and data.get("choices") == [] and data.get("usage") is not None
