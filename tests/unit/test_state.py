"""State stores: memory and SQLite keep session state and checkpoints as JSON; URLs pick the store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emulators.errors import ConfigError
from emulators.state import MemoryStateStore, SQLiteStateStore, StateStore, open_state_store


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    s: StateStore = MemoryStateStore() if request.param == "memory" else SQLiteStateStore(tmp_path / "s.db")
    yield s
    s.close()


def test_new_session_is_empty(store: StateStore) -> None:
    """A session never written has empty state and a task no checkpoints."""
    assert store.get_state("s1") == {}
    assert store.get_checkpoints("t1") == {}


def test_state_round_trips(store: StateStore) -> None:
    """put_state then get_state returns the same JSON value, per session."""
    store.put_state("s1", {"history": ["hi", "there"], "n": 2, "nested": {"ok": True, "x": None}})
    store.put_state("s2", {"n": 9})
    assert store.get_state("s1") == {"history": ["hi", "there"], "n": 2, "nested": {"ok": True, "x": None}}
    assert store.get_state("s2") == {"n": 9}


def test_put_state_replaces(store: StateStore) -> None:
    """put_state replaces the session's state rather than merging."""
    store.put_state("s1", {"a": 1})
    store.put_state("s1", {"b": 2})
    assert store.get_state("s1") == {"b": 2}


def test_values_go_through_json(store: StateStore) -> None:
    """Values are copied through JSON: tuples come back as lists and later mutation does not leak in."""
    lst = [1]
    state = {"t": (1, 2), "l": lst}
    store.put_state("s1", state)
    lst.append(2)
    got = store.get_state("s1")
    assert got == {"t": [1, 2], "l": [1]}
    got["l"].append(3)
    assert store.get_state("s1") == {"t": [1, 2], "l": [1]}


def test_checkpoints_round_trip(store: StateStore) -> None:
    """Checkpoints are saved per task and key; a key saved again is overwritten."""
    store.put_checkpoint("t1", "step", 1)
    store.put_checkpoint("t1", "partial", {"rows": [1, 2]})
    store.put_checkpoint("t1", "step", 2)
    store.put_checkpoint("t2", "step", "other")
    assert store.get_checkpoints("t1") == {"step": 2, "partial": {"rows": [1, 2]}}
    assert store.get_checkpoints("t2") == {"step": "other"}


def test_unserializable_value_is_refused(store: StateStore) -> None:
    """A value that is not JSON-compatible is refused when saved."""
    with pytest.raises(TypeError):
        store.put_state("s1", {"x": object()})


def test_sqlite_state_survives_reopening(tmp_path: Path) -> None:
    """SQLite state is durable: a new store on the same file sees it."""
    path = tmp_path / "durable.db"
    first = SQLiteStateStore(path)
    first.put_state("s1", {"n": 1})
    first.put_checkpoint("t1", "k", [1])
    first.close()
    second = SQLiteStateStore(path)
    try:
        assert second.get_state("s1") == {"n": 1}
        assert second.get_checkpoints("t1") == {"k": [1]}
    finally:
        second.close()


@pytest.mark.parametrize("url", [None, "sqlite://", "sqlite:"])
def test_default_store_is_sqlite_in_run_dir(url: str | None, tmp_path: Path) -> None:
    """No URL, or sqlite:// without a path, is a SQLite file in the run directory."""
    s = open_state_store(url, tmp_path)
    try:
        assert isinstance(s, SQLiteStateStore)
        s.put_state("s", {"a": 1})
        assert (tmp_path / "state.sqlite3").is_file()
    finally:
        s.close()


def test_sqlite_url_with_path(tmp_path: Path) -> None:
    """sqlite:///abs/path opens that file."""
    path = tmp_path / "elsewhere" / "x.db"
    path.parent.mkdir()
    s = open_state_store(f"sqlite://{path}", tmp_path / "run")  # path is absolute: sqlite:///...
    try:
        assert isinstance(s, SQLiteStateStore)
        s.put_state("s", {"a": 1})
        assert path.is_file()
    finally:
        s.close()


@pytest.mark.parametrize("url", ["memory://", "memory"])
def test_memory_url(url: str, tmp_path: Path) -> None:
    """memory:// is the in-process dict store."""
    assert isinstance(open_state_store(url, tmp_path), MemoryStateStore)


@pytest.mark.parametrize("url", ["garbage", ""])
def test_unknown_url_is_config_error(url: str, tmp_path: Path) -> None:
    """An unsupported or malformed URL is a ConfigError."""
    with pytest.raises(ConfigError, match="unsupported state store URL"):
        open_state_store(url, tmp_path)
