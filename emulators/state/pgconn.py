"""One autocommit psycopg connection shared by the PostgreSQL stores (state, long-term memory).

A connection lost mid-run (a server restart) is reopened once and the statement retried. That is safe
because every statement the stores send through ``run`` is an idempotent upsert, delete or read. If the
server stays down, the call raises ``BackendUnavailableError`` naming the store and what to do.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from ..errors import BackendUnavailableError

__all__ = ["PgConnection"]


def _oneline(exc: BaseException) -> str:
    return " ".join(str(exc).split())


class PgConnection:
    """The connection of one store: ``what`` names the store in errors (e.g. "state store 'run1'")."""

    def __init__(self, dsn: str, url: str, what: str, *, connect_timeout_s: float = 3.0) -> None:
        self._dsn, self.url, self.what = dsn, url, what
        self._timeout = max(2, math.ceil(connect_timeout_s))  # libpq counts whole seconds, at least 2
        self.lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None

    def connect(self) -> None:
        """Open the connection; BackendUnavailableError when the server cannot be reached."""
        try:
            self._conn = psycopg.connect(self._dsn, connect_timeout=self._timeout, autocommit=True)
        except psycopg.OperationalError as exc:
            raise BackendUnavailableError(
                f"cannot reach PostgreSQL at {self.url} ({self.what}): {_oneline(exc)}; start the server or fix "
                f"the URL (user, host, port, database), then retry") from exc

    def connection(self) -> psycopg.Connection[Any]:
        """The open connection, reopened if it was closed (call with ``lock`` held)."""
        if self._conn is None or self._conn.closed:
            self.connect()
        assert self._conn is not None
        return self._conn

    def run(self, query: sql.SQL | sql.Composed, params: Sequence[Any] = (), *, fetch: bool = False) -> list[Any]:
        """Execute one statement: its rows when ``fetch``, else ``[rowcount]``; retried once on a lost link."""
        with self.lock:
            for attempt in (1, 2):
                try:
                    cur = self.connection().execute(query, params)
                    return cur.fetchall() if fetch else [cur.rowcount]
                except psycopg.OperationalError as exc:
                    if attempt == 2:
                        raise BackendUnavailableError(
                            f"lost PostgreSQL at {self.url} ({self.what}): {_oneline(exc)}; restart the server, "
                            f"then retry") from exc
                    self.close_unlocked()
        raise AssertionError("unreachable")

    def close_unlocked(self) -> None:
        """Close the connection (the caller holds ``lock``)."""
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def close(self) -> None:
        """Close the connection (safe to call twice)."""
        with self.lock:
            self.close_unlocked()
