"""Work queues for the daemon pattern: one ``Queue`` seam, four brokers, picked by URL with ``open_queue``.

``memory://`` (the default) is a broker inside the control process; ``redis://``, ``sqs://`` and
``amqp://`` are real ones. All give the same at-least-once semantics (see ``emulators.queues.base``); the
backend modules import their client library, so each needs its extra only when it is used.
"""

from __future__ import annotations

import importlib
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import ConfigError
from .base import DEFAULT_MAX_BYTES, EXPIRED_ERROR, DeadLetter, Message, Queue, QueueOptions, queue_name
from .memory import MemoryQueue

__all__ = [
    "DEFAULT_MAX_BYTES",
    "EXPIRED_ERROR",
    "DeadLetter",
    "MemoryQueue",
    "Message",
    "Queue",
    "QueueOptions",
    "open_queue",
    "queue_name",
]

_EXTRAS = {"redis": "redis", "sqs": "sqs", "amqp": "rabbitmq"}
_SCHEMES = {"redis": "redis", "rediss": "redis", "sqs": "sqs", "amqp": "amqp", "amqps": "amqp"}


def _backend(kind: str, module: str) -> Any:
    try:
        return importlib.import_module(f"{__name__}.{module}")
    except ImportError as exc:
        raise ConfigError(
            f"the {kind} queue needs its client library ({exc.name}); "
            f"install it with: pip install 'agent-deploy-harness[{_EXTRAS[kind]}]'"
        ) from exc


def open_queue(url: str | None, *, run_id: str, name: str = "tasks", visibility_s: float = 30.0,
               max_receives: int = 5, max_bytes: int = DEFAULT_MAX_BYTES, connect_timeout_s: float = 3.0,
               client: Any = None) -> Queue:
    """Open (creating where needed) the queue ``adh-<run_id>-<name>`` on the broker ``url`` names.

    URLs: None or ``memory://``; ``redis://host:port/db``; ``sqs://host:port/name?region=us-east-1`` (no
    host: ``AWS_ENDPOINT_URL`` or AWS itself); ``amqp://user:pass@host:port/vhost``. A ``?queue=NAME``
    parameter, or the SQS path, overrides ``name``. ``client`` injects a ready redis-py (or fakeredis) or
    boto3 SQS client. A broker that cannot be reached raises ``BackendUnavailableError`` within about
    ``connect_timeout_s``.
    """
    options = QueueOptions(visibility_s=visibility_s, max_receives=max_receives, max_bytes=max_bytes,
                           connect_timeout_s=connect_timeout_s)
    if url is None or url in ("memory://", "memory"):
        return MemoryQueue(queue_name(run_id, name), options)
    parts = urlsplit(url)
    kind = _SCHEMES.get(parts.scheme) if url.startswith(f"{parts.scheme}://") else None
    if kind is None:
        raise ConfigError(
            f"unsupported queue URL {url!r}; expected memory://, redis://host:port/db, "
            f"sqs://host:port/queue-name or amqp://user:pass@host:port/vhost"
        )
    query = parse_qsl(parts.query)
    for key, value in query:
        if key == "queue":
            name = value
    if kind == "sqs" and parts.path.strip("/"):
        name = parts.path.strip("/")
    full = queue_name(run_id, name)
    if kind == "redis":
        # redis-py turns every query parameter into a connection keyword, so ours must go.
        bare = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in query if k != "queue"])))
        mod = _backend("redis", "redis_queue")
        return mod.RedisQueue(bare, full, options, client=client)  # type: ignore[no-any-return]
    if kind == "sqs":
        mod = _backend("sqs", "sqs_queue")
        return mod.SQSQueue(url, full, options, client=client)  # type: ignore[no-any-return]
    if client is not None:
        raise ConfigError("amqp:// queues open their own pika connection; client= is for redis:// and sqs://")
    mod = _backend("amqp", "amqp_queue")
    return mod.AMQPQueue(url, full, options)  # type: ignore[no-any-return]
