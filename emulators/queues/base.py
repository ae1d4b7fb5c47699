"""The queue seam: the ``Queue`` Protocol, its message types, and what every backend shares.

Semantics every backend gives (the contract suite in tests/integration pins them):

- At-least-once: a received message stays in the queue, invisible, for a visibility timeout (wall seconds
  at this layer; the daemon pattern converts platform seconds through its clock). Not acked in time, it
  becomes visible again and the next receive hands it out with ``receive_count`` one higher.
- ``nack`` releases a message for another try at once or after ``delay_s`` (retry back-off); ``extend``
  pushes the deadline of a message still being worked on (a heartbeat).
- A message is handed out at most ``max_receives`` times. A nack of its last delivery moves it to the
  dead-letter queue at once, with the nack's error; a last delivery that simply expires is moved by the
  next receive that finds it, with the error ``visibility timeout expired``. So ``last_error`` is what ended
  the last delivery. The same rule on every backend (SQS's own redrive would record no error at all).
- ``depth()`` is the approximate number of visible messages (what a KEDA-style scaler reads).
- Messages carry a task id and a JSON body; ids need not be unique (a re-sent task is a second message).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

from ..errors import BackendUnavailableError, ConfigError, MessageTooLargeError
from ..jsonfast import loads

__all__ = [
    "DEFAULT_MAX_BYTES",
    "EXPIRED_ERROR",
    "DeadLetter",
    "Message",
    "Queue",
    "QueueOptions",
    "decode",
    "encode",
    "new_key",
    "queue_name",
    "redact",
    "retry_until",
]

# platform-facts.md, Queues, "SQS message size": 1 MiB since 2025/26 (sources A23, Q2); the other brokers
# have larger limits, so the SQS one is the portable default.
DEFAULT_MAX_BYTES = 1_048_576

EXPIRED_ERROR = "visibility timeout expired"

T = TypeVar("T")


@dataclass(frozen=True)
class Message:
    """One delivery of a message: ``receipt`` identifies this delivery for ack, nack and extend."""

    id: str
    body: dict[str, Any]
    receive_count: int
    receipt: str


@dataclass(frozen=True)
class DeadLetter:
    """A message moved to the dead-letter queue after ``receive_count`` deliveries."""

    id: str
    body: dict[str, Any]
    receive_count: int
    last_error: str


@dataclass(frozen=True)
class QueueOptions:
    """Per-queue settings, in wall seconds and bytes."""

    visibility_s: float = 30.0
    max_receives: int = 5
    max_bytes: int = DEFAULT_MAX_BYTES
    connect_timeout_s: float = 3.0

    def __post_init__(self) -> None:
        if not self.visibility_s > 0:
            raise ConfigError(f"visibility_s must be a positive number of wall seconds, got {self.visibility_s!r}")
        if self.max_receives < 1:
            raise ConfigError(f"max_receives must be at least 1, got {self.max_receives!r}")
        if self.max_bytes < 64:
            raise ConfigError(f"max_bytes must be at least 64 bytes, got {self.max_bytes!r}")


class Queue(Protocol):
    """A work queue with visibility timeouts, receive counts and a dead-letter queue."""

    name: str

    def send(self, task_id: str, body: dict[str, Any], *, delay_s: float = 0.0) -> None: ...
    def receive(self, max_messages: int = 1, *, wait_s: float = 0.0,
                visibility_s: float | None = None) -> list[Message]: ...
    def ack(self, message: Message) -> None: ...
    def nack(self, message: Message, *, delay_s: float = 0.0, error: str | None = None) -> None: ...
    def extend(self, message: Message, visibility_s: float) -> None: ...
    def depth(self) -> int: ...
    def dead_letters(self) -> list[DeadLetter]: ...
    def reconnect(self, timeout_s: float = 30.0) -> None: ...
    def purge(self) -> None: ...
    def delete(self) -> None: ...
    def close(self) -> None: ...


_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def queue_name(run_id: str, name: str) -> str:
    """The per-run broker name: ``adh-<run_id>-<name>``, in the characters every broker accepts.

    SQS allows 80 characters of ``[A-Za-z0-9_-]`` and its DLQ adds ``-dlq``, hence the cut at 76.
    """
    if not name:
        raise ConfigError("queue name must not be empty; pass e.g. name='tasks'")
    full = "adh-" + (f"{run_id}-" if run_id else "") + name
    return _UNSAFE.sub("-", full)[:76]


def new_key() -> str:
    """A broker-internal key for one message, distinct from its (possibly repeated) task id."""
    return uuid.uuid4().hex


def encode(task_id: str, body: dict[str, Any], max_bytes: int, queue: str) -> str:
    """The wire form of a message; raises MessageTooLargeError past ``max_bytes`` (UTF-8 bytes)."""
    if not isinstance(task_id, str) or not task_id:
        raise ConfigError(f"a message needs a non-empty string task id, got {task_id!r}")
    if not isinstance(body, dict):
        raise TypeError(f"a message body must be a JSON object (dict), got {type(body).__name__}")
    raw = json.dumps({"id": task_id, "body": body}, separators=(",", ":"))
    size = len(raw.encode("utf-8"))
    if size > max_bytes:
        raise MessageTooLargeError(
            f"message {task_id!r} is {size} bytes, over the {max_bytes}-byte limit of queue {queue!r}; "
            f"pass large inputs by reference (a URL or a state key) or raise max_bytes"
        )
    return raw


def decode(raw: str | bytes) -> tuple[str, dict[str, Any]]:
    """Task id and body from the wire form made by ``encode``."""
    data = loads(raw)
    return str(data["id"]), dict(data["body"])


def redact(url: str) -> str:
    """The URL with any password replaced by ``***``, for error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))


def retry_until(attempt: Callable[[], T], timeout_s: float, what: str, *,
                errors: tuple[type[BaseException], ...] = (BackendUnavailableError,)) -> T:
    """Call ``attempt`` until it succeeds, backing off 0.05 s doubling to 1 s, for at most ``timeout_s``.

    The reconnect loop of every backend: a consumer that lost its broker calls ``reconnect`` and resumes
    when the broker is back, or gets the last error once the time is up.
    """
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while True:
        try:
            return attempt()
        except errors as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BackendUnavailableError(
                    f"{what} still unreachable after {timeout_s:g} s of retrying: {exc}"
                ) from exc
            time.sleep(min(delay, left))
            delay = min(delay * 2, 1.0)
