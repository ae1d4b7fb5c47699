"""``GatewayOptions``: how one deployment's gateway listens, authenticates, calls back and streams.

Defaults are safe for a laptop: 127.0.0.1 on a free port, no API key, webhooks to loopback only. The
numbers here (webhook attempts and back-off, keep-alive period, body cap) are the harness's own choices,
not platform figures; the platform's limits (gateway timeout, request size) come from the profile.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field

from ..errors import ConfigError

__all__ = ["GatewayOptions", "is_loopback_host"]


def is_loopback_host(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class GatewayOptions:
    """Options of a deployment's HTTP gateway (``deploy(..., gateway=GatewayOptions(...))``)."""

    serve: bool = True  # False: no HTTP server; submit/status/wait/stream and webhooks still work in-process
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port
    api_key: str | None = None  # None: no authentication (the default bind is loopback only)
    webhook_secret: str = field(default_factory=lambda: secrets.token_hex(32))  # per deployment
    webhook_allow: tuple[str, ...] = ()  # hosts, IPs or CIDR networks beyond loopback; "*" allows all
    webhook_attempts: int = 5  # first try + retries
    webhook_backoff_s: float = 1.0  # platform seconds before the first retry, doubled each time
    async_retry_delays_s: tuple[float, ...] | None = None  # None: the profile's, where platform-facts has them
    keepalive_s: float = 15.0  # wall seconds between SSE keep-alive comments while nothing happens
    max_body_bytes: int = 64 * 1024 * 1024  # cap on a body when the profile sets no request limit
    # Finished background tasks (POST /tasks, streams) are answered for this many platform seconds, and
    # at most this many are kept; after that GET /tasks/{id} is 404. No platform here keeps async results
    # (Lambda, Netlify hand them to a destination or a webhook), so these are the harness's own defaults.
    task_retention_s: float = 3600.0
    max_finished_tasks: int = 10_000

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"gateway port must be 0-65535 (0: a free port), got {self.port!r}")
        if self.webhook_attempts < 1:
            raise ConfigError(f"webhook_attempts must be at least 1, got {self.webhook_attempts!r}")
        if not self.keepalive_s > 0:
            raise ConfigError(f"keepalive_s must be a positive number of seconds, got {self.keepalive_s!r}")
        if not self.task_retention_s >= 0 or self.max_finished_tasks < 0:
            raise ConfigError(f"task_retention_s and max_finished_tasks must be >= 0, got "
                              f"{self.task_retention_s!r} and {self.max_finished_tasks!r}")
        if not self.webhook_secret:
            raise ConfigError("webhook_secret must not be empty; leave it unset for a random one")
        if self.api_key == "":
            raise ConfigError("api_key must not be empty; leave it unset (None) for no authentication")
        if isinstance(self.webhook_allow, str):
            raise ConfigError("webhook_allow is a tuple of hosts/networks, e.g. ('hooks.example.com',)")

    @property
    def exposed(self) -> bool:
        """True when the gateway listens on an address other machines may reach."""
        return self.serve and not is_loopback_host(self.host)
