"""Task records on the in-process stores (memory, SQLite, fakeredis) and how open_state_store picks a store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emulators.errors import ConfigError
from emulators.state import (
    MemoryStateStore,
    SQLiteStateStore,
    StateStore,
    namespace_for,
    open_state_store,
)
from emulators.state.redis_store import RedisStateStore

fakeredis = pytest.importorskip("fakeredis")


@pytest.fixture(params=["memory", "sqlite", "fakeredis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    """A fresh store of each in-process kind."""
    s: StateStore
    if request.param == "memory":
        s = MemoryStateStore()
    elif request.param == "sqlite":
        s = SQLiteStateStore(tmp_path / "s.db")
    else:
        s = RedisStateStore("redis://fake/0", "unit", client=fakeredis.FakeRedis())
    yield s
    if isinstance(s, RedisStateStore):
        s.drop()
    s.close()


def test_unknown_task_is_none(store: StateStore) -> None:
    """get_task of a task never put is None, and a new store lists no tasks."""
    assert store.get_task("nope") is None
    assert store.list_tasks() == []


def test_task_record_round_trips_and_is_replaced(store: StateStore) -> None:
    """put_task stores a JSON copy of the record; putting again replaces it."""
    record = {"status": "queued", "attempts": 0, "result": None}
    store.put_task("t1", record)
    record["attempts"] = 99
    assert store.get_task("t1") == {"status": "queued", "attempts": 0, "result": None}
    store.put_task("t1", {"status": "succeeded", "attempts": 1, "result": {"output": {"a": 1}}})
    assert store.get_task("t1") == {"status": "succeeded", "attempts": 1, "result": {"output": {"a": 1}}}


def test_list_tasks_keeps_first_put_order_and_filters(store: StateStore) -> None:
    """list_tasks answers in first-put order (updates keep their place), by status, up to a limit."""
    store.put_task("b", {"status": "queued"})
    store.put_task("a", {"status": "queued"})
    store.put_task("c", {"status": "failed", "attempts": 3})
    store.put_task("b", {"status": "succeeded"})
    assert [r["task_id"] for r in store.list_tasks()] == ["b", "a", "c"]
    assert store.list_tasks(status="queued") == [{"status": "queued", "task_id": "a"}]
    assert store.list_tasks(status="failed") == [{"status": "failed", "attempts": 3, "task_id": "c"}]
    assert [r["task_id"] for r in store.list_tasks(limit=2)] == ["b", "a"]
    assert store.list_tasks(status="running") == []


def test_task_without_status_is_listed_unfiltered_only(store: StateStore) -> None:
    """A record with no status appears in the full listing but matches no status filter."""
    store.put_task("t1", {"note": "x"})
    assert store.list_tasks() == [{"note": "x", "task_id": "t1"}]
    assert store.list_tasks(status="queued") == []


def test_unserializable_record_is_refused(store: StateStore) -> None:
    """A record that is not JSON-compatible raises TypeError and stores nothing."""
    with pytest.raises(TypeError):
        store.put_task("t1", {"x": object()})
    assert store.get_task("t1") is None


def test_state_and_checkpoints_work_on_every_store(store: StateStore) -> None:
    """Session state and checkpoints work the same on every in-process store."""
    store.put_state("s1", {"h": ["hi"]})
    store.put_checkpoint("t1", "step", 2)
    assert store.get_state("s1") == {"h": ["hi"]} and store.get_checkpoints("t1") == {"step": 2}
    assert store.get_state("s2") == {} and store.get_checkpoints("t2") == {}


def test_sqlite_task_records_survive_reopening(tmp_path: Path) -> None:
    """Task records in SQLite are durable: a new store on the same file sees them, in order."""
    first = SQLiteStateStore(tmp_path / "d.db")
    first.put_task("t1", {"status": "succeeded", "result": {"ok": True}, "attempts": 1})
    first.put_task("t2", {"status": "queued"})
    first.close()
    second = SQLiteStateStore(tmp_path / "d.db")
    try:
        assert second.get_task("t1") == {"status": "succeeded", "result": {"ok": True}, "attempts": 1}
        assert [r["task_id"] for r in second.list_tasks()] == ["t1", "t2"]
    finally:
        second.close()


def test_redis_namespaces_do_not_mix_and_a_shared_one_is_seen(tmp_path: Path) -> None:
    """Two namespaces on one server are separate; a second store given the same namespace sees the first's."""
    server = fakeredis.FakeServer()
    a = open_state_store("redis://fake/0", tmp_path / "run-a", client=fakeredis.FakeRedis(server=server))
    b = open_state_store("redis://fake/0", tmp_path / "run-b", client=fakeredis.FakeRedis(server=server))
    a.put_task("t1", {"status": "queued"})
    assert b.get_task("t1") is None
    assert isinstance(a, RedisStateStore)
    again = open_state_store("redis://fake/0", tmp_path / "elsewhere", namespace=a.namespace,
                             client=fakeredis.FakeRedis(server=server))
    assert again.get_task("t1") == {"status": "queued"}
    a.drop()
    assert again.get_task("t1") is None


def test_namespace_comes_from_the_argument_the_url_or_the_run_dir(tmp_path: Path) -> None:
    """namespace= wins over ?namespace=, which wins over the run directory's name; all made identifier-safe."""
    client = fakeredis.FakeRedis()
    run_dir = tmp_path / "harness-Run.1-x"
    by_dir = open_state_store("redis://fake/0", run_dir, client=client)
    by_url = open_state_store("redis://fake/0?namespace=Team-A", run_dir, client=client)
    by_arg = open_state_store("redis://fake/0?namespace=ignored", run_dir, namespace="mine", client=client)
    assert isinstance(by_dir, RedisStateStore) and isinstance(by_url, RedisStateStore)
    assert isinstance(by_arg, RedisStateStore)
    assert (by_dir.namespace, by_url.namespace, by_arg.namespace) == (namespace_for(run_dir), "team_a", "mine")
    assert namespace_for(run_dir) == "harness_run_1_x"


def test_unsafe_namespace_given_to_a_store_is_a_config_error() -> None:
    """A store constructed with a namespace outside [a-z0-9_] refuses it, naming a safe spelling."""
    with pytest.raises(ConfigError, match="'team_a'"):
        RedisStateStore("redis://fake/0", "Team-A", client=fakeredis.FakeRedis())


@pytest.mark.parametrize("url", ["garbage", "mysql://localhost/db", "", "redis:"])
def test_unsupported_state_url_lists_every_accepted_form(url: str, tmp_path: Path) -> None:
    """An unsupported state store URL is a ConfigError naming the URL and every accepted scheme."""
    with pytest.raises(ConfigError, match="unsupported state store URL") as exc:
        open_state_store(url, tmp_path)
    msg = str(exc.value)
    assert repr(url) in msg and all(s in msg for s in ("memory://", "sqlite://", "redis://", "postgresql://"))


def test_sqlite_group_commits_are_seen_at_once_here_and_durable_after_the_window(tmp_path: Path) -> None:
    """With group_commits, a write is read back at once on the store, committed for other readers after the
    window, in one transaction with the writes of its window; close() commits a window still open."""
    import asyncio
    import sqlite3

    path = tmp_path / "s.db"
    s = SQLiteStateStore(path)

    def others() -> list[str]:
        with sqlite3.connect(path) as other:
            return [t for (t,) in other.execute("SELECT task FROM tasks ORDER BY seq")]

    async def run() -> tuple[list[str], list[str], list[str]]:
        s.group_commits(asyncio.get_running_loop(), 0.05)
        s.put_task("a", {"status": "queued"})
        s.put_task("a", {"status": "running"})
        s.put_task("b", {"status": "queued"})
        assert s.get_task("a") == {"status": "running"}  # this connection sees its open window
        before = others()
        await asyncio.sleep(0.2)
        after = others()
        s.put_task("c", {"status": "queued"})  # a new window, closed by close() before its timer
        return before, after, others()

    before, after, open_window = asyncio.run(run())
    s.close()
    assert (before, after, open_window) == ([], ["a", "b"], ["a", "b"])
    assert others() == ["a", "b", "c"]
    again = SQLiteStateStore(path)
    assert again.get_task("a") == {"status": "running"}
    again.close()
