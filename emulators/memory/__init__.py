"""Long-term memory stores: where ``ctx.memory`` keeps texts, their vectors and metadata, per namespace.

Like ``ctx.state`` the memory lives outside the instances, so it survives every recycle; unlike the state
it is searched *during* an invocation, so each instance talks to the store itself (as a deployed function
talks to its vector database), given the store's URL in ``HARNESS_MEMORY_URL``. The control process opens
the same URL first: it creates the tables, picks the mode and reports it.

Backends, picked by URL as the state stores are:

- ``sqlite://`` (the default: ``memory.sqlite3`` in the run directory) or ``sqlite:///path``: a SQLite
  table searched exactly, by sqlite-vec where it is installed, else in pure Python (``?search=python``
  forces that; ``sqlite_memory.py`` and ``docs/performance.md`` have the figures);
- ``postgresql://user@host:port/db``: the ``pgvector`` extension where the server has it (a ``vector``
  column with an HNSW index, cosine distance), else plain PostgreSQL (a ``real[]`` column scanned exactly
  by the server). ``?mode=pgvector|plain`` forces one; the store's ``mode`` says which is in use.

Every backend answers the same contract: vectors are normalized on the way in, the score is the cosine
similarity, hits come best first and ties in insertion order; a filter is equality on top-level metadata
keys with scalar values (string, number, boolean); adding an existing id replaces it.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import ConfigError, MemoryStoreError
from ..state import namespace_for, safe_namespace

__all__ = ["DEFAULT_DIMENSIONS", "DEFAULT_MODEL", "Hit", "Item", "MemoryStore", "check_filter", "check_space",
           "normalized", "open_memory_store"]

DEFAULT_MODEL = "text-embedding-3-small"
DEFAULT_DIMENSIONS = 256  # text-embedding-3-* shortened (the API's ``dimensions``): 1 KB a row, not 6 KB
_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_SPACE = re.compile(r"^[^\x00]{1,200}$")


@dataclass(frozen=True)
class Item:
    """One memory to store: its id, text, vector and metadata."""

    id: str
    text: str
    vector: Sequence[float]
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    """One search result: the stored memory and its cosine similarity to the query (1 = same direction)."""

    id: str
    text: str
    metadata: dict[str, Any]
    score: float

    def to_json(self) -> dict[str, Any]:
        """JSON form (what ``ctx.memory.search`` returns)."""
        return {"id": self.id, "text": self.text, "metadata": self.metadata, "score": self.score}


class MemoryStore(Protocol):
    """Texts with vectors, per namespace (a user, a customer, an entity)."""

    mode: str  # "sqlite-vec" | "sqlite-scan" | "postgres-plain" | "pgvector"
    dimensions: int
    share_url: str  # the URL that opens this same store from another process (an instance)

    def add(self, namespace: str, items: Sequence[Item]) -> None: ...
    def search(self, namespace: str, vector: Sequence[float], k: int,
               filter: Mapping[str, Any] | None = None) -> list[Hit]: ...
    def delete(self, namespace: str, ids: Sequence[str] | None = None,
               filter: Mapping[str, Any] | None = None) -> int: ...
    def count(self, namespace: str | None = None) -> int: ...
    def close(self) -> None: ...


def normalized(vector: Sequence[float], dimensions: int) -> list[float]:
    """``vector`` scaled to unit length; MemoryStoreError if its size is not ``dimensions`` or it is zero."""
    if len(vector) != dimensions:
        raise MemoryStoreError(
            f"a vector of {len(vector)} dimensions does not fit this memory of {dimensions}; embed with "
            f"dimensions={dimensions} (or open the memory with the embedding size you use)")
    norm = math.sqrt(sum(float(v) * float(v) for v in vector))
    if not norm > 0.0 or math.isinf(norm):
        raise MemoryStoreError("a zero (or non-finite) vector has no direction to search by; check the embedding")
    return [float(v) / norm for v in vector]


def check_filter(filter: Mapping[str, Any] | None) -> dict[str, Any]:
    """The filter as a dict, if it is equality on simple keys with scalar values; else MemoryStoreError."""
    if not filter:
        return {}
    if not isinstance(filter, Mapping):
        raise MemoryStoreError(f"filter must be a dict of metadata key -> value, got {type(filter).__name__}")
    for key, value in filter.items():
        if not isinstance(key, str) or not _KEY.match(key):
            raise MemoryStoreError(f"filter key {key!r}: use 1-64 of [A-Za-z0-9_.-]")
        if not isinstance(value, str | int | float | bool) or (isinstance(value, float) and not math.isfinite(value)):
            raise MemoryStoreError(
                f"filter value for {key!r} is {type(value).__name__}; filters match a string, number or boolean "
                f"exactly (store lists as separate keys, or filter after the search)")
    return dict(filter)


def check_space(namespace: str) -> str:
    """A namespace (user or entity id) as given, if it is a non-empty string of at most 200 characters."""
    if not isinstance(namespace, str) or not _SPACE.match(namespace):
        raise MemoryStoreError(f"memory namespace {namespace!r} must be a non-empty string of at most 200 characters")
    return namespace


def _backend(module: str) -> Any:
    try:
        return importlib.import_module(f"{__name__}.{module}")
    except ImportError as exc:
        raise ConfigError(
            f"this memory store needs its client library ({exc.name}); "
            f"install it with: pip install 'agent-deploy-harness[postgres]'"
        ) from exc


def open_memory_store(url: str | None, run_dir: Path | None = None, *, dimensions: int = DEFAULT_DIMENSIONS,
                      namespace: str | None = None, connect_timeout_s: float = 3.0) -> MemoryStore:
    """A memory store from a URL: None or ``sqlite://`` (``memory.sqlite3`` in ``run_dir``),
    ``sqlite:///path``, or ``postgresql://user@host:port/db[?namespace=NS&mode=auto|pgvector|plain]``.

    On PostgreSQL the tables live in the schema ``adh_<namespace>`` (by default derived from ``run_dir``, as
    the state store's), so one run's memory is its own; give the same namespace to find it again later.
    """
    if isinstance(dimensions, bool) or not isinstance(dimensions, int) or not 1 <= dimensions <= 16000:
        raise ConfigError(f"memory dimensions must be an integer from 1 to 16000, got {dimensions!r}")
    url = url or "sqlite://"
    parts = urlsplit(url)
    if parts.scheme == "sqlite" and url.startswith("sqlite://"):
        from .sqlite_memory import SQLiteMemory

        search = dict(parse_qsl(parts.query)).get("search", "auto")
        if parts.netloc:
            raise ConfigError(f"memory store {url!r}: give sqlite:// (a file in the run directory) or "
                              f"sqlite:///absolute/path/to/file")
        if parts.path:
            return SQLiteMemory(Path(parts.path), dimensions, search=search)
        if run_dir is None:
            raise ConfigError("the default memory store (sqlite://) needs a run directory; give sqlite:///path")
        return SQLiteMemory(run_dir / "memory.sqlite3", dimensions, search=search)
    if parts.scheme in ("postgresql", "postgres") and url.startswith(f"{parts.scheme}://"):
        query = parse_qsl(parts.query)
        given = dict(query)
        ns = namespace or given.get("namespace") or (namespace_for(run_dir) if run_dir is not None else None)
        if ns is None:
            raise ConfigError(f"memory store {url!r}: give ?namespace=NAME (no run directory to derive one from)")
        mode = given.get("mode", "auto")
        if mode not in ("auto", "pgvector", "plain"):
            raise ConfigError(f"memory store mode {mode!r}; expected auto, pgvector or plain")
        bare = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in query if k not in ("namespace", "mode")])))
        mod = _backend("postgres_memory")
        return mod.PostgresMemory(bare, safe_namespace(ns), dimensions,  # type: ignore[no-any-return]
                                  mode=mode, connect_timeout_s=connect_timeout_s)
    raise ConfigError(
        f"unsupported memory store URL {url!r}; expected sqlite://, sqlite:///path/to/file or "
        f"postgresql://user@host:port/db"
    )
