"""The embedded broker: a queue in the control process, the default when no queue URL is given.

Blocking and thread-safe, not asyncio-native, on purpose: the three real clients (redis-py, boto3, pika)
are blocking, so the daemon pattern drives every queue the same way, through ``anyio.to_thread`` for calls
that wait (``receive(wait_s=...)``). A second, async flavour of the memory queue would make it the one
backend whose behaviour differs. Every call other than a waiting receive holds one lock for microseconds,
so calling it directly from the event loop is harmless too. A waiting receive sleeps on a condition
variable, woken by a send or nack, so it costs no polling.

Messages live in an insertion-ordered dict scanned on each receive: at the harness's scale (thousands of
messages) a scan is cheaper than keeping a heap consistent with nacks and extends.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass
from typing import Any

from .base import EXPIRED_ERROR, DeadLetter, Message, QueueOptions, decode, encode

__all__ = ["MemoryQueue"]


@dataclass
class _Entry:
    raw: str
    receive_count: int
    visible_at: float
    held: bool = False


class MemoryQueue:
    """An in-process queue with the same semantics as the real brokers (see ``emulators.queues.base``)."""

    def __init__(self, name: str, options: QueueOptions | None = None) -> None:
        self.name = name
        self.url = "memory://"
        self.options = options or QueueOptions()
        self._entries: dict[str, _Entry] = {}
        self._keys = itertools.count(1)  # broker-internal keys: this broker lives in one process
        self._dead: list[DeadLetter] = []
        self._cond = threading.Condition()

    def send(self, task_id: str, body: dict[str, Any], *, delay_s: float = 0.0) -> None:
        """Enqueue a message, visible after ``delay_s`` wall seconds."""
        raw = encode(task_id, body, self.options.max_bytes, self.name)
        with self._cond:
            self._entries[str(next(self._keys))] = _Entry(raw, 0, time.monotonic() + max(delay_s, 0.0))
            self._cond.notify_all()

    def receive(self, max_messages: int = 1, *, wait_s: float = 0.0,
                visibility_s: float | None = None) -> list[Message]:
        """Up to ``max_messages`` visible messages, waiting up to ``wait_s`` for the first one."""
        visibility = self.options.visibility_s if visibility_s is None else visibility_s
        deadline = time.monotonic() + max(wait_s, 0.0)
        with self._cond:
            while True:
                now = time.monotonic()
                got = self._take(max_messages, now, visibility)
                if got or now >= deadline:
                    return got
                # Sleep until the deadline or the next message becomes visible, whichever is first; a
                # send or nack wakes us earlier.
                wake = min([deadline, *(e.visible_at for e in self._entries.values())])
                self._cond.wait(max(wake - now, 0.001))

    def _take(self, max_messages: int, now: float, visibility: float) -> list[Message]:
        out: list[Message] = []
        for key, e in list(self._entries.items()):
            if len(out) >= max_messages:
                break
            if e.visible_at > now:
                continue
            if e.receive_count >= self.options.max_receives:
                self._dead_letter(key, e, EXPIRED_ERROR)
                continue
            e.receive_count += 1
            e.visible_at = now + visibility
            e.held = True
            task_id, body = decode(e.raw)
            out.append(Message(task_id, body, e.receive_count, f"{key}:{e.receive_count}"))
        return out

    def _dead_letter(self, key: str, e: _Entry, error: str) -> None:
        task_id, body = decode(e.raw)
        self._dead.append(DeadLetter(task_id, body, e.receive_count, error))
        del self._entries[key]

    def _held(self, message: Message) -> tuple[str, _Entry] | None:
        """The entry ``message`` still holds (this delivery, not expired), or None for a stale receipt."""
        key, _, count = message.receipt.partition(":")
        e = self._entries.get(key)
        if e is None or not e.held or str(e.receive_count) != count or e.visible_at <= time.monotonic():
            return None
        return key, e

    def ack(self, message: Message) -> None:
        """Delete the message: done. Late acks still delete it, as on SQS (it may have been redelivered)."""
        with self._cond:
            self._entries.pop(message.receipt.partition(":")[0], None)

    def nack(self, message: Message, *, delay_s: float = 0.0, error: str | None = None) -> None:
        """Release the message for another try after ``delay_s``; its last allowed try goes to the DLQ."""
        with self._cond:
            found = self._held(message)
            if found is None:
                return
            key, e = found
            if e.receive_count >= self.options.max_receives:
                self._dead_letter(key, e, error or "released after its last allowed receive")
                return
            e.held = False
            e.visible_at = time.monotonic() + max(delay_s, 0.0)
            self._cond.notify_all()

    def extend(self, message: Message, visibility_s: float) -> None:
        """Keep the message invisible for ``visibility_s`` more wall seconds from now."""
        with self._cond:
            found = self._held(message)
            if found is not None:
                found[1].visible_at = time.monotonic() + visibility_s

    def depth(self) -> int:
        """How many messages are visible now."""
        now = time.monotonic()
        with self._cond:
            return sum(1 for e in self._entries.values() if e.visible_at <= now)

    def dead_letters(self) -> list[DeadLetter]:
        """The dead-lettered messages, oldest first."""
        with self._cond:
            return list(self._dead)

    def reconnect(self, timeout_s: float = 30.0) -> None:
        """Nothing to reconnect: the broker is this object."""

    def purge(self) -> None:
        """Drop every message, dead letters included."""
        with self._cond:
            self._entries.clear()
            self._dead.clear()

    def delete(self) -> None:
        """Same as purge: there is no broker-side object to remove."""
        self.purge()

    def close(self) -> None:
        """Wake any waiting receiver; the messages stay until the object is dropped."""
        with self._cond:
            self._cond.notify_all()
