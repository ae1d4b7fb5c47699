"""The Redis queue (``redis://host:port/db``): a sorted set of visibility deadlines, driven by redis-py.

Why not lists or streams: a visibility-timeout queue needs a per-message "visible again at" time that
``nack(delay_s=...)`` and ``extend`` can move both ways. Lists (LMOVE to a processing list) need a second
structure and a reaper for deadlines anyway; streams with consumer groups redeliver through XAUTOCLAIM with
one min-idle-time per call, so a per-message deadline, a delayed nack, or an extension past the queue's
visibility cannot be expressed (XCLAIM's IDLE/TIME cannot set a delivery time in the future). A sorted set
whose score is the time a message becomes visible is exactly SQS's model: receive = take members with
score <= now and push their score to now + visibility; nack = set the score to now + delay; extend = set it
to now + visibility; ack = remove; depth = ZCOUNT up to now.

Keys, all prefixed with the per-run queue name: ``:sched`` (ZSET key -> visible-at), ``:msg`` (HASH key ->
wire JSON), ``:rc`` (HASH key -> receive count), ``:dlq`` (LIST of dead letters). Every multi-key change is
a MULTI/EXEC transaction under WATCH of ``:sched`` (every change touches it), not a Lua script, so the same
code runs against fakeredis without the optional ``lupa`` dependency. Times are the server's (``TIME``), so
consumers on several hosts agree on deadlines.

Reconnecting: redis-py reconnects a broken pooled connection by itself, retried twice with short back-off;
when the server stays down, operations raise ``BackendUnavailableError`` and ``reconnect()`` waits for it.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from ..errors import BackendUnavailableError
from .base import EXPIRED_ERROR, DeadLetter, Message, QueueOptions, decode, encode, new_key, redact, retry_until

__all__ = ["RedisQueue", "connect_redis", "redis_errors"]

_POLL_MIN_S = 0.01
_POLL_MAX_S = 0.1


def connect_redis(url: str, connect_timeout_s: float) -> redis.Redis:
    """A redis-py client for ``url`` that fails within ``connect_timeout_s`` instead of hanging."""
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=connect_timeout_s,
        socket_timeout=max(connect_timeout_s, 5.0),
        retry=Retry(ExponentialBackoff(cap=0.25, base=0.05), 2),
    )


@contextlib.contextmanager
def redis_errors(url: str, what: str, then: str = "retry") -> Iterator[None]:
    """Turn redis-py's connection failures into a BackendUnavailableError naming the URL and the remedy."""
    try:
        yield
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        raise BackendUnavailableError(
            f"cannot reach Redis at {redact(url)} ({what}): {exc} Start redis-server or fix the URL, then {then}"
        ) from exc


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisQueue:
    """A queue in Redis with the semantics of ``emulators.queues.base``."""

    def __init__(self, url: str, name: str, options: QueueOptions | None = None, *,
                 client: redis.Redis | None = None) -> None:
        self.name = name
        self.url = redact(url)
        self.options = options or QueueOptions()
        self._own = client is None
        self._r = client if client is not None else connect_redis(url, self.options.connect_timeout_s)
        self._sched, self._msg, self._rc, self._dlq = (f"{name}:{k}" for k in ("sched", "msg", "rc", "dlq"))
        self._guard("open", self._r.ping)

    def _guard(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with redis_errors(self.url, f"queue {self.name!r}, {what}", "call reconnect() or reopen the queue"):
            return fn(*args, **kwargs)

    @staticmethod
    def _now(conn: Any) -> float:
        sec, usec = conn.time()
        return int(sec) + int(usec) / 1e6

    def send(self, task_id: str, body: dict[str, Any], *, delay_s: float = 0.0) -> None:
        """Enqueue a message, visible after ``delay_s`` wall seconds."""
        raw = encode(task_id, body, self.options.max_bytes, self.name)
        key = new_key()

        def put() -> None:
            at = self._now(self._r) + max(delay_s, 0.0)
            pipe = self._r.pipeline(transaction=True)
            pipe.hset(self._msg, key, raw)
            pipe.hset(self._rc, key, 0)
            pipe.zadd(self._sched, {key: at})
            pipe.execute()

        self._guard("send", put)

    def receive(self, max_messages: int = 1, *, wait_s: float = 0.0,
                visibility_s: float | None = None) -> list[Message]:
        """Up to ``max_messages`` visible messages, polling up to ``wait_s`` for the first one."""
        visibility = self.options.visibility_s if visibility_s is None else visibility_s
        deadline = time.monotonic() + max(wait_s, 0.0)
        pause = _POLL_MIN_S
        while True:
            got, moved = self._guard("receive", self._r.transaction,
                                     lambda pipe: self._take(pipe, max_messages, visibility),
                                     self._sched, value_from_callable=True)
            if got or (not moved and time.monotonic() >= deadline):
                return list(got)
            if not moved:
                time.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
                pause = min(pause * 2, _POLL_MAX_S)

    def _take(self, pipe: Any, max_messages: int, visibility: float) -> tuple[list[Message], int]:
        now = self._now(pipe)
        keys = [_text(k) for k in pipe.zrangebyscore(self._sched, "-inf", now, start=0, num=max_messages)]
        if not keys:
            return [], 0
        raws = pipe.hmget(self._msg, keys)
        counts = pipe.hmget(self._rc, keys)
        pipe.multi()
        out: list[Message] = []
        moved = 0
        for key, raw, count in zip(keys, raws, counts, strict=True):
            if raw is None:  # a half-deleted message (should not happen in a transaction); drop the stray
                pipe.zrem(self._sched, key)
                continue
            rc = int(count or 0)
            if rc >= self.options.max_receives:
                self._dead_letter(pipe, key, _text(raw), rc, EXPIRED_ERROR)
                moved += 1
                continue
            pipe.hset(self._rc, key, rc + 1)
            pipe.zadd(self._sched, {key: now + visibility})
            task_id, body = decode(_text(raw))
            out.append(Message(task_id, body, rc + 1, f"{key}:{rc + 1}"))
        return out, moved

    def _dead_letter(self, pipe: Any, key: str, raw: str, rc: int, error: str) -> None:
        pipe.rpush(self._dlq, json.dumps({"raw": raw, "receive_count": rc, "error": error}))
        pipe.zrem(self._sched, key)
        pipe.hdel(self._msg, key)
        pipe.hdel(self._rc, key)

    def ack(self, message: Message) -> None:
        """Delete the message. Late acks still delete it, as on SQS (it may have been redelivered)."""
        key = message.receipt.partition(":")[0]

        def drop() -> None:
            pipe = self._r.pipeline(transaction=True)
            pipe.zrem(self._sched, key)
            pipe.hdel(self._msg, key)
            pipe.hdel(self._rc, key)
            pipe.execute()

        self._guard("ack", drop)

    def _held(self, pipe: Any, message: Message) -> tuple[str, int, float] | None:
        key, _, count = message.receipt.partition(":")
        now = self._now(pipe)
        score = pipe.zscore(self._sched, key)
        rc = pipe.hget(self._rc, key)
        if score is None or rc is None or _text(rc) != count or float(score) <= now:
            return None  # acked, redelivered since, or its visibility already expired: a stale receipt
        return key, int(count), now

    def nack(self, message: Message, *, delay_s: float = 0.0, error: str | None = None) -> None:
        """Release the message for another try after ``delay_s``; its last allowed try goes to the DLQ."""

        def release(pipe: Any) -> None:
            held = self._held(pipe, message)
            if held is None:
                return
            key, rc, now = held
            raw = pipe.hget(self._msg, key)
            pipe.multi()
            if rc >= self.options.max_receives:
                self._dead_letter(pipe, key, _text(raw), rc, error or "released after its last allowed receive")
            else:
                pipe.zadd(self._sched, {key: now + max(delay_s, 0.0)})

        self._guard("nack", self._r.transaction, release, self._sched)

    def extend(self, message: Message, visibility_s: float) -> None:
        """Keep the message invisible for ``visibility_s`` more wall seconds from now."""

        def push(pipe: Any) -> None:
            held = self._held(pipe, message)
            if held is not None:
                pipe.multi()
                pipe.zadd(self._sched, {held[0]: held[2] + visibility_s})

        self._guard("extend", self._r.transaction, push, self._sched)

    def depth(self) -> int:
        """How many messages are visible now."""
        return int(self._guard("depth", lambda: self._r.zcount(self._sched, "-inf", self._now(self._r))))

    def dead_letters(self) -> list[DeadLetter]:
        """The dead-lettered messages, oldest first."""
        out = []
        for item in self._guard("dead_letters", self._r.lrange, self._dlq, 0, -1):
            d = json.loads(_text(item))
            task_id, body = decode(d["raw"])
            out.append(DeadLetter(task_id, body, int(d["receive_count"]), str(d["error"])))
        return out

    def reconnect(self, timeout_s: float = 30.0) -> None:
        """Wait, with back-off, until the server answers again (redis-py then reuses fresh connections)."""
        retry_until(lambda: self._guard("reconnect", self._r.ping), timeout_s, f"Redis at {self.url}")

    def purge(self) -> None:
        """Drop every message, dead letters included."""
        self._guard("purge", self._r.delete, self._sched, self._msg, self._rc, self._dlq)

    def delete(self) -> None:
        """Remove the queue's keys (Redis has no queue object beyond them)."""
        self.purge()

    def close(self) -> None:
        """Close the client if this queue made it (an injected client belongs to the caller)."""
        if self._own:
            self._r.close()
