"""The queue contract, run against every backend: memory, fakeredis, real Redis, SQS on moto's server, RabbitMQ.

Real brokers are the ones on 127.0.0.1 (Redis 6379, RabbitMQ 5672 guest/guest); one that is absent skips
its tests with the reason. Moto's ThreadedMotoServer is started once per session and stopped at its end.
Every queue a test opens is per-run (a fresh run id) and deleted afterwards. SQS counts whole seconds, so
its visibility timeout here is 1 s where the others use 0.2 s.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from emulators.errors import BackendUnavailableError, MessageTooLargeError
from emulators.queues import EXPIRED_ERROR, Queue, open_queue

pytestmark = pytest.mark.integration

REDIS_URL = "redis://127.0.0.1:6379/15"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
BACKENDS = ["memory", "fakeredis", "redis", "sqs", "amqp"]
MAX_RECEIVES = 2

OpenQueue = Callable[..., Queue]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on host:port within half a second."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def servers() -> dict[str, bool]:
    """Which real brokers run on this machine, probed once."""
    return {"redis": port_open(6379), "amqp": port_open(5672)}


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """An sqs:// URL for a moto server on a free port, stopped at the end of the session."""
    moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"sqs://{host}:{port}/tasks?region=us-east-1"
    finally:
        server.stop()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, servers: dict[str, bool]) -> str:
    """The backend under test; a real one that is not running skips with the reason."""
    name = str(request.param)
    if name in servers and not servers[name]:
        port = {"redis": 6379, "amqp": 5672}[name]
        pytest.skip(f"{name} is not reachable on 127.0.0.1:{port}; start it to run the {name} queue tests")
    return name


@pytest.fixture
def vis(backend: str) -> float:
    """The visibility timeout used in the test, in wall seconds (SQS has 1 s granularity)."""
    return 1.0 if backend == "sqs" else 0.2


@pytest.fixture
def make_queue(backend: str, vis: float, request: pytest.FixtureRequest) -> Iterator[OpenQueue]:
    """A factory opening per-run queues on the backend; every queue it opened is deleted afterwards."""
    opened: list[Queue] = []
    client: Any = None
    if backend == "fakeredis":
        fakeredis = pytest.importorskip("fakeredis")
        client = fakeredis.FakeRedis(decode_responses=True)
    url = {"memory": "memory://", "fakeredis": "redis://fake/0", "redis": REDIS_URL, "amqp": AMQP_URL}.get(backend)
    if backend == "sqs":
        url = request.getfixturevalue("moto_url")

    def make(run_id: str | None = None, **options: Any) -> Queue:
        options.setdefault("visibility_s", vis)
        options.setdefault("max_receives", MAX_RECEIVES)
        q = open_queue(url, run_id=run_id or uuid.uuid4().hex[:12], client=client, **options)
        opened.append(q)
        return q

    yield make
    for q in opened:
        q.delete()
        q.close()


@pytest.fixture
def queue(make_queue: OpenQueue) -> Queue:
    """One fresh per-run queue on the backend."""
    return make_queue()


def test_delivers_a_sent_message_once_while_invisible(queue: Queue) -> None:
    """A sent message is received with its id, body and receive count 1, then is invisible to others."""
    queue.send("t1", {"q": "hi", "n": [1, 2]})
    [m] = queue.receive(wait_s=2)
    assert (m.id, m.body, m.receive_count) == ("t1", {"q": "hi", "n": [1, 2]}, 1)
    assert queue.receive() == []


def test_unacked_message_is_redelivered_after_the_visibility_timeout(queue: Queue, vis: float) -> None:
    """A message not acked within the visibility timeout comes back with its receive count raised."""
    queue.send("t1", {})
    [first] = queue.receive(wait_s=2)
    [again] = queue.receive(wait_s=vis + 2)
    assert again.id == "t1" and again.receive_count == 2 and first.receive_count == 1


def test_acked_message_is_gone(queue: Queue, vis: float) -> None:
    """An acked message is never delivered again and leaves the queue empty."""
    queue.send("t1", {})
    [m] = queue.receive(wait_s=2)
    queue.ack(m)
    assert queue.receive(wait_s=vis + 0.3) == []
    assert queue.depth() == 0 and queue.dead_letters() == []


def test_nack_releases_at_once(queue: Queue) -> None:
    """nack without a delay makes the message visible again at once, counted as a new receive."""
    queue.send("t1", {})
    [m] = queue.receive(wait_s=2)
    queue.nack(m, error="try again")
    [again] = queue.receive(wait_s=0.5)
    assert again.id == "t1" and again.receive_count == 2


def test_nack_with_delay_hides_the_message_until_the_delay_passed(queue: Queue, vis: float) -> None:
    """nack(delay_s=d) keeps the message invisible for d, then delivers it (retry back-off)."""
    queue.send("t1", {})
    [m] = queue.receive(wait_s=2)
    queue.nack(m, delay_s=vis * 2)
    assert queue.receive() == []
    started = time.monotonic()
    [again] = queue.receive(wait_s=vis * 2 + 2)
    assert again.receive_count == 2 and time.monotonic() - started >= vis  # not released early


def test_extend_keeps_a_message_invisible_past_its_timeout(queue: Queue, vis: float) -> None:
    """extend pushes the visibility deadline, so a slow worker keeps its message."""
    queue.send("t1", {})
    [m] = queue.receive(wait_s=2)
    queue.extend(m, vis * 4)
    assert queue.receive(wait_s=vis * 1.5) == []
    queue.ack(m)


def test_failing_message_is_dead_lettered_after_max_receives(queue: Queue) -> None:
    """A message nacked on each of its max_receives deliveries goes to the DLQ with its count and last error."""
    queue.send("t1", {"q": 1})
    for attempt in range(1, MAX_RECEIVES + 1):
        [m] = queue.receive(wait_s=2)
        assert m.receive_count == attempt
        queue.nack(m, error=f"boom {attempt}")
    assert queue.receive(wait_s=0.3) == []
    [dead] = queue.dead_letters()
    assert (dead.id, dead.body, dead.receive_count, dead.last_error) == ("t1", {"q": 1}, MAX_RECEIVES, "boom 2")
    assert queue.depth() == 0


def test_expiring_message_is_dead_lettered_after_max_receives(queue: Queue, vis: float) -> None:
    """A message whose deliveries all expire is dead-lettered instead of delivered a max_receives+1th time."""
    queue.send("t1", {})
    for _ in range(MAX_RECEIVES):
        assert len(queue.receive(wait_s=vis + 2)) == 1
    time.sleep(vis + 0.1)
    assert queue.receive(wait_s=0.3) == []
    [dead] = queue.dead_letters()
    assert (dead.id, dead.receive_count, dead.last_error) == ("t1", MAX_RECEIVES, EXPIRED_ERROR)
    assert len(queue.dead_letters()) == 1  # reading the DLQ leaves it as it was


def test_message_over_the_size_limit_is_refused(make_queue: OpenQueue) -> None:
    """A message larger than max_bytes raises MessageTooLargeError naming its size and the limit."""
    q = make_queue(max_bytes=1024)
    q.send("small", {"x": "a" * 900})
    with pytest.raises(MessageTooLargeError) as exc:
        q.send("big", {"x": "a" * 2000})
    assert "'big'" in str(exc.value) and "1024" in str(exc.value)
    assert [m.id for m in q.receive(wait_s=2)] == ["small"]


def test_depth_counts_visible_messages(queue: Queue) -> None:
    """depth() is the number of visible messages: received ones no longer count."""
    for i in range(3):
        queue.send(f"t{i}", {"i": i})
    assert queue.depth() == 3
    assert len(queue.receive(wait_s=2)) == 1
    assert queue.depth() == 2


def test_runs_are_isolated_and_purge_empties(make_queue: OpenQueue) -> None:
    """Queues of two runs on one broker do not share messages; purge empties one queue only."""
    a, b = make_queue(run_id="runa" + uuid.uuid4().hex[:6]), make_queue(run_id="runb" + uuid.uuid4().hex[:6])
    a.send("ta", {})
    b.send("tb", {})
    assert [m.id for m in b.receive(wait_s=2)] == ["tb"]
    b.purge()
    assert b.receive(wait_s=0.2) == [] and b.depth() == 0
    assert [m.id for m in a.receive(wait_s=2)] == ["ta"]


def test_repeated_task_id_is_two_messages(queue: Queue) -> None:
    """Sending the same task id twice queues two messages (ids are not deduplicated)."""
    queue.send("t1", {"n": 1})
    queue.send("t1", {"n": 2})
    got = queue.receive(2, wait_s=2)
    got += queue.receive(2, wait_s=1) if len(got) < 2 else []
    assert sorted(m.body["n"] for m in got) == [1, 2]


def test_waiting_receive_gets_a_message_sent_meanwhile(queue: Queue) -> None:
    """receive(wait_s=...) returns a message sent while it waits, well before the wait ends."""
    threading.Timer(0.2, lambda: queue.send("late", {})).start()
    started = time.monotonic()
    got = queue.receive(wait_s=5)
    assert [m.id for m in got] == ["late"] and time.monotonic() - started < 4


@pytest.mark.parametrize("url", [
    "redis://127.0.0.1:{port}/0",
    "sqs://127.0.0.1:{port}/tasks?region=us-east-1",
    "amqp://guest:secret@127.0.0.1:{port}/%2F",
])
def test_down_broker_at_open_is_a_clear_error_within_seconds(url: str) -> None:
    """Opening a queue on a broker that is not running raises BackendUnavailableError naming the URL, fast."""
    url = url.format(port=free_port())
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError) as exc:
        open_queue(url, run_id="down", connect_timeout_s=1.0)
    msg = str(exc.value)
    assert time.monotonic() - started < 8
    assert url.replace("secret", "***").split("?")[0] in msg and "start" in msg.lower()
    assert "secret" not in msg


@contextlib.contextmanager
def redis_server(port: int) -> Iterator[subprocess.Popen[bytes]]:
    """A throwaway redis-server on ``port`` (no persistence), stopped and reaped on exit."""
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 5
        while not port_open(port):
            assert proc.poll() is None and time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_consumer_resumes_after_the_redis_server_restarts() -> None:
    """A queue whose Redis goes away raises BackendUnavailableError; reconnect() resumes once it is back."""
    if subprocess.run(["which", "redis-server"], capture_output=True).returncode != 0:
        pytest.skip("redis-server is not installed; install it to run the reconnect test")
    port = free_port()
    with redis_server(port) as proc:
        q = open_queue(f"redis://127.0.0.1:{port}/0", run_id="restart", visibility_s=0.2, connect_timeout_s=1)
        q.send("before", {})
        assert [m.id for m in q.receive(wait_s=1)] == ["before"]
        proc.terminate()
        proc.wait(5)
        with pytest.raises(BackendUnavailableError, match=f"127.0.0.1:{port}"):
            q.receive()
        with pytest.raises(BackendUnavailableError, match="still unreachable"):
            q.reconnect(timeout_s=0.3)
        # The server comes back while the consumer waits in reconnect().
        restarted: list[subprocess.Popen[bytes]] = []
        with redis_server(port) as again:
            restarted.append(again)
            q.reconnect(timeout_s=5)
            q.send("after", {})  # no persistence: "before" went with the old server
            assert [m.id for m in q.receive(wait_s=1)] == ["after"]
            q.delete()
            q.close()
        assert all(p.poll() is not None for p in [proc, *restarted])


def test_late_nack_of_an_expired_delivery_does_not_touch_the_new_one(queue: Queue, vis: float) -> None:
    """A worker that nacks after its delivery expired and was redelivered does not disturb the new holder."""
    queue.send("t1", {})
    [first] = queue.receive(wait_s=2)
    [second] = queue.receive(wait_s=vis + 2)
    queue.nack(first, error="late")
    assert queue.receive(wait_s=0.1) == [] and queue.dead_letters() == []
    queue.ack(second)
    assert queue.depth() == 0


def test_amqp_consumer_resumes_after_losing_its_connection(servers: dict[str, bool]) -> None:
    """After a lost RabbitMQ connection, reconnect() resumes and the held delivery returns as a 2nd receive."""
    if not servers["amqp"]:
        pytest.skip("amqp is not reachable on 127.0.0.1:5672; start it to run the amqp queue tests")
    q = open_queue(AMQP_URL, run_id=uuid.uuid4().hex[:12], visibility_s=30, max_receives=3)
    try:
        q.send("t1", {})
        [held] = q.receive(wait_s=2)
        q._conn.close()  # type: ignore[attr-defined]  # what a broker restart or network cut does to us
        with pytest.raises(BackendUnavailableError, match="reconnect"):
            q.receive()
        q.reconnect(timeout_s=5)
        q.ack(held)  # its receipt belongs to the lost channel: a no-op, not an error
        [again] = q.receive(wait_s=2)
        assert again.id == "t1" and again.receive_count == 2
        q.ack(again)
        assert q.depth() == 0
    finally:
        q.delete()
        q.close()
