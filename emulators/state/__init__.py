"""State stores: where ``ctx.state`` (session-scoped) and ``ctx.checkpoint`` (task-scoped) live.

State is externalized: it lives in the control process's store, not in an instance, so it survives an
instance being recycled, as a DynamoDB table or Redis would. An instance receives the session's state
with each invocation and returns it when changed. The embedded default is a SQLite file in the run
directory; ``memory`` keeps it in a dict. Redis and PostgreSQL stores come with the daemon pattern.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, Protocol

from ..errors import ConfigError

__all__ = ["MemoryStateStore", "SQLiteStateStore", "StateStore", "open_state_store"]


class StateStore(Protocol):
    """Session state and task checkpoints, as JSON values."""

    def get_state(self, session_id: str) -> dict[str, Any]: ...
    def put_state(self, session_id: str, state: dict[str, Any]) -> None: ...
    def get_checkpoints(self, task_id: str) -> dict[str, Any]: ...
    def put_checkpoint(self, task_id: str, key: str, value: Any) -> None: ...
    def close(self) -> None: ...


class MemoryStateStore:
    """A dict in the control process (values copied through JSON, as a real store would)."""

    def __init__(self) -> None:
        self._state: dict[str, str] = {}
        self._checkpoints: dict[str, dict[str, str]] = {}

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

    def close(self) -> None:
        """Nothing to release."""


class SQLiteStateStore:
    """A SQLite file: the embedded default, durable across a restart of the harness."""

    def __init__(self, path: str | Path) -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS state (session TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS checkpoints (task TEXT, key TEXT, value TEXT NOT NULL, "
            "PRIMARY KEY (task, key))"
        )

    def get_state(self, session_id: str) -> dict[str, Any]:
        """The session's state (empty for a new session)."""
        row = self._db.execute("SELECT value FROM state WHERE session = ?", (session_id,)).fetchone()
        return {} if row is None else dict(json.loads(row[0]))

    def put_state(self, session_id: str, state: dict[str, Any]) -> None:
        """Replace the session's state."""
        self._db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (session_id, json.dumps(state)))

    def get_checkpoints(self, task_id: str) -> dict[str, Any]:
        """Every checkpoint saved for the task."""
        rows = self._db.execute("SELECT key, value FROM checkpoints WHERE task = ?", (task_id,)).fetchall()
        return {k: json.loads(v) for k, v in rows}

    def put_checkpoint(self, task_id: str, key: str, value: Any) -> None:
        """Save one checkpoint."""
        self._db.execute("INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?)", (task_id, key, json.dumps(value)))

    def close(self) -> None:
        """Close the database."""
        self._db.close()


def open_state_store(url: str | None, run_dir: Path) -> StateStore:
    """A store from a URL: None or ``sqlite://`` (a file in the run dir), ``sqlite:///path``, ``memory://``."""
    if url is None or url in ("sqlite://", "sqlite:"):
        return SQLiteStateStore(run_dir / "state.sqlite3")
    if url.startswith("sqlite:///"):
        return SQLiteStateStore(url[len("sqlite://"):])
    if url in ("memory://", "memory"):
        return MemoryStateStore()
    raise ConfigError(
        f"unsupported state store URL {url!r}; expected memory://, sqlite:// or sqlite:///path/to/file "
        f"(redis:// and postgresql:// come with the daemon pattern)"
    )
