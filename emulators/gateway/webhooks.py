"""Webhooks: POST a finished task to its ``callback_url``, signed, retried, and only where allowed.

Signature: ``x-harness-signature: v1=<hex HMAC-SHA256 of "<timestamp>.<body>">`` with the deployment's
secret, and ``x-harness-timestamp: <UNIX seconds>``. The timestamp is inside the signed text, so a
receiver that refuses old timestamps (``verify(..., tolerance_s=300)``) cannot be fed a replayed delivery;
``x-harness-delivery`` is one id per task (the same on every retry) for receivers that deduplicate.

Targets: loopback only by default (``127.0.0.0/8``, ``::1``, ``localhost``), anything else only when named
in the allow-list (a host name, an IP address or a CIDR network; ``*`` allows everything). Names are not
resolved and redirects are not followed, so a callback cannot be bent towards an internal address: no SSRF
by default.

Retries: a delivery that fails (connection error or a non-2xx answer) is retried after a back-off that
doubles each time, in platform seconds through the clock; the count and base are the harness's own choice
(``GatewayOptions``), not a platform figure.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import time
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..clock import Clock
from ..errors import ConfigError

if TYPE_CHECKING:
    import httpx

    from .tasks import Task

__all__ = [
    "DELIVERY_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookSender",
    "check_target",
    "sign",
    "verify",
]

log = logging.getLogger("emulators.gateway")

SIGNATURE_HEADER = "x-harness-signature"
TIMESTAMP_HEADER = "x-harness-timestamp"
DELIVERY_HEADER = "x-harness-delivery"
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(secret: str, body: bytes, timestamp: str | None, signature: str | None, *,
           tolerance_s: float = 300.0, now: float | None = None) -> bool:
    """True if ``signature`` is ours for this body and timestamp, and the timestamp is recent enough."""
    if not timestamp or not signature:
        return False
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def _allowed(host: str, allow: Iterable[str]) -> bool:
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if (ip is not None and ip.is_loopback) or host in _LOOPBACK_NAMES:
        return True
    for entry in allow:
        if entry == "*" or entry.lower() == host:
            return True
        if ip is not None:
            try:
                if ip in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def check_target(url: str, allow: Iterable[str] = ()) -> str:
    """Return ``url`` if a webhook may be sent there; ConfigError saying why not otherwise."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise ConfigError(f"callback_url {url!r} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError(f"callback_url {url!r} must be an absolute http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"callback_url {url!r} must not carry credentials")
    if not _allowed(host, allow):
        raise ConfigError(
            f"callback_url host {host!r} is not allowed: webhooks go to loopback addresses only unless the "
            f"host is in the allow-list (GatewayOptions.webhook_allow / harness serve --webhook-allow)")
    return url


class WebhookSender:
    """Signs and posts finished tasks to their callback URLs, retrying with back-off."""

    def __init__(self, secret: str, clock: Clock, *, allow: Iterable[str] = (), attempts: int = 5,
                 backoff_s: float = 1.0, timeout_s: float = 10.0) -> None:
        self.secret = secret
        self.clock = clock
        self.allow = tuple(allow)
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self._client: httpx.AsyncClient | None = None

    def check(self, url: str) -> str:
        """Validate a callback URL against the allow-list (ConfigError if refused)."""
        return check_target(url, self.allow)

    def _http(self) -> httpx.AsyncClient:
        import httpx  # imported on the first delivery: ``import harness`` stays cheap

        if self._client is None:
            # trust_env=False: a proxy from the environment must not see (or redirect) the callbacks.
            self._client = httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False, trust_env=False)
        return self._client

    async def deliver(self, task: Task) -> None:
        """POST the task's final JSON to its callback URL until a 2xx answer or the attempts run out."""
        import httpx

        assert task.callback_url is not None and task.webhook is not None
        delivery = str(uuid.uuid4())
        # The body is GET /tasks/{id} without the delivery bookkeeping, identical on every attempt.
        payload = {k: v for k, v in task.to_json().items() if k != "webhook"}
        body = json.dumps(payload, separators=(",", ":")).encode()
        for attempt in range(1, self.attempts + 1):
            ts = str(int(time.time()))
            headers = {"content-type": "application/json", SIGNATURE_HEADER: sign(self.secret, ts, body),
                       TIMESTAMP_HEADER: ts, DELIVERY_HEADER: delivery, "x-harness-task-id": task.task_id,
                       "user-agent": "agent-deploy-harness-webhook"}
            task.webhook["attempts"] = attempt
            try:
                resp = await self._http().post(task.callback_url, content=body, headers=headers)
                task.webhook["last_status"] = resp.status_code
                if 200 <= resp.status_code < 300:
                    task.webhook["delivered"] = True
                    return
                task.webhook["last_error"] = f"HTTP {resp.status_code}"
            except httpx.HTTPError as exc:
                task.webhook["last_status"] = None
                task.webhook["last_error"] = f"{type(exc).__name__}: {exc}"
            if attempt < self.attempts:
                await self.clock.sleep(self.backoff_s * 2 ** (attempt - 1))
        log.warning("webhook for task %s not delivered to %s after %d attempts: %s", task.task_id,
                    task.callback_url, self.attempts, task.webhook.get("last_error"))

    async def aclose(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
