"""The RabbitMQ queue (``amqp://user:pass@host:port/vhost``) through pika's BlockingConnection.

AMQP has no visibility timeout: an unacked delivery stays with its consumer until the channel closes (or
RabbitMQ's 30-minute ``consumer_timeout``, platform-facts.md "RabbitMQ consumer_timeout", source RMQ1).
So this class keeps the deadline of each delivery it handed out and, on its next call, releases the ones
past their deadline. That is where the daemon's consumer lives (the control process); if the process dies,
its channel closes and the broker requeues everything it held, which is the crash case covered for free.

Releasing a message (nack, expiry) republishes a copy with the receive count in the ``x-receives`` header
and then acks the original, so the count survives (classic queues only have a ``redelivered`` flag). A
delayed release goes to ``<name>.delay``, whose per-message TTL dead-letters it back into ``<name>``.
RabbitMQ expires TTL'd messages only at the head of a queue, so a short delay behind a long one waits for
it: retries come late, never early. Dead letters go to ``<name>.dlq`` with ``x-last-error``. Publisher
confirms are on, so a republish is on the broker before the original is acked (at worst a duplicate).

pika connections are not thread-safe: one lock serializes every call, so the daemon may call from
``to_thread`` workers. A lost connection raises ``BackendUnavailableError``; ``reconnect()`` opens a new
one (the broker has requeued the old one's unacked deliveries, so their receipts go stale).
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pika  # type: ignore[import-untyped, unused-ignore]
import pika.exceptions  # type: ignore[import-untyped, unused-ignore]

from ..errors import BackendUnavailableError
from .base import EXPIRED_ERROR, DeadLetter, Message, QueueOptions, decode, encode, redact, retry_until

__all__ = ["AMQPQueue"]

_POLL_MIN_S = 0.01
_POLL_MAX_S = 0.1
_HARNESS_QUERY = {"queue", "name"}  # our own URL parameters; pika refuses what it does not know


@dataclass
class _Held:
    raw: str
    receive_count: int
    deadline: float


class AMQPQueue:
    """A queue in RabbitMQ with the semantics of ``emulators.queues.base``."""

    def __init__(self, url: str, name: str, options: QueueOptions | None = None) -> None:
        self.name = name
        self.url = redact(url)
        self.options = options or QueueOptions()
        parts = urlsplit(url)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in _HARNESS_QUERY]
        self._params = pika.URLParameters(urlunsplit(parts._replace(query=urlencode(query))))
        t = self.options.connect_timeout_s
        self._params.socket_timeout = t
        self._params.stack_timeout = t
        self._params.blocked_connection_timeout = max(t, 5.0)
        self._params.connection_attempts = 1
        self._lock = threading.RLock()
        self._held: dict[int, _Held] = {}
        self._gen = 0
        self._conn: Any = None
        self._ch: Any = None
        self._dlq, self._delay = f"{name}.dlq", f"{name}.delay"
        self._connect()

    def _connect(self) -> None:
        try:
            self._conn = pika.BlockingConnection(self._params)
            self._ch = self._conn.channel()
            self._ch.confirm_delivery()
            self._ch.queue_declare(self.name, durable=True)
            self._ch.queue_declare(self._dlq, durable=True)
            self._ch.queue_declare(self._delay, durable=True, arguments={
                "x-dead-letter-exchange": "", "x-dead-letter-routing-key": self.name})
        except (pika.exceptions.AMQPError, OSError) as exc:
            raise self._unavailable("open", exc) from exc
        self._gen += 1
        self._held.clear()

    def _unavailable(self, what: str, exc: BaseException) -> BackendUnavailableError:
        return BackendUnavailableError(
            f"cannot reach RabbitMQ at {self.url} (queue {self.name!r}, {what}): {exc!r}; start rabbitmq-server "
            f"or fix the URL (user, password, vhost), then retry (a queue consumer can call reconnect())"
        )

    def _call(self, what: str, fn: Any) -> Any:
        with self._lock:
            if self._ch is None or not self._ch.is_open:
                raise self._unavailable(what, RuntimeError("the connection was lost"))
            try:
                return fn()
            except (pika.exceptions.AMQPError, OSError) as exc:
                self._ch = None  # a closed channel or connection cannot be reused
                raise self._unavailable(what, exc) from exc

    def _publish(self, queue: str, raw: str, receives: int, *, error: str | None = None,
                 delay_s: float = 0.0) -> None:
        headers: dict[str, Any] = {"x-receives": receives}
        if error is not None:
            headers["x-last-error"] = error
        props = pika.BasicProperties(content_type="application/json", delivery_mode=2, headers=headers,
                                     expiration=str(max(1, round(delay_s * 1000))) if delay_s > 0 else None)
        self._ch.basic_publish("", self._delay if delay_s > 0 else queue, raw.encode(), props)

    def _release(self, tag: int, held: _Held, *, delay_s: float = 0.0, error: str | None = None) -> None:
        """Requeue (or dead-letter, past max_receives) one held delivery: publish the copy, then ack."""
        if held.receive_count >= self.options.max_receives:
            self._publish(self._dlq, held.raw, held.receive_count,
                          error=error or "released after its last allowed receive")
        else:
            self._publish(self.name, held.raw, held.receive_count, delay_s=delay_s)
        self._ch.basic_ack(tag)
        del self._held[tag]

    def _expire(self) -> None:
        now = time.monotonic()
        for tag, held in list(self._held.items()):
            if held.deadline <= now:
                self._release(tag, held, error=EXPIRED_ERROR)

    def send(self, task_id: str, body: dict[str, Any], *, delay_s: float = 0.0) -> None:
        """Enqueue a message, visible after ``delay_s`` wall seconds."""
        raw = encode(task_id, body, self.options.max_bytes, self.name)
        self._call("send", lambda: self._publish(self.name, raw, 0, delay_s=delay_s))

    def receive(self, max_messages: int = 1, *, wait_s: float = 0.0,
                visibility_s: float | None = None) -> list[Message]:
        """Up to ``max_messages`` visible messages, polling up to ``wait_s`` for the first one."""
        visibility = self.options.visibility_s if visibility_s is None else visibility_s
        deadline = time.monotonic() + max(wait_s, 0.0)
        pause = _POLL_MIN_S
        while True:
            got = self._call("receive", lambda: self._take(max_messages, visibility))
            left = deadline - time.monotonic()
            if got or left <= 0:
                return list(got)
            time.sleep(min(pause, left))  # outside the lock, so other threads' acks need not wait
            pause = min(pause * 2, _POLL_MAX_S)

    def _take(self, max_messages: int, visibility: float) -> list[Message]:
        self._expire()
        out: list[Message] = []
        while len(out) < max_messages:
            method, props, raw_bytes = self._ch.basic_get(self.name, auto_ack=False)
            if method is None:
                break
            raw = raw_bytes.decode()
            # A delivery the broker requeued itself (a consumer's connection dropped) was counted by nobody.
            rc = int((props.headers or {}).get("x-receives", 0)) + 1 + (1 if method.redelivered else 0)
            if rc > self.options.max_receives:  # its last delivery expired: the consumers saw rc - 1
                self._held[method.delivery_tag] = _Held(raw, rc - 1, 0.0)
                self._release(method.delivery_tag, self._held[method.delivery_tag], error=EXPIRED_ERROR)
                continue
            self._held[method.delivery_tag] = _Held(raw, rc, time.monotonic() + visibility)
            task_id, body = decode(raw)
            out.append(Message(task_id, body, rc, f"{self._gen}:{method.delivery_tag}"))
        return out

    def _lookup(self, message: Message) -> tuple[int, _Held] | None:
        gen, _, tag = message.receipt.partition(":")
        held = self._held.get(int(tag)) if gen == str(self._gen) else None
        return None if held is None else (int(tag), held)

    def ack(self, message: Message) -> None:
        """Ack the delivery; a stale receipt (expired and released, or from a lost connection) is a no-op."""

        def do() -> None:
            found = self._lookup(message)
            if found is not None:
                self._ch.basic_ack(found[0])
                del self._held[found[0]]

        self._call("ack", do)

    def nack(self, message: Message, *, delay_s: float = 0.0, error: str | None = None) -> None:
        """Release the message for another try after ``delay_s``; its last allowed try goes to the DLQ."""

        def do() -> None:
            found = self._lookup(message)
            if found is not None:
                self._release(found[0], found[1], delay_s=delay_s, error=error)

        self._call("nack", do)

    def extend(self, message: Message, visibility_s: float) -> None:
        """Keep the message held for ``visibility_s`` more wall seconds from now."""
        with self._lock:
            found = self._lookup(message)
            if found is not None:
                found[1].deadline = time.monotonic() + visibility_s

    def depth(self) -> int:
        """Ready messages in the queue (held and delayed ones are invisible)."""

        def do() -> int:
            self._expire()
            return int(self._ch.queue_declare(self.name, passive=True).method.message_count)

        return int(self._call("depth", do))

    def dead_letters(self) -> list[DeadLetter]:
        """The dead-lettered messages, read and then put back so they stay for the next reader."""

        def do() -> list[DeadLetter]:
            self._expire()
            out: list[DeadLetter] = []
            tags: list[int] = []
            while True:
                method, props, raw_bytes = self._ch.basic_get(self._dlq, auto_ack=False)
                if method is None:
                    break
                tags.append(method.delivery_tag)
                headers = props.headers or {}
                task_id, body = decode(raw_bytes)
                last = headers.get("x-last-error", "")
                out.append(DeadLetter(task_id, body, int(headers.get("x-receives", 0)),
                                      last.decode() if isinstance(last, bytes) else str(last)))
            for tag in tags:  # one by one: multiple=True would also requeue our held main-queue deliveries
                self._ch.basic_nack(tag, requeue=True)
            return out

        result: list[DeadLetter] = self._call("dead_letters", do)
        return result

    def reconnect(self, timeout_s: float = 30.0) -> None:
        """Open a new connection, retrying with back-off until the broker is back or ``timeout_s`` passed."""
        with self._lock:
            self._close_quietly()
            retry_until(self._connect, timeout_s, f"RabbitMQ at {self.url}")

    def purge(self) -> None:
        """Drop every message, delayed and dead ones included."""

        def do() -> None:
            self._held.clear()
            for q in (self.name, self._delay, self._dlq):
                self._ch.queue_purge(q)

        self._call("purge", do)

    def delete(self) -> None:
        """Delete the queue, its delay queue and its DLQ."""

        def do() -> None:
            self._held.clear()
            for q in (self.name, self._delay, self._dlq):
                self._ch.queue_delete(q)

        self._call("delete", do)

    def _close_quietly(self) -> None:
        conn, self._conn, self._ch = self._conn, None, None
        if conn is not None and conn.is_open:
            # Already going away; the broker requeues what it held either way.
            with contextlib.suppress(pika.exceptions.AMQPError, OSError):
                conn.close()

    def close(self) -> None:
        """Close the connection; the broker requeues any delivery still held."""
        with self._lock:
            self._close_quietly()
