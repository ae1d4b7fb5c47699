"""Long-term memory pieces without processes: the simulator's embedding function and request parsing, the
memory contract's validation helpers, and store URLs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from emulators.errors import ConfigError, MemoryStoreError
from emulators.llm.dialog import ApiError
from emulators.llm.embeddings import EmbeddingsApi, embed_text
from emulators.memory import check_filter, normalized, open_memory_store


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_embeddings_are_deterministic_unit_vectors() -> None:
    """The same text gives the same unit vector; stop words alone still give a (fixed) direction."""
    a, b = embed_text("Ada lives in Lisbon", 64), embed_text("Ada lives in Lisbon", 64)
    assert a == b and math.isclose(_dot(a, a), 1.0, rel_tol=1e-9)
    assert math.isclose(_dot(embed_text("what is it", 64), embed_text("what is it", 64)), 1.0, rel_tol=1e-9)


def test_shared_words_are_near_and_case_and_function_words_do_not_matter() -> None:
    """Case and function words change nothing; a shared topic word beats an unrelated text."""
    assert _dot(embed_text("The REFUND policy", 256), embed_text("refund policy", 256)) > 0.999
    q = embed_text("refund for my order", 256)
    assert _dot(q, embed_text("refund issued", 256)) > _dot(q, embed_text("shipping to Lisbon", 256)) + 0.2


def test_embedding_requests_are_validated_as_openai_does() -> None:
    """Strings, lists and token arrays parse with their token counts; bad inputs are 400s naming the field."""
    api = EmbeddingsApi()
    req = api.parse_embed({"model": "text-embedding-3-small", "input": ["abcd", "abcdefgh"], "dimensions": 8})
    assert (req.texts, req.token_counts, req.dimensions, req.base64) == (("abcd", "abcdefgh"), (1, 2), 8, False)
    assert api.parse_embed({"model": "text-embedding-3-large", "input": [1, 2, 3]}).dimensions == 3072
    for body, param in (({"model": "text-embedding-3-small"}, "input"),
                        ({"model": "text-embedding-3-small", "input": ["ok", ""]}, "input"),
                        ({"model": "text-embedding-ada-002", "input": "x", "dimensions": 8}, "dimensions"),
                        ({"model": "text-embedding-3-small", "input": "x", "encoding_format": "hex"},
                         "encoding_format")):
        with pytest.raises(ApiError) as err:
            api.parse_embed(body)
        assert err.value.status == 400 and err.value.param == param


def test_vectors_and_filters_are_checked_with_the_fix_in_the_message() -> None:
    """Wrong sizes, zero vectors and non-scalar filter values are MemoryStoreErrors saying what to do."""
    assert normalized([3.0, 4.0], 2) == [0.6, 0.8]
    with pytest.raises(MemoryStoreError, match="dimensions=3"):
        normalized([1.0, 0.0], 3)
    with pytest.raises(MemoryStoreError, match="zero"):
        normalized([0.0, 0.0], 2)
    assert check_filter({"kind": "billing", "n": 2, "ok": True}) == {"kind": "billing", "n": 2, "ok": True}
    with pytest.raises(MemoryStoreError, match="string, number or boolean"):
        check_filter({"tags": ["a"]})
    with pytest.raises(MemoryStoreError, match="filter key"):
        check_filter({"a b": 1})


def test_store_urls_pick_the_backend_or_say_what_is_expected(tmp_path: Path) -> None:
    """sqlite:// is a file in the run dir, sqlite:///path that file; other schemes and modes are ConfigErrors."""
    store = open_memory_store(None, tmp_path, dimensions=4)
    assert (tmp_path / "memory.sqlite3").exists() and store.mode in ("sqlite-vec", "sqlite-scan")
    store.close()
    py = open_memory_store(f"sqlite:///{tmp_path / 'm.db'}?search=python", dimensions=4)
    assert py.mode == "sqlite-scan" and py.share_url.endswith("m.db?search=python")
    py.close()
    with pytest.raises(ConfigError, match="expected sqlite://"):
        open_memory_store("memory://", tmp_path)
    with pytest.raises(ConfigError, match="needs a run directory"):
        open_memory_store("sqlite://")
    with pytest.raises(ConfigError, match="dimensions"):
        open_memory_store(None, tmp_path, dimensions=0)


def test_summaries_count_embedding_tokens_and_memory_ops_and_the_table_shows_them() -> None:
    """A summary sums the records' embedding tokens and store requests; the terminal table gets a row for them."""
    from emulators.records import Record, summarize

    recs = [Record(ok=True, outcome="ok", pattern="serverless", embedding_tokens=7, memory_ops=2, input_tokens=30)
            for _ in range(3)]
    s = summarize(recs)
    assert (s.embedding_tokens, s.memory_ops, s.input_tokens) == (21, 6, 90)
    text = _table_text(s)
    assert "embed tok / mem ops" in text and "21 / 6" in text
    assert "mem ops" not in _table_text(summarize([Record(ok=True, outcome="ok", pattern="serverless")]))


def _table_text(summary: object) -> str:
    from rich.console import Console

    from harness.reports.terminal import summary_table

    console = Console(record=True, width=120)
    console.print(summary_table([summary]))  # type: ignore[list-item]
    return console.export_text()
