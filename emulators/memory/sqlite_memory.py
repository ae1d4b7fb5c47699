"""The embedded memory store: one SQLite table, searched exactly (sqlite-vec in C where it loads, else Python).

Vectors are float32 blobs (4 bytes a dimension), the format sqlite-vec reads natively. A search scans the
namespace's rows (the ``(ns, id)`` index keeps other users' rows out of it) with the metadata filter in
SQL, and keeps the ``k`` best by cosine similarity, ties in insertion order. Exact either way (no index to
miss a neighbour); two engines compute it:

- ``sqlite-vec``: sqlite-vec's ``vec_distance_cosine`` in the query, when ``apsw`` and ``sqlite-vec`` are
  installed (the ``memory`` extra). The stdlib ``sqlite3`` here is built without
  ``enable_load_extension``, so the search runs on an ``apsw`` connection to the same file; writes stay on
  ``sqlite3``. 16 ms at 10k vectors, 117 ms at 100k (256 dimensions);
- ``sqlite-scan``: a dot product per row in pure Python (``sum(map(mul, ...))``), needing nothing:
  312 ms at 10k, 3.3 s at 100k; fine for the per-user namespaces an agent searches (hundreds of rows).

``?search=python`` on the URL forces the second. ``benchmarks/vector_search.py`` measures both and sqlite-vec's
``vec0`` table; ``docs/performance.md`` has the figures and the reasons for this choice.

Several instance processes open the same file: WAL lets readers run beside one writer, and a busy
timeout makes concurrent writers wait for each other instead of failing.
"""

from __future__ import annotations

import array
import heapq
import json
import sqlite3
import sys
import threading
from collections.abc import Mapping, Sequence
from operator import mul
from pathlib import Path
from typing import Any

from ..errors import MemoryStoreError
from . import Hit, Item, check_filter, check_space, normalized

__all__ = ["SQLiteMemory", "pack", "unpack"]


def pack(vector: Sequence[float]) -> bytes:
    """A vector as little-endian float32 bytes."""
    a = array.array("f", vector)
    if sys.byteorder != "little":
        a.byteswap()
    return a.tobytes()


def unpack(blob: bytes) -> array.array[float]:
    """The float32 vector stored by ``pack``."""
    a = array.array("f")
    a.frombytes(blob)
    if sys.byteorder != "little":
        a.byteswap()
    return a


def _json_types(value: Any) -> tuple[str, ...]:
    """SQLite's ``json_type`` names a filter value may match (numbers match integer and real alike)."""
    if isinstance(value, bool):
        return ("true",) if value else ("false",)
    if isinstance(value, int | float):
        return ("integer", "real")
    return ("text",)


def _where(namespace: str, filter: Mapping[str, Any]) -> tuple[str, list[Any]]:
    sql, params = ["ns = ?"], [namespace]
    for key, value in filter.items():
        path = f'$."{key}"'
        types = _json_types(value)
        sql.append(f"json_type(metadata, ?) IN ({', '.join('?' * len(types))})")
        params += [path, *types]
        if not isinstance(value, bool):  # a boolean is decided by its json_type alone
            sql.append("json_extract(metadata, ?) = ?")
            params += [path, value]
    return " AND ".join(sql), params


def _vec_connection(path: Path) -> Any:
    """An apsw connection to ``path`` with sqlite-vec loaded, or None where either is not installed."""
    try:
        import apsw
        import sqlite_vec  # type: ignore[import-untyped]
    except ImportError:
        return None
    db = apsw.Connection(str(path))
    db.enable_load_extension(True)
    db.load_extension(sqlite_vec.loadable_path())
    db.enable_load_extension(False)
    db.set_busy_timeout(30_000)
    return db


class SQLiteMemory:
    """Memories in a SQLite file, searched exactly."""

    def __init__(self, path: str | Path, dimensions: int, *, search: str = "auto") -> None:
        if search not in ("auto", "python", "sqlite-vec"):
            raise MemoryStoreError(f"SQLite memory search {search!r}; expected auto, python or sqlite-vec")
        self.path = Path(path).resolve()
        self.dimensions = dimensions
        self.share_url = f"sqlite://{self.path}" + ("" if search == "auto" else f"?search={search}")
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # as the state store: survives a process crash
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS memory (seq INTEGER PRIMARY KEY AUTOINCREMENT, ns TEXT NOT NULL, "
            "id TEXT NOT NULL, text TEXT NOT NULL, metadata TEXT NOT NULL, vec BLOB NOT NULL, UNIQUE (ns, id))")
        self._db.execute("CREATE TABLE IF NOT EXISTS memory_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._db.execute("INSERT OR IGNORE INTO memory_meta VALUES ('dimensions', ?)", (str(dimensions),))
        stored = int(self._db.execute("SELECT value FROM memory_meta WHERE key = 'dimensions'").fetchone()[0])
        if stored != dimensions:
            self._db.close()
            raise MemoryStoreError(
                f"the memory at {self.path} holds {stored}-dimension vectors, not {dimensions}; open it with "
                f"dimensions={stored}, or use another file for the new embedding size")
        self._vec = None if search == "python" else _vec_connection(self.path)
        if self._vec is None and search == "sqlite-vec":
            self._db.close()
            raise MemoryStoreError("sqlite-vec search needs apsw and sqlite-vec: pip install "
                                   "'agent-deploy-harness[memory]' (or use ?search=python)")
        self.mode = "sqlite-vec" if self._vec is not None else "sqlite-scan"

    def add(self, namespace: str, items: Sequence[Item]) -> None:
        """Store the items (an existing id in the namespace is replaced, keeping its place)."""
        check_space(namespace)
        rows = [(namespace, it.id, it.text, json.dumps(dict(it.metadata)), pack(normalized(it.vector, self.dimensions)))
                for it in items]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO memory (ns, id, text, metadata, vec) VALUES (?, ?, ?, ?, ?) ON CONFLICT (ns, id) "
                    "DO UPDATE SET text = excluded.text, metadata = excluded.metadata, vec = excluded.vec", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def search(self, namespace: str, vector: Sequence[float], k: int,
               filter: Mapping[str, Any] | None = None) -> list[Hit]:
        """The ``k`` memories of the namespace nearest ``vector`` (best first; ties in insertion order)."""
        check_space(namespace)
        query = unpack(pack(normalized(vector, self.dimensions)))  # float32, as the stored vectors
        where, params = _where(namespace, check_filter(filter))
        if self._vec is not None:
            with self._lock:
                rows = list(self._vec.execute(
                    f"SELECT id, text, metadata, 1.0 - vec_distance_cosine(vec, ?) AS score FROM memory "
                    f"WHERE {where} ORDER BY score DESC, seq LIMIT ?", [pack(query), *params, max(0, k)]))
            return [Hit(i, t, json.loads(m), float(sc)) for i, t, m, sc in rows]
        with self._lock:
            rows = self._db.execute(f"SELECT seq, vec FROM memory WHERE {where}", params).fetchall()
        # sum(map(mul, ...)) is the fastest numpy-free dot product here (a generator is ~2x slower).
        best = heapq.nlargest(max(0, k), ((sum(map(mul, query, unpack(blob))), -seq) for seq, blob in rows))
        if not best:
            return []
        seqs = [-s for _, s in best]
        with self._lock:
            found = {seq: (id_, text, meta) for seq, id_, text, meta in self._db.execute(
                f"SELECT seq, id, text, metadata FROM memory WHERE seq IN ({', '.join('?' * len(seqs))})", seqs)}
        return [Hit(found[-s][0], found[-s][1], json.loads(found[-s][2]), score) for score, s in best if -s in found]

    def delete(self, namespace: str, ids: Sequence[str] | None = None,
               filter: Mapping[str, Any] | None = None) -> int:
        """Delete the namespace's memories with these ids and/or matching the filter (neither: all of them)."""
        check_space(namespace)
        where, params = _where(namespace, check_filter(filter))
        if ids is not None:
            where += f" AND id IN ({', '.join('?' * len(ids))})" if ids else " AND 0"
            params += list(ids)
        with self._lock:
            return int(self._db.execute(f"DELETE FROM memory WHERE {where}", params).rowcount)

    def count(self, namespace: str | None = None) -> int:
        """Memories stored, in one namespace or in all."""
        with self._lock:
            if namespace is None:
                return int(self._db.execute("SELECT count(*) FROM memory").fetchone()[0])
            return int(self._db.execute("SELECT count(*) FROM memory WHERE ns = ?", (namespace,)).fetchone()[0])

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
            if self._vec is not None:
                self._vec.close()
