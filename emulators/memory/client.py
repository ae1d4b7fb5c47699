"""``ctx.memory`` inside an instance: embed through the LLM endpoint, then read or write the shared store.

The store is opened once per instance process (like a database connection a deployed function keeps in a
global) from ``HARNESS_MEMORY_URL``, which the harness sets to the deployment's store; its embedding model
and size come from ``HARNESS_MEMORY_MODEL`` and ``HARNESS_MEMORY_DIMENSIONS``. Embeddings go through
``ctx.llm``, so their tokens and cost land in the invocation's record as any model call's do.

Every store request is real I/O (on serverless and containers it is simply the time it takes); where the
platform counts subrequests (edge), each one is counted and pays the round trip, through ``on_request``.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import MemoryStoreError
from . import DEFAULT_DIMENSIONS, DEFAULT_MODEL, Item, MemoryStore, check_space, open_memory_store

__all__ = ["Memory", "shared_store"]

ENV_URL, ENV_MODEL, ENV_DIMENSIONS = "HARNESS_MEMORY_URL", "HARNESS_MEMORY_MODEL", "HARNESS_MEMORY_DIMENSIONS"
_STORE: MemoryStore | None = None
_STORE_LOCK = threading.Lock()


def shared_store() -> MemoryStore:
    """The instance's one connection to the deployment's memory store (opened on first use)."""
    global _STORE
    with _STORE_LOCK:
        if _STORE is None:
            url = os.environ.get(ENV_URL)
            if not url:
                raise MemoryStoreError(f"ctx.memory has no store: {ENV_URL} is not set; run the agent under "
                                       f"harness.deploy (which sets it), or set it to a sqlite:/// or "
                                       f"postgresql:// URL")
            _STORE = open_memory_store(url, dimensions=int(os.environ.get(ENV_DIMENSIONS, DEFAULT_DIMENSIONS)))
        return _STORE


class Memory:
    """Long-term memory of one deployment, namespaced per user or entity (``namespace=``)."""

    def __init__(self, llm: Callable[[], Any], on_request: Callable[[str], None] | None = None,
                 default_namespace: str = "default") -> None:
        self._llm = llm  # ctx.llm, fetched lazily (the openai import is paid on first use only)
        self._on_request = on_request
        self.default_namespace = default_namespace
        self.model = os.environ.get(ENV_MODEL, DEFAULT_MODEL)
        self.dimensions = int(os.environ.get(ENV_DIMENSIONS, DEFAULT_DIMENSIONS))
        self.requests = 0  # store requests this invocation made (embedding calls are counted as LLM calls)

    def _embed(self, texts: Sequence[str]) -> list[list[float]]:
        extra: dict[str, Any] = {} if self.model == "text-embedding-ada-002" else {"dimensions": self.dimensions}
        response = self._llm().embeddings.create(model=self.model, input=list(texts), **extra)
        return [list(d.embedding) for d in sorted(response.data, key=lambda d: d.index)]

    def _store(self, op: str) -> MemoryStore:
        store = shared_store()
        self.requests += 1
        if self._on_request is not None:
            self._on_request(op)
        return store

    def _space(self, namespace: str | None) -> str:
        return check_space(self.default_namespace if namespace is None else namespace)

    def add(self, texts: str | Sequence[str], metadata: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
            namespace: str | None = None, ids: Sequence[str] | None = None) -> list[str]:
        """Embed and store ``texts`` (one metadata dict for all, or one per text); returns their ids.

        An id already stored in the namespace is replaced (give ``ids`` to update a fact in place).
        """
        batch = [texts] if isinstance(texts, str) else list(texts)
        if not batch or not all(isinstance(t, str) and t for t in batch):
            raise MemoryStoreError("ctx.memory.add takes a non-empty string or a list of non-empty strings")
        metas = [dict(m) for m in metadata] if isinstance(metadata, Sequence) else [dict(metadata or {})] * len(batch)
        keys = list(ids) if ids is not None else [uuid.uuid4().hex for _ in batch]
        if len(metas) != len(batch) or len(keys) != len(batch):
            raise MemoryStoreError(f"ctx.memory.add got {len(batch)} texts but {len(metas)} metadata dicts and "
                                   f"{len(keys)} ids; give one each (or one metadata dict for all)")
        space = self._space(namespace)
        vectors = self._embed(batch)
        self._store("add").add(space, [Item(k, t, v, m) for k, t, v, m in zip(keys, batch, vectors, metas,
                                                                               strict=True)])
        return keys

    def search(self, query: str, k: int = 5, filter: Mapping[str, Any] | None = None,
               namespace: str | None = None) -> list[dict[str, Any]]:
        """The ``k`` stored memories nearest ``query``: dicts with id, text, metadata and score (cosine)."""
        if not isinstance(query, str) or not query:
            raise MemoryStoreError("ctx.memory.search takes a non-empty query string")
        space = self._space(namespace)
        vector = self._embed([query])[0]
        return [h.to_json() for h in self._store("search").search(space, vector, k, filter)]

    def delete(self, ids: Sequence[str] | None = None, filter: Mapping[str, Any] | None = None,
               namespace: str | None = None) -> int:
        """Delete memories of the namespace by id and/or filter (neither: all of them); returns how many."""
        return self._store("delete").delete(self._space(namespace), ids, filter)

    def count(self, namespace: str | None = None) -> int:
        """Memories stored in the namespace."""
        return self._store("count").count(self._space(namespace))
