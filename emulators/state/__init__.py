"""State stores: where ``ctx.state`` (session-scoped) and ``ctx.checkpoint`` (task-scoped) live.

State is externalized: it lives in the control process's store, not in an instance, so it survives an
instance being recycled, as a DynamoDB table or Redis would. An instance receives the session's state
with each invocation and returns it when changed. The embedded default is a SQLite file in the run
directory; ``memory`` keeps it in a dict; ``redis://`` and ``postgresql://`` are shared servers.

Task records (``put_task``/``get_task``/``list_tasks``: status, result, attempts, as the pattern writes them)
live beside the state, so with a durable store a restarted harness still answers for earlier tasks. On a
shared server every run gets its own namespace (a Redis key prefix, a PostgreSQL schema), derived from the
run directory unless given: two runs never mix, and a second harness given the same namespace sees the
first one's tasks.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import re
import sqlite3
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import ConfigError
from ..jsonfast import dumps, loads

__all__ = ["MemoryStateStore", "SQLiteStateStore", "StateStore", "namespace_for", "open_state_store"]


class StateStore(Protocol):
    """Session state and task checkpoints, as JSON values."""

    def get_state(self, session_id: str) -> dict[str, Any]: ...
    def put_state(self, session_id: str, state: dict[str, Any]) -> None: ...
    def get_checkpoints(self, task_id: str) -> dict[str, Any]: ...
    def put_checkpoint(self, task_id: str, key: str, value: Any) -> None: ...
    def put_task(self, task_id: str, record: dict[str, Any]) -> None: ...
    def get_task(self, task_id: str) -> dict[str, Any] | None: ...
    def list_tasks(self, status: str | None = None, limit: int | None = None) -> list[dict[str, Any]]: ...
    def close(self) -> None: ...


def task_row(task_id: str, raw: str) -> dict[str, Any]:
    """A listed task: its record with its id under ``task_id``."""
    return {**loads(raw), "task_id": task_id}


def record_status(record: dict[str, Any]) -> str | None:
    """The record's ``status`` as stored for filtering (None when it has none)."""
    status = record.get("status")
    return None if status is None else str(status)


class MemoryStateStore:
    """A dict in the control process (values copied through JSON, as a real store would)."""

    def __init__(self) -> None:
        self._state: dict[str, str] = {}
        self._checkpoints: dict[str, dict[str, str]] = {}
        self._tasks: dict[str, str] = {}  # insertion-ordered: list_tasks answers in first-put order

    def get_state(self, session_id: str) -> dict[str, Any]:
        """The session's state (empty for a new session)."""
        raw = self._state.get(session_id)
        return {} if raw is None else dict(json.loads(raw))

    def put_state(self, session_id: str, state: dict[str, Any]) -> None:
        """Replace the session's state."""
        self._state[session_id] = json.dumps(state)

    def get_checkpoints(self, task_id: str) -> dict[str, Any]:
        """Every checkpoint saved for the task."""
        return {k: json.loads(v) for k, v in self._checkpoints.get(task_id, {}).items()}

    def put_checkpoint(self, task_id: str, key: str, value: Any) -> None:
        """Save one checkpoint."""
        self._checkpoints.setdefault(task_id, {})[key] = json.dumps(value)

    def put_task(self, task_id: str, record: dict[str, Any]) -> None:
        """Create or replace the task's record."""
        self._tasks[task_id] = dumps(record).decode()

    def get_task(self, task_id: str) -> dict[str, Any] | None:
        """The task's record, or None for a task never put."""
        raw = self._tasks.get(task_id)
        return None if raw is None else dict(loads(raw))

    def list_tasks(self, status: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Task records (with ``task_id``) in first-put order, optionally of one status, at most ``limit``."""
        rows = [task_row(t, raw) for t, raw in self._tasks.items()]
        rows = [r for r in rows if status is None or record_status(r) == status]
        return rows if limit is None else rows[:limit]

    def close(self) -> None:
        """Nothing to release."""


class SQLiteStateStore:
    """A SQLite file: the embedded default, durable across a restart of the harness."""

    def __init__(self, path: str | Path) -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit survives the harness process crashing (what a restart needs) without an
        # fsync per write; only a power loss can drop the last commits.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS state (session TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS checkpoints (task TEXT, key TEXT, value TEXT NOT NULL, "
            "PRIMARY KEY (task, key))"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS tasks (seq INTEGER PRIMARY KEY AUTOINCREMENT, task TEXT UNIQUE NOT NULL, "
            "status TEXT, value TEXT NOT NULL)"
        )
        self._group: tuple[asyncio.AbstractEventLoop, float] | None = None  # see group_commits
        self._due: asyncio.TimerHandle | None = None  # the open window's commit

    def group_commits(self, loop: asyncio.AbstractEventLoop, window_s: float) -> None:
        """Commit the writes of each ``window_s`` together, on ``loop``, instead of one commit per write.

        For a caller on ``loop`` alone (the daemon with its embedded queue): a write opens a transaction
        (reads on this connection see it at once) and a timer commits it ``window_s`` later. A task's three
        writes (queued, running, final) were three commits, about a tenth of a warm task's time on its path;
        now the commit comes after the caller's answer, and one commit serves every write of its window. A
        crash of the harness loses the writes of the last window, as it loses the embedded queue itself.
        """
        self._group = (loop, window_s)

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        if self._group is not None and not self._db.in_transaction:
            self._db.execute("BEGIN")
            loop, window_s = self._group
            self._due = loop.call_later(window_s, self.commit)
        self._db.execute(sql, params)

    def commit(self) -> None:
        """Commit the writes of the current window now (nothing to do outside ``group_commits``)."""
        if self._due is not None:
            self._due.cancel()
            self._due = None
        if self._db.in_transaction:
            self._db.execute("COMMIT")

    def get_state(self, session_id: str) -> dict[str, Any]:
        """The session's state (empty for a new session)."""
        row = self._db.execute("SELECT value FROM state WHERE session = ?", (session_id,)).fetchone()
        return {} if row is None else dict(json.loads(row[0]))

    def put_state(self, session_id: str, state: dict[str, Any]) -> None:
        """Replace the session's state."""
        self._write("INSERT OR REPLACE INTO state VALUES (?, ?)", (session_id, json.dumps(state)))

    def get_checkpoints(self, task_id: str) -> dict[str, Any]:
        """Every checkpoint saved for the task."""
        rows = self._db.execute("SELECT key, value FROM checkpoints WHERE task = ?", (task_id,)).fetchall()
        return {k: json.loads(v) for k, v in rows}

    def put_checkpoint(self, task_id: str, key: str, value: Any) -> None:
        """Save one checkpoint."""
        self._write("INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?)", (task_id, key, json.dumps(value)))

    def put_task(self, task_id: str, record: dict[str, Any]) -> None:
        """Create or replace the task's record (an update keeps its place in the listing)."""
        self._write(
            "INSERT INTO tasks (task, status, value) VALUES (?, ?, ?) "
            "ON CONFLICT (task) DO UPDATE SET status = excluded.status, value = excluded.value",
            (task_id, record_status(record), dumps(record).decode()),
        )

    def get_task(self, task_id: str) -> dict[str, Any] | None:
        """The task's record, or None for a task never put."""
        row = self._db.execute("SELECT value FROM tasks WHERE task = ?", (task_id,)).fetchone()
        return None if row is None else dict(loads(row[0]))

    def list_tasks(self, status: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Task records (with ``task_id``) in first-put order, optionally of one status, at most ``limit``."""
        rows = self._db.execute(
            "SELECT task, value FROM tasks WHERE (? IS NULL OR status = ?) ORDER BY seq LIMIT ?",
            (status, status, -1 if limit is None else limit),
        ).fetchall()
        return [task_row(t, v) for t, v in rows]

    def close(self) -> None:
        """Close the database (committing the writes of a window still open); closing again does nothing more."""
        if self._group is not None:  # only grouped writes can be uncommitted; a second close finds it None
            self.commit()
            self._group = None
        self._db.close()


_NS_UNSAFE = re.compile(r"[^a-z0-9_]+")


def safe_namespace(name: str) -> str:
    """``name`` in the characters a key prefix and a PostgreSQL schema both take: ``[a-z0-9_]``, 56 at most."""
    return (_NS_UNSAFE.sub("_", name.lower()).strip("_") or "default")[:56]


def check_namespace(name: str) -> str:
    """``name`` if it is already safe (see ``safe_namespace``), else a ConfigError saying what would be."""
    if name != safe_namespace(name):
        raise ConfigError(f"namespace {name!r} must be 1-56 of [a-z0-9_]; e.g. {safe_namespace(name)!r}")
    return name


def namespace_for(run_dir: Path) -> str:
    """The default namespace of a run on a shared server: its run directory's name, made safe."""
    return safe_namespace(run_dir.name)


def _backend(module: str, extra: str) -> Any:
    try:
        return importlib.import_module(f"{__name__}.{module}")
    except ImportError as exc:
        raise ConfigError(
            f"this state store needs its client library ({exc.name}); "
            f"install it with: pip install 'agent-deploy-harness[{extra}]'"
        ) from exc


def open_state_store(url: str | None, run_dir: Path, *, namespace: str | None = None, client: Any = None,
                     connect_timeout_s: float = 3.0) -> StateStore:
    """A store from a URL: None or ``sqlite://`` (a file in the run dir), ``sqlite:///path``, ``memory://``,
    ``redis://host:port/db`` or ``postgresql://user@host:port/db``.

    On the servers, ``namespace`` (or a ``?namespace=`` URL parameter) names the run's key prefix or schema;
    by default it is derived from ``run_dir``. ``client`` injects a ready redis-py (or fakeredis) client. A
    server that cannot be reached raises ``BackendUnavailableError`` within about ``connect_timeout_s``.
    """
    if url is None or url in ("sqlite://", "sqlite:"):
        return SQLiteStateStore(run_dir / "state.sqlite3")
    if url.startswith("sqlite:///"):
        return SQLiteStateStore(url[len("sqlite://"):])
    if url in ("memory://", "memory"):
        return MemoryStateStore()
    parts = urlsplit(url)
    if parts.scheme in ("redis", "rediss", "postgresql", "postgres") and url.startswith(f"{parts.scheme}://"):
        query = parse_qsl(parts.query)
        given = [v for k, v in query if k == "namespace"]
        ns = safe_namespace(namespace or (given[-1] if given else None) or namespace_for(run_dir))
        # Both clients turn unknown query parameters into connection options, so ours must go.
        bare = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in query if k != "namespace"])))
        if parts.scheme.startswith("redis"):
            mod = _backend("redis_store", "redis")
            return mod.RedisStateStore(bare, ns, client=client,  # type: ignore[no-any-return]
                                       connect_timeout_s=connect_timeout_s)
        mod = _backend("postgres_store", "postgres")
        return mod.PostgresStateStore(bare, ns, connect_timeout_s=connect_timeout_s)  # type: ignore[no-any-return]
    raise ConfigError(
        f"unsupported state store URL {url!r}; expected memory://, sqlite://, sqlite:///path/to/file, "
        f"redis://host:port/db or postgresql://user@host:port/db"
    )
