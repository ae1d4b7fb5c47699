"""The long-term memory contract, one suite for every backend: embedded SQLite (searched by sqlite-vec, and
in pure Python), real PostgreSQL in plain mode, and pgvector (skipped where the server lacks the extension).
Same texts, same queries, same neighbours.

Vectors come from the LLM simulator's own embedding function, so "near" means what ctx.memory sees.
PostgreSQL stores use a fresh namespace (schema) each and are dropped afterwards.
"""

from __future__ import annotations

import contextlib
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from emulators.errors import ConfigError, MemoryStoreError
from emulators.llm.embeddings import embed_text
from emulators.memory import Item, MemoryStore, open_memory_store

pytestmark = pytest.mark.integration

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
DIMS = 256  # ctx.memory's default
FACTS = {
    "plan": ("Ada is on the Pro plan, billed yearly", {"kind": "billing", "priority": 2}),
    "city": ("Ada lives in Lisbon, Portugal", {"kind": "profile", "priority": 1}),
    "contact": ("Ada prefers email over phone calls", {"kind": "profile", "verified": True}),
    "device": ("Ada uses the Android app on a Pixel phone", {"kind": "device", "priority": 1}),
    "refund": ("Ada asked for a refund of the March invoice", {"kind": "billing", "verified": False}),
}
QUERIES = {  # query -> the fact a person would pick
    "which plan is Ada on?": "plan",
    "does Ada still live in Portugal?": "city",
    "how should we contact Ada, email or phone?": "contact",
    "refund for the invoice": "refund",
    "which app and phone does she use": "device",
}

OpenMemory = Callable[..., MemoryStore]


def _postgres_up() -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
        return True
    return False


def _pgvector_missing() -> str | None:
    """Why pgvector cannot run here, or None when the server has it."""
    if not _postgres_up():
        return "PostgreSQL is not reachable on 127.0.0.1:5432"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as c:
        row = c.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone()
    return None if row else ("the PostgreSQL server here has no pgvector extension package (vector.control) "
                             "[allowed in CI]")


@pytest.fixture(params=["sqlite-vec", "sqlite-python", "postgres-plain", "pgvector"])
def open_memory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenMemory]:
    """A factory opening memory stores on one backend, all on the same file or schema unless told."""
    name = str(request.param)
    if name.startswith("postgres") and not _postgres_up():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432; start it to run the PostgreSQL memory tests")
    if name == "pgvector" and (why := _pgvector_missing()) is not None:
        pytest.skip(why)
    if name == "sqlite-vec":
        pytest.importorskip("apsw", reason="sqlite-vec search needs apsw: pip install 'agent-deploy-harness[memory]'")
        pytest.importorskip("sqlite_vec", reason="pip install 'agent-deploy-harness[memory]'")
    ns = "tm_" + uuid.uuid4().hex[:12]
    opened: list[MemoryStore] = []

    def make(dimensions: int = DIMS) -> MemoryStore:
        if name.startswith("sqlite"):
            search = "sqlite-vec" if name == "sqlite-vec" else "python"
            url = f"sqlite:///{tmp_path / 'memory.sqlite3'}?search={search}"
        else:
            url = f"{POSTGRES_URL}?namespace={ns}&mode={'plain' if name == 'postgres-plain' else 'pgvector'}"
        store = open_memory_store(url, dimensions=dimensions)
        opened.append(store)
        return store

    yield make
    if opened and name.startswith("sqlite"):
        assert opened[0].mode == ("sqlite-vec" if name == "sqlite-vec" else "sqlite-scan")
    for store in opened:
        store.close()
    if not name.startswith("sqlite"):
        with psycopg.connect(POSTGRES_URL, autocommit=True) as c:
            c.execute(f'DROP SCHEMA IF EXISTS "adh_{ns}" CASCADE')


def _fill(store: MemoryStore, space: str = "ada") -> None:
    store.add(space, [Item(key, text, embed_text(text, DIMS), meta) for key, (text, meta) in FACTS.items()])


def test_each_query_finds_the_fact_a_person_would_pick(open_memory: OpenMemory) -> None:
    """The nearest memory to every query is the fact that shares its topic, with scores best first."""
    store = open_memory()
    _fill(store)
    for query, want in QUERIES.items():
        hits = store.search("ada", embed_text(query, DIMS), k=3)
        assert hits[0].id == want, (query, [(h.id, round(h.score, 3)) for h in hits])
        assert hits[0].text == FACTS[want][0] and hits[0].metadata == FACTS[want][1]
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert -1.0 <= hits[-1].score <= hits[0].score <= 1.0 + 1e-6


def test_neighbours_and_scores_match_the_reference_ranking(open_memory: OpenMemory) -> None:
    """Every backend ranks all five facts as an exact cosine ranking computed here does."""
    store = open_memory()
    _fill(store)
    for query in QUERIES:
        q = embed_text(query, DIMS)
        want = sorted(FACTS, key=lambda k: -sum(a * b for a, b in zip(q, embed_text(FACTS[k][0], DIMS), strict=True)))
        hits = store.search("ada", q, k=5)
        assert [h.id for h in hits] == want
        ref = sum(a * b for a, b in zip(q, embed_text(FACTS[want[0]][0], DIMS), strict=True))
        assert hits[0].score == pytest.approx(ref, abs=1e-4)


def test_namespaces_keep_users_apart(open_memory: OpenMemory) -> None:
    """A search sees only its namespace's memories; count is per namespace and in all."""
    store = open_memory()
    _fill(store, "ada")
    store.add("bob", [Item("plan", "Bob is on the Free plan", embed_text("Bob is on the Free plan", DIMS))])
    hits = store.search("bob", embed_text("which plan?", DIMS), k=5)
    assert [h.id for h in hits] == ["plan"] and "Bob" in hits[0].text
    assert store.search("nobody", embed_text("plan", DIMS), k=5) == []
    assert (store.count("ada"), store.count("bob"), store.count()) == (5, 1, 6)


def test_filters_match_scalar_metadata_exactly(open_memory: OpenMemory) -> None:
    """String, number and boolean filters keep only exact matches; a bad filter is a clear error."""
    store = open_memory()
    _fill(store)
    q = embed_text("billing plan refund", DIMS)
    assert {h.id for h in store.search("ada", q, k=10, filter={"kind": "billing"})} == {"plan", "refund"}
    assert {h.id for h in store.search("ada", q, k=10, filter={"priority": 1})} == {"city", "device"}
    assert {h.id for h in store.search("ada", q, k=10, filter={"verified": True})} == {"contact"}
    assert {h.id for h in store.search("ada", q, k=10, filter={"verified": False})} == {"refund"}
    assert store.search("ada", q, k=10, filter={"kind": "billing", "priority": 1}) == []
    with pytest.raises(MemoryStoreError, match="string, number or boolean"):
        store.search("ada", q, k=3, filter={"kind": ["billing"]})


def test_add_replaces_by_id_and_delete_by_id_or_filter(open_memory: OpenMemory) -> None:
    """Re-adding an id replaces the memory in place; delete takes ids, a filter, or everything."""
    store = open_memory()
    _fill(store)
    store.add("ada", [Item("plan", "Ada moved to the Team plan", embed_text("Ada moved to the Team plan", DIMS),
                           {"kind": "billing"})])
    hit = store.search("ada", embed_text("which plan?", DIMS), k=1)[0]
    assert (hit.id, hit.text, store.count("ada")) == ("plan", "Ada moved to the Team plan", 5)
    assert store.delete("ada", ids=["city", "missing"]) == 1
    assert store.delete("ada", filter={"kind": "billing"}) == 2
    assert sorted(h.id for h in store.search("ada", embed_text("Ada", DIMS), k=9)) == ["contact", "device"]
    assert store.delete("ada") == 2 and store.count("ada") == 0


def test_a_second_opener_sees_the_same_memories(open_memory: OpenMemory) -> None:
    """Two stores on one URL (two instances, or a restarted harness) share what was written."""
    first = open_memory()
    _fill(first)
    first.close()
    second = open_memory()
    assert second.count("ada") == 5
    assert second.search("ada", embed_text("which plan is Ada on?", DIMS), k=1)[0].id == "plan"


def test_wrong_dimensions_are_refused_with_the_fix(open_memory: OpenMemory) -> None:
    """A vector of another size, or reopening with another size, says which size the memory holds."""
    store = open_memory()
    with pytest.raises(MemoryStoreError, match=f"{DIMS}"):
        store.add("ada", [Item("x", "x", [1.0] * (DIMS + 1))])
    store.add("ada", [Item("x", "x", embed_text("x", DIMS))])
    with pytest.raises(MemoryStoreError, match=f"{DIMS}-dimension"):
        open_memory(dimensions=DIMS * 2)


def test_postgres_auto_mode_reports_plain_without_pgvector(tmp_path: Path) -> None:
    """With no pgvector on the server, auto mode falls back to plain and says why."""
    if not _postgres_up():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    ns = "tm_" + uuid.uuid4().hex[:12]
    store = open_memory_store(f"{POSTGRES_URL}?namespace={ns}", dimensions=8)
    try:
        if _pgvector_missing() is None:
            assert store.mode == "pgvector"
        else:
            assert store.mode == "postgres-plain"
            assert "vector" in (getattr(store, "unavailable_reason", None) or "")
    finally:
        store.close()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as c:
            c.execute(f'DROP SCHEMA IF EXISTS "adh_{ns}" CASCADE')


def test_bad_urls_are_config_errors(tmp_path: Path) -> None:
    """An unknown scheme or mode names what is expected."""
    with pytest.raises(ConfigError, match="expected sqlite://"):
        open_memory_store("redis://127.0.0.1:6379/0", tmp_path)
    with pytest.raises(ConfigError, match="expected auto, pgvector or plain"):
        open_memory_store(f"{POSTGRES_URL}?mode=fast", tmp_path)
