"""The PostgreSQL memory store: pgvector where the server has it, plain PostgreSQL everywhere else.

Tables ``memory`` and ``memory_meta`` in the schema ``adh_<namespace>`` (the state store's schema for the
same namespace: one ``DROP SCHEMA`` removes a run). Modes:

- ``pgvector``: ``vec vector(D)`` with an HNSW index on cosine distance (``vector_cosine_ops``); a search is
  ``ORDER BY vec <=> query``, approximate as HNSW is (exact on the small tables a test makes);
- ``plain``: ``vec real[]``, scanned exactly by the server (the dot product of unit vectors, in float8).

``auto`` (the default) uses pgvector if ``CREATE EXTENSION IF NOT EXISTS vector`` succeeds (the package is
installed and the user may create it), else plain; a schema already made in one mode stays in it. Metadata
is ``jsonb``; a filter is containment of scalar values (``@>``), which for scalars is equality.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from ..errors import MemoryStoreError
from ..queues.base import redact
from ..state import check_namespace
from ..state.pgconn import PgConnection
from . import Hit, Item, check_filter, check_space, normalized

__all__ = ["PostgresMemory"]


def _literal(vector: Sequence[float]) -> str:
    """A vector as pgvector's text form, ``[0.1,0.2,...]`` (repr keeps every digit of the float)."""
    return "[" + ",".join(repr(float(v)) for v in vector) + "]"


class PostgresMemory:
    """Memories in PostgreSQL (see the module docstring for the modes)."""

    def __init__(self, url: str, namespace: str, dimensions: int, *, mode: str = "auto",
                 connect_timeout_s: float = 3.0) -> None:
        self._dsn = url
        self.url = redact(url)
        self._pg = PgConnection(url, self.url, f"memory {namespace!r}", connect_timeout_s=connect_timeout_s)
        self.namespace = check_namespace(namespace)
        self.schema = f"adh_{namespace}"
        self.dimensions = dimensions
        self.mode = "plain"
        self.unavailable_reason: str | None = None  # why pgvector is not in use, when it is not
        self.share_url = ""
        self._pg.connect()
        self._create(mode)

    def _q(self, text: str) -> sql.Composed:
        return sql.SQL(text).format(s=sql.Identifier(self.schema))

    def _create(self, wanted: str) -> None:
        with contextlib.suppress(psycopg.errors.UniqueViolation):  # two processes creating it at once
            self._run(self._q("CREATE SCHEMA IF NOT EXISTS {s}"))
        self._run(self._q("CREATE TABLE IF NOT EXISTS {s}.memory_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"))
        existing = dict(self._run(self._q("SELECT key, value FROM {s}.memory_meta"), fetch=True))
        mode = existing.get("mode") or self._pick(wanted)
        if wanted != "auto" and mode != wanted:
            raise MemoryStoreError(f"the memory in schema {self.schema} is in {mode} mode, not {wanted}; "
                                   f"drop the schema or use another namespace")
        if "dimensions" in existing and int(existing["dimensions"]) != self.dimensions:
            raise MemoryStoreError(
                f"the memory in schema {self.schema} holds {existing['dimensions']}-dimension vectors, not "
                f"{self.dimensions}; open it with dimensions={existing['dimensions']} or use another namespace")
        column = f"vector({self.dimensions})" if mode == "pgvector" else "real[]"
        with contextlib.suppress(psycopg.errors.UniqueViolation):
            self._run(self._q(
                "CREATE TABLE IF NOT EXISTS {s}.memory (seq BIGSERIAL, ns TEXT NOT NULL, id TEXT NOT NULL, "
                "text TEXT NOT NULL, metadata JSONB NOT NULL, vec " + column + " NOT NULL, PRIMARY KEY (ns, id))"))
            if mode == "pgvector":
                self._run(self._q("CREATE INDEX IF NOT EXISTS memory_hnsw ON {s}.memory "
                                  "USING hnsw (vec vector_cosine_ops)"))
        for key, value in (("mode", mode), ("dimensions", str(self.dimensions))):
            self._run(self._q("INSERT INTO {s}.memory_meta VALUES (%s, %s) ON CONFLICT (key) DO NOTHING"),
                      (key, value))
        self.mode = "pgvector" if mode == "pgvector" else "postgres-plain"
        # Instances reopen it in the mode chosen here: none of them tries CREATE EXTENSION again.
        parts = urlsplit(self._dsn)
        query = urlencode([*parse_qsl(parts.query), ("namespace", self.namespace), ("mode", mode)])
        self.share_url = urlunsplit(parts._replace(query=query))

    def _pick(self, wanted: str) -> str:
        """pgvector if the extension can be had, else plain (``unavailable_reason`` says why)."""
        if wanted == "plain":
            self.unavailable_reason = "plain mode asked for"
            return "plain"
        try:
            self._run(sql.SQL("CREATE EXTENSION IF NOT EXISTS vector"))
            return "pgvector"
        except (psycopg.errors.FeatureNotSupported, psycopg.errors.UndefinedFile,
                psycopg.errors.InsufficientPrivilege) as exc:
            self.unavailable_reason = " ".join(str(exc).split())
            if wanted == "pgvector":
                raise MemoryStoreError(f"pgvector is not available on {self.url}: {self.unavailable_reason}; "
                                       f"install the extension or use ?mode=plain") from exc
            return "plain"

    def _run(self, query: sql.SQL | sql.Composed, params: Sequence[Any] = (), *, fetch: bool = False) -> list[Any]:
        return self._pg.run(query, params, fetch=fetch)

    def _vec(self, vector: Sequence[float]) -> Any:
        unit = normalized(vector, self.dimensions)
        return _literal(unit) if self.mode == "pgvector" else unit

    def _cast(self) -> str:
        return "%s::vector" if self.mode == "pgvector" else "%s::real[]"

    def add(self, namespace: str, items: Sequence[Item]) -> None:
        """Store the items (an existing id in the namespace is replaced, keeping its place)."""
        check_space(namespace)
        query = self._q("INSERT INTO {s}.memory (ns, id, text, metadata, vec) VALUES (%s, %s, %s, %s::jsonb, "
                        + self._cast() + ") ON CONFLICT (ns, id) DO UPDATE SET text = excluded.text, "
                        "metadata = excluded.metadata, vec = excluded.vec")
        rows = [(namespace, it.id, it.text, json.dumps(dict(it.metadata)), self._vec(it.vector)) for it in items]
        with self._pg.lock:
            conn = self._pg.connection()
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(query, rows)

    def search(self, namespace: str, vector: Sequence[float], k: int,
               filter: Mapping[str, Any] | None = None) -> list[Hit]:
        """The ``k`` memories of the namespace nearest ``vector`` (best first; ties in insertion order)."""
        check_space(namespace)
        flt = json.dumps(check_filter(filter))
        q = self._vec(vector)
        if self.mode == "pgvector":
            query = self._q("SELECT id, text, metadata, 1 - (vec <=> %s::vector) AS score FROM {s}.memory "
                            "WHERE ns = %s AND metadata @> %s::jsonb ORDER BY vec <=> %s::vector, seq LIMIT %s")
            rows = self._run(query, (q, namespace, flt, q, max(0, k)), fetch=True)
        else:
            query = self._q("SELECT id, text, metadata, (SELECT sum(a::float8 * b::float8) FROM unnest(vec, "
                            "%s::real[]) AS t(a, b)) AS score FROM {s}.memory WHERE ns = %s AND metadata @> %s::jsonb "
                            "ORDER BY score DESC, seq LIMIT %s")
            rows = self._run(query, (q, namespace, flt, max(0, k)), fetch=True)
        return [Hit(i, t, dict(m), float(s)) for i, t, m, s in rows]

    def delete(self, namespace: str, ids: Sequence[str] | None = None,
               filter: Mapping[str, Any] | None = None) -> int:
        """Delete the namespace's memories with these ids and/or matching the filter (neither: all of them)."""
        check_space(namespace)
        flt = json.dumps(check_filter(filter))
        if ids is None:
            return int(self._run(self._q("DELETE FROM {s}.memory WHERE ns = %s AND metadata @> %s::jsonb"),
                                 (namespace, flt))[0])
        return int(self._run(self._q("DELETE FROM {s}.memory WHERE ns = %s AND metadata @> %s::jsonb "
                                     "AND id = ANY(%s)"), (namespace, flt, list(ids)))[0])

    def count(self, namespace: str | None = None) -> int:
        """Memories stored, in one namespace or in all."""
        if namespace is None:
            return int(self._run(self._q("SELECT count(*) FROM {s}.memory"), fetch=True)[0][0])
        return int(self._run(self._q("SELECT count(*) FROM {s}.memory WHERE ns = %s"), (namespace,), fetch=True)[0][0])

    def drop(self) -> None:
        """Drop the memory tables (the schema stays: the state store may share it)."""
        self._run(self._q("DROP TABLE IF EXISTS {s}.memory, {s}.memory_meta"))

    def close(self) -> None:
        """Close the connection."""
        self._pg.close()
