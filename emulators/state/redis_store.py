"""The Redis state store (``redis://host:port/db``): session state, checkpoints and task records.

Keys, all under ``adh:<namespace>:``: ``state`` (HASH session -> JSON), ``cp:<task>`` (HASH key -> JSON),
``tasks`` (HASH task -> JSON record) and ``task_order`` (ZSET task -> sequence from the ``task_seq``
counter, set only on the first put, so a listing keeps first-put order across updates and processes).
Durability is the server's (RDB/AOF); the store adds nothing on top.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from ..queues.base import redact
from ..queues.redis_queue import connect_redis, redis_errors
from . import check_namespace, record_status, task_row

__all__ = ["RedisStateStore"]


class RedisStateStore:
    """State, checkpoints and task records in Redis, under one namespace's key prefix."""

    def __init__(self, url: str, namespace: str, *, client: redis.Redis | None = None,
                 connect_timeout_s: float = 3.0) -> None:
        self.url = redact(url)
        self.namespace = check_namespace(namespace)
        self._own = client is None
        self._r = client if client is not None else connect_redis(url, connect_timeout_s)
        self._p = f"adh:{namespace}:"
        self._call("open", self._r.ping)

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with redis_errors(self.url, f"state store {self.namespace!r}, {what}"):
            return fn(*args, **kwargs)

    def get_state(self, session_id: str) -> dict[str, Any]:
        """The session's state (empty for a new session)."""
        raw = self._call("get_state", self._r.hget, self._p + "state", session_id)
        return {} if raw is None else dict(json.loads(raw))

    def put_state(self, session_id: str, state: dict[str, Any]) -> None:
        """Replace the session's state."""
        self._call("put_state", self._r.hset, self._p + "state", session_id, json.dumps(state))

    def get_checkpoints(self, task_id: str) -> dict[str, Any]:
        """Every checkpoint saved for the task."""
        raw = self._call("get_checkpoints", self._r.hgetall, f"{self._p}cp:{task_id}")
        return {_text(k): json.loads(v) for k, v in raw.items()}

    def put_checkpoint(self, task_id: str, key: str, value: Any) -> None:
        """Save one checkpoint."""
        self._call("put_checkpoint", self._r.hset, f"{self._p}cp:{task_id}", key, json.dumps(value))

    def put_task(self, task_id: str, record: dict[str, Any]) -> None:
        """Create or replace the task's record (an update keeps its place in the listing)."""
        raw = json.dumps(record)

        def put() -> None:
            order = self._p + "task_order"
            if self._r.zscore(order, task_id) is None:
                seq = self._r.incr(self._p + "task_seq")
                self._r.zadd(order, {task_id: float(seq)}, nx=True)  # nx: a racing first put keeps its place
            self._r.hset(self._p + "tasks", task_id, raw)

        self._call("put_task", put)

    def get_task(self, task_id: str) -> dict[str, Any] | None:
        """The task's record, or None for a task never put."""
        raw = self._call("get_task", self._r.hget, self._p + "tasks", task_id)
        return None if raw is None else dict(json.loads(raw))

    def list_tasks(self, status: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Task records (with ``task_id``) in first-put order, optionally of one status, at most ``limit``."""

        def rows() -> list[dict[str, Any]]:
            ids = [_text(t) for t in self._r.zrange(self._p + "task_order", 0, -1)]
            if not ids:
                return []
            raws = self._r.hmget(self._p + "tasks", ids)
            return [task_row(t, _text(raw)) for t, raw in zip(ids, raws, strict=True) if raw is not None]

        out = [r for r in self._call("list_tasks", rows) if status is None or record_status(r) == status]
        return out if limit is None else out[:limit]

    def drop(self) -> None:
        """Delete every key of this namespace (cleanup of a finished run)."""

        def drop_all() -> None:
            keys = list(self._r.scan_iter(match=self._p + "*", count=500))
            for i in range(0, len(keys), 500):
                self._r.delete(*keys[i:i + 500])

        self._call("drop", drop_all)

    def close(self) -> None:
        """Close the client if this store made it (an injected client belongs to the caller)."""
        if self._own:
            self._r.close()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
