"""What the endpoint reads off an HTTP request: its JSON body, the API key, the provider, a request digest."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from starlette.requests import Request

from .dialog import ApiError

__all__ = ["api_key", "digest", "is_anthropic", "json_body"]


async def json_body(request: Request) -> dict[str, Any]:
    """The body as a JSON object, or the 400 a provider answers."""
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"We could not parse the JSON body of your request ({exc}). "
                            f"The API expects a JSON object in the request body.") from None
    if not isinstance(body, dict):
        raise ApiError(400, f"The request body must be a JSON object, got {type(body).__name__}.")
    return body


def digest(api: str, body: dict[str, Any]) -> str:
    """What identifies 'the same request' (streaming or not) for seeding."""
    same = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    text = json.dumps([api, same], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def api_key(request: Request) -> str:
    """The bearer token or ``x-api-key`` (the rate-limit bucket), else ``anonymous``."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key") or "anonymous"


def is_anthropic(request: Request) -> bool:
    """Whether the request speaks Anthropic's API (its version header, or the messages route)."""
    return "anthropic-version" in request.headers or request.url.path.endswith("/messages")
