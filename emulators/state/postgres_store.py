"""The PostgreSQL state store (``postgresql://user@host:port/db``) through psycopg 3.

One schema per namespace, ``adh_<namespace>``, with the same three tables as the SQLite store (``state``,
``checkpoints``, ``tasks``), so dropping a run is one ``DROP SCHEMA ... CASCADE`` and two runs can never
read each other's rows. Values are JSON text, not ``jsonb``, so they round-trip exactly as in the other
stores. The connection is in autocommit mode: every write is one upsert, durable when it returns.

A connection lost mid-run (server restart) is reopened once and the statement retried; that is safe
because every statement is an idempotent upsert or a read. If the server stays down the call raises
``BackendUnavailableError``.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import psycopg
from psycopg import sql

from ..queues.base import redact
from . import check_namespace, record_status, task_row
from .pgconn import PgConnection

__all__ = ["PostgresStateStore"]


class PostgresStateStore:
    """State, checkpoints and task records in PostgreSQL, in one schema per namespace."""

    def __init__(self, url: str, namespace: str, *, connect_timeout_s: float = 3.0) -> None:
        self.url = redact(url)
        self.namespace = check_namespace(namespace)
        self.schema = f"adh_{namespace}"
        self._pg = PgConnection(url, self.url, f"state store {namespace!r}", connect_timeout_s=connect_timeout_s)
        self._pg.connect()
        self._create()

    def _create(self) -> None:
        s = sql.Identifier(self.schema)
        statements = [
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(s),
            sql.SQL("CREATE TABLE IF NOT EXISTS {}.state (session TEXT PRIMARY KEY, value TEXT NOT NULL)").format(s),
            sql.SQL("CREATE TABLE IF NOT EXISTS {}.checkpoints (task TEXT, key TEXT, value TEXT NOT NULL, "
                    "PRIMARY KEY (task, key))").format(s),
            sql.SQL("CREATE TABLE IF NOT EXISTS {}.tasks (seq BIGSERIAL, task TEXT PRIMARY KEY, status TEXT, "
                    "value TEXT NOT NULL)").format(s),
        ]
        for stmt in statements:
            # Two processes creating the same namespace at once: IF NOT EXISTS is not atomic in PostgreSQL's
            # catalogs, so the loser gets a unique violation; the other one made it, which is what we wanted.
            with contextlib.suppress(psycopg.errors.UniqueViolation):
                self._run(stmt)

    def _run(self, query: sql.Composed, params: tuple[Any, ...] = (), *, fetch: bool = False) -> list[Any]:
        return self._pg.run(query, params, fetch=fetch)

    def _q(self, text: str) -> sql.Composed:
        return sql.SQL(text).format(s=sql.Identifier(self.schema))

    def get_state(self, session_id: str) -> dict[str, Any]:
        """The session's state (empty for a new session)."""
        rows = self._run(self._q("SELECT value FROM {s}.state WHERE session = %s"), (session_id,), fetch=True)
        return {} if not rows else dict(json.loads(rows[0][0]))

    def put_state(self, session_id: str, state: dict[str, Any]) -> None:
        """Replace the session's state."""
        self._run(self._q("INSERT INTO {s}.state VALUES (%s, %s) "
                          "ON CONFLICT (session) DO UPDATE SET value = excluded.value"),
                  (session_id, json.dumps(state)))

    def get_checkpoints(self, task_id: str) -> dict[str, Any]:
        """Every checkpoint saved for the task."""
        rows = self._run(self._q("SELECT key, value FROM {s}.checkpoints WHERE task = %s"), (task_id,), fetch=True)
        return {k: json.loads(v) for k, v in rows}

    def put_checkpoint(self, task_id: str, key: str, value: Any) -> None:
        """Save one checkpoint."""
        self._run(self._q("INSERT INTO {s}.checkpoints VALUES (%s, %s, %s) "
                          "ON CONFLICT (task, key) DO UPDATE SET value = excluded.value"),
                  (task_id, key, json.dumps(value)))

    def put_task(self, task_id: str, record: dict[str, Any]) -> None:
        """Create or replace the task's record (an update keeps its place in the listing)."""
        self._run(self._q("INSERT INTO {s}.tasks (task, status, value) VALUES (%s, %s, %s) "
                          "ON CONFLICT (task) DO UPDATE SET status = excluded.status, value = excluded.value"),
                  (task_id, record_status(record), json.dumps(record)))

    def get_task(self, task_id: str) -> dict[str, Any] | None:
        """The task's record, or None for a task never put."""
        rows = self._run(self._q("SELECT value FROM {s}.tasks WHERE task = %s"), (task_id,), fetch=True)
        return None if not rows else dict(json.loads(rows[0][0]))

    def list_tasks(self, status: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Task records (with ``task_id``) in first-put order, optionally of one status, at most ``limit``."""
        rows = self._run(
            self._q("SELECT task, value FROM {s}.tasks WHERE (%s::text IS NULL OR status = %s) "
                    "ORDER BY seq LIMIT %s"),
            (status, status, limit), fetch=True,
        )
        return [task_row(t, v) for t, v in rows]

    def drop(self) -> None:
        """Drop this namespace's schema and everything in it (cleanup of a finished run)."""
        self._run(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema)))

    def close(self) -> None:
        """Close the connection."""
        self._pg.close()
