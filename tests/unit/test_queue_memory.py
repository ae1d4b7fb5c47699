"""The embedded memory queue and the queue seam's shared parts: names, sizes, options, URLs, stale receipts."""

from __future__ import annotations

import threading
import time

import pytest

from emulators.errors import ConfigError, HarnessError, MessageTooLargeError
from emulators.queues import DEFAULT_MAX_BYTES, EXPIRED_ERROR, MemoryQueue, Queue, QueueOptions, open_queue, queue_name
from emulators.queues.base import redact

VIS = 0.1


@pytest.fixture
def q() -> MemoryQueue:
    """A memory queue with a 0.1 s visibility timeout and two allowed receives."""
    return MemoryQueue("adh-unit-tasks", QueueOptions(visibility_s=VIS, max_receives=2))


def test_memory_queue_satisfies_the_protocol() -> None:
    """open_queue with no URL or memory:// gives a MemoryQueue, usable as a Queue."""
    for url in (None, "memory://", "memory"):
        queue: Queue = open_queue(url, run_id="r1")
        assert isinstance(queue, MemoryQueue) and queue.name == "adh-r1-tasks"


def test_receive_takes_at_most_max_messages_in_send_order(q: MemoryQueue) -> None:
    """receive(n) hands out up to n visible messages, oldest first."""
    for i in range(5):
        q.send(f"t{i}", {"i": i})
    assert [m.id for m in q.receive(3)] == ["t0", "t1", "t2"]
    assert [m.id for m in q.receive(3)] == ["t3", "t4"]


def test_send_with_delay_is_invisible_until_then(q: MemoryQueue) -> None:
    """A message sent with delay_s is neither received nor counted in depth before the delay."""
    q.send("later", {}, delay_s=0.15)
    assert q.receive() == [] and q.depth() == 0
    assert [m.id for m in q.receive(wait_s=1)] == ["later"]


def test_body_is_copied_through_json(q: MemoryQueue) -> None:
    """The received body is a JSON copy: tuples become lists and later mutation of the sent dict is not seen."""
    items = [1]
    q.send("t1", {"t": (1, 2), "l": items})
    items.append(2)
    [m] = q.receive()
    assert m.body == {"t": [1, 2], "l": [1]}


def test_non_json_body_is_refused(q: MemoryQueue) -> None:
    """A body that is not JSON-compatible raises TypeError at send."""
    with pytest.raises(TypeError):
        q.send("t1", {"x": object()})


def test_empty_task_id_is_refused(q: MemoryQueue) -> None:
    """A message needs a non-empty string task id."""
    with pytest.raises(ConfigError, match="task id"):
        q.send("", {})


def test_stale_receipt_cannot_nack_or_extend_a_redelivered_message(q: MemoryQueue) -> None:
    """After a message expired and was received again, the first delivery's nack and extend do nothing."""
    q.send("t1", {})
    [first] = q.receive()
    time.sleep(VIS + 0.02)
    [second] = q.receive()
    q.nack(first, error="late")
    q.extend(first, 10)
    assert q.dead_letters() == [] and q.receive() == []
    time.sleep(VIS + 0.02)  # second's own deadline still applies: extend(first) did not move it
    assert q.receive() == [] and q.dead_letters()[0].last_error == EXPIRED_ERROR
    assert second.receive_count == 2


def test_ack_after_expiry_still_deletes(q: MemoryQueue) -> None:
    """A late ack deletes the message, as on SQS: the work was done."""
    q.send("t1", {})
    [m] = q.receive()
    time.sleep(VIS + 0.02)
    q.ack(m)
    assert q.receive() == [] and q.depth() == 0


def test_concurrent_receivers_never_share_a_message(q: MemoryQueue) -> None:
    """Many threads receiving at once get each message exactly once."""
    for i in range(200):
        q.send(f"t{i}", {})
    got: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        while batch := q.receive(7, visibility_s=30):
            with lock:
                got.extend(m.id for m in batch)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted(f"t{i}" for i in range(200))


def test_waiting_receive_is_woken_by_a_nack(q: MemoryQueue) -> None:
    """A receiver waiting on an empty queue gets a message released by another thread at once."""
    q.send("t1", {})
    [m] = q.receive(visibility_s=30)
    threading.Timer(0.05, lambda: q.nack(m)).start()
    started = time.monotonic()
    assert [x.id for x in q.receive(wait_s=5)] == ["t1"]
    assert time.monotonic() - started < 1


def test_queue_names_are_per_run_and_broker_safe() -> None:
    """queue_name prefixes the run id, replaces characters brokers refuse, and fits SQS's 80 with '-dlq'."""
    assert queue_name("r1", "tasks") == "adh-r1-tasks"
    assert queue_name("run/1", "my tasks.v2") == "adh-run-1-my-tasks-v2"
    assert len(queue_name("r" * 100, "tasks")) + len("-dlq") <= 80
    with pytest.raises(ConfigError):
        queue_name("r1", "")


def test_default_size_limit_is_sqs_one_mib() -> None:
    """The default message size limit is SQS's 1 MiB, and the limit counts the encoded message."""
    assert DEFAULT_MAX_BYTES == 1024 * 1024
    q = MemoryQueue("adh-size", QueueOptions(max_bytes=100))
    with pytest.raises(MessageTooLargeError, match="100-byte limit") as exc:
        q.send("t1", {"x": "é" * 40})  # 80 UTF-8 bytes of text plus the envelope
    assert isinstance(exc.value, HarnessError) and isinstance(exc.value, ValueError)


@pytest.mark.parametrize("field, value", [("visibility_s", 0), ("max_receives", 0), ("max_bytes", 10)])
def test_bad_options_are_config_errors(field: str, value: float) -> None:
    """A non-positive visibility, fewer than one receive or a tiny size limit is a ConfigError."""
    with pytest.raises(ConfigError, match=field):
        QueueOptions(**{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("url", ["kafka://localhost:9092", "garbage", "http://x", "redis:"])
def test_unknown_queue_url_is_a_config_error(url: str) -> None:
    """An unsupported queue URL is a ConfigError listing the accepted forms."""
    with pytest.raises(ConfigError, match="unsupported queue URL") as exc:
        open_queue(url, run_id="r1")
    assert "redis://" in str(exc.value) and "sqs://" in str(exc.value) and "amqp://" in str(exc.value)


def test_passwords_are_redacted_from_urls() -> None:
    """redact hides a URL's password and keeps everything else."""
    assert redact("amqp://guest:secret@host:5672/%2F") == "amqp://guest:***@host:5672/%2F"
    assert redact("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_purge_drops_messages_and_dead_letters(q: MemoryQueue) -> None:
    """purge empties the queue and its dead letters."""
    q.send("t1", {})
    q.send("t2", {})
    [m] = q.receive()
    q.nack(m)
    [m] = q.receive()
    q.nack(m, error="x")
    q.purge()
    assert q.depth() == 0 and q.dead_letters() == [] and q.receive() == []
