"""The state store contract, run against every backend: memory, SQLite, fakeredis, real Redis, real PostgreSQL.

Real servers are the ones on 127.0.0.1 (Redis 6379, PostgreSQL 5432 with trust auth and a database
``test``); one that is absent skips its tests with the reason. Every store uses a fresh namespace and is
dropped afterwards.
"""

from __future__ import annotations

import contextlib
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators.errors import BackendUnavailableError
from emulators.state import StateStore, open_state_store

pytestmark = pytest.mark.integration

REDIS_URL = "redis://127.0.0.1:6379/15"
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
BACKENDS = ["memory", "sqlite", "fakeredis", "redis", "postgres"]
SHARED = [b for b in BACKENDS if b != "memory"]  # memory:// is private to one store object, by design
PORTS = {"redis": 6379, "postgres": 5432}

OpenStore = Callable[..., StateStore]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on host:port within half a second."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


@pytest.fixture(scope="session")
def servers() -> dict[str, bool]:
    """Which real servers run on this machine, probed once."""
    return {name: port_open(port) for name, port in PORTS.items()}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, servers: dict[str, bool]) -> str:
    """The backend under test; a real one that is not running skips with the reason."""
    name = str(request.param)
    if name in servers and not servers[name]:
        pytest.skip(f"{name} is not reachable on 127.0.0.1:{PORTS[name]}; start it to run the {name} state tests")
    return name


@pytest.fixture
def make_store(backend: str, tmp_path: Path) -> Iterator[OpenStore]:
    """A factory opening stores on the backend, all in one namespace (one file for SQLite) unless told."""
    opened: list[StateStore] = []
    namespace = "t_" + uuid.uuid4().hex[:12]
    client: Any = None
    if backend == "fakeredis":
        fakeredis = pytest.importorskip("fakeredis")
        server = fakeredis.FakeServer()
    url = {"memory": "memory://", "sqlite": "sqlite://", "fakeredis": "redis://fake/0", "redis": REDIS_URL,
           "postgres": POSTGRES_URL}[backend]

    def make(ns: str | None = None) -> StateStore:
        nonlocal client
        if backend == "fakeredis":
            client = fakeredis.FakeRedis(server=server)  # a new connection to the same server
        run_dir = tmp_path / (ns or namespace)
        run_dir.mkdir(exist_ok=True)
        s = open_state_store(url, run_dir, namespace=ns or namespace, client=client)
        opened.append(s)
        return s

    yield make
    for s in opened:
        drop = getattr(s, "drop", None)
        with contextlib.suppress(BackendUnavailableError):
            if drop is not None:
                drop()
        s.close()


@pytest.fixture
def store(make_store: OpenStore) -> StateStore:
    """One fresh store on the backend."""
    return make_store()


def test_session_state_and_checkpoints_round_trip(store: StateStore) -> None:
    """State replaces per session; checkpoints accumulate per task and key."""
    store.put_state("s1", {"history": ["hi"], "n": 1})
    store.put_state("s1", {"history": ["hi", "there"]})
    store.put_checkpoint("t1", "step", 1)
    store.put_checkpoint("t1", "rows", [1, 2])
    store.put_checkpoint("t1", "step", 2)
    assert store.get_state("s1") == {"history": ["hi", "there"]} and store.get_state("new") == {}
    assert store.get_checkpoints("t1") == {"step": 2, "rows": [1, 2]} and store.get_checkpoints("t2") == {}


def test_task_records_round_trip_list_and_filter(store: StateStore) -> None:
    """Task records are stored, replaced, listed in first-put order and filtered by status."""
    store.put_task("b", {"status": "queued", "attempts": 0})
    store.put_task("a", {"status": "queued", "attempts": 0})
    store.put_task("b", {"status": "succeeded", "attempts": 1, "result": {"ok": True, "output": {"x": 1}}})
    assert store.get_task("b") == {"status": "succeeded", "attempts": 1, "result": {"ok": True, "output": {"x": 1}}}
    assert store.get_task("missing") is None
    assert [r["task_id"] for r in store.list_tasks()] == ["b", "a"]
    assert [r["task_id"] for r in store.list_tasks(status="queued")] == ["a"]
    assert [r["task_id"] for r in store.list_tasks(limit=1)] == ["b"]


def test_unserializable_values_are_refused(store: StateStore) -> None:
    """A value that is not JSON-compatible raises TypeError, on state and on task records."""
    with pytest.raises(TypeError):
        store.put_state("s1", {"x": object()})
    with pytest.raises(TypeError):
        store.put_task("t1", {"x": object()})


@pytest.mark.parametrize("backend", SHARED, indirect=True)
def test_task_records_survive_reopening(make_store: OpenStore) -> None:
    """A durable store opened again (a restarted harness, same namespace) still has the tasks and state."""
    first = make_store()
    first.put_task("t1", {"status": "succeeded", "result": {"answer": 4}, "attempts": 2})
    first.put_task("t2", {"status": "failed", "attempts": 3})
    first.put_state("s1", {"n": 1})
    first.close()
    second = make_store()
    assert second.get_task("t1") == {"status": "succeeded", "result": {"answer": 4}, "attempts": 2}
    assert [r["task_id"] for r in second.list_tasks()] == ["t1", "t2"]
    assert second.get_state("s1") == {"n": 1}


def test_two_namespaces_do_not_mix(make_store: OpenStore) -> None:
    """Stores of two runs on the same server never see each other's tasks or state."""
    a = make_store("ns_a_" + uuid.uuid4().hex[:8])
    b = make_store("ns_b_" + uuid.uuid4().hex[:8])
    a.put_task("t1", {"status": "queued"})
    a.put_state("s1", {"n": 1})
    assert b.get_task("t1") is None and b.list_tasks() == [] and b.get_state("s1") == {}


@pytest.mark.parametrize("backend", SHARED, indirect=True)
def test_two_stores_on_one_namespace_share_it(make_store: OpenStore) -> None:
    """Two open stores given the same namespace (two harness processes) see each other's writes."""
    a, b = make_store(), make_store()
    a.put_task("t1", {"status": "running"})
    b.put_task("t1", {"status": "succeeded"})
    assert a.get_task("t1") == {"status": "succeeded"}


@pytest.mark.parametrize("url", ["redis://127.0.0.1:{port}/0", "postgresql://postgres:secret@127.0.0.1:{port}/test"])
def test_down_server_at_open_is_a_clear_error_within_seconds(url: str, tmp_path: Path) -> None:
    """Opening a store on a server that is not running raises BackendUnavailableError naming the URL, fast."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = url.format(port=port)
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError) as exc:
        open_state_store(url, tmp_path, connect_timeout_s=1)
    msg = str(exc.value)
    assert time.monotonic() - started < 8
    assert url.replace("secret", "***") in msg and "secret" not in msg and "start" in msg.lower()


def test_postgres_store_reconnects_after_its_connection_is_killed(servers: dict[str, bool], tmp_path: Path) -> None:
    """A PostgreSQL store whose server connection was terminated reconnects once and the call succeeds."""
    if not servers["postgres"]:
        pytest.skip("postgres is not reachable on 127.0.0.1:5432; start it to run the postgres state tests")
    psycopg = pytest.importorskip("psycopg")
    from emulators.state.postgres_store import PostgresStateStore

    store = PostgresStateStore(POSTGRES_URL, "t_" + uuid.uuid4().hex[:12])
    try:
        store.put_task("t1", {"status": "queued"})
        with store._pg.lock:
            pid = store._pg.connection().info.backend_pid
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert store.get_task("t1") == {"status": "queued"}
    finally:
        store.drop()
        store.close()
