"""Daemon throughput: no-op tasks/s end to end with 2 workers, per queue backend, versus the raw broker.

End to end: ``harness.adeploy(echo, pattern="daemon", workers=2, queue=URL, time_scale=0.01)`` (the state
store stays the default SQLite file, so only the queue differs), then ``n`` concurrent
``await d.invoke({"i": k})`` in one asyncio loop: submit, queue, dispatch, the worker's run, the state write,
ack, the result back. tasks/s = n / wall seconds from the first submit to the last result.

Floors, with the same client library, one message at a time from one thread: enqueue ``m`` small JSON
messages, then dequeue (and ack/delete) them all; rate = m / total seconds; the median of 5 rounds of
``m = n_raw / 5`` (a single short loop moves with the machine's other load).
- memory: the embedded broker has no client library; its floor is ``MemoryQueue.send`` + ``receive`` +
  ``ack`` (the harness's own broker without the daemon around it);
- Redis: redis-py ``LPUSH`` + ``RPOP``;
- RabbitMQ: pika ``basic_publish`` (no publisher confirms) + ``basic_get`` + ``basic_ack``;
- SQS on moto's ``ThreadedMotoServer`` (started here, in this process, as the tests do): boto3
  ``send_message`` + ``receive_message`` + ``delete_message``.
The JSON also has the harness's ``Queue`` class on each broker (``send`` + ``receive`` + ``ack``): the
part of the gap that is the at-least-once bookkeeping, not the daemon.

A broker that is not reachable on 127.0.0.1 (Redis 6379, RabbitMQ 5672) or a missing client library
(moto, redis, pika, boto3) skips that backend, and the table says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import statistics
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import harness
from emulators.queues import MemoryQueue, open_queue

from . import ECHO_SPEC

__all__ = ["BACKENDS", "DaemonThroughput", "backend_url", "daemon_throughput"]

BACKENDS = ("memory", "redis", "rabbitmq", "sqs")
REDIS_URL = "redis://127.0.0.1:6379/15"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
ROUNDS = 5  # the floors are the median rate of this many rounds of n_raw / ROUNDS messages
_BODY: dict[str, Any] = {"task": {}, "session_id": None, "submitted": 0.0}


@dataclass
class DaemonThroughput:
    """One backend: end-to-end tasks/s, the raw floor, and the harness Queue class's rate."""

    backend: str
    skipped: str | None = None
    tasks: int = 0
    tasks_per_s: float = 0.0
    not_ok: int = 0
    raw_per_s: float = 0.0
    raw_what: str = ""
    queue_class_per_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def _moto() -> Iterator[str]:
    """A moto SQS server on a free port, with dummy credentials in the environment, for the block."""
    from moto import server as moto_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update({"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"})
    try:
        host, port = server.get_host_and_port()
        yield f"{host}:{port}"
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def backend_url(backend: str, endpoint: str | None = None) -> str | None:
    """The queue URL of ``backend`` (None for memory); ``endpoint`` is moto's host:port for SQS."""
    return {"memory": None, "redis": REDIS_URL, "rabbitmq": AMQP_URL,
            "sqs": f"sqs://{endpoint}/bench-{uuid.uuid4().hex[:8]}?region=us-east-1"}[backend]


def _absent(backend: str) -> str | None:
    """Why ``backend`` cannot run here, or None."""
    modules = {"redis": "redis", "rabbitmq": "pika", "sqs": "moto.server"}
    if backend in modules:
        try:
            __import__(modules[backend])
            if backend == "sqs":
                __import__("boto3")
        except ImportError as exc:
            return f"{exc.name} not installed"
    if backend == "redis" and not _port_open(6379):
        return "no Redis on 127.0.0.1:6379"
    if backend == "rabbitmq" and not _port_open(5672):
        return "no RabbitMQ on 127.0.0.1:5672"
    return None


def _raw_rate(backend: str, url: str | None, n: int) -> tuple[float, str]:
    """Messages/s of ``n`` enqueues then ``n`` dequeues with the backend's own client library."""
    msg = json.dumps({"id": "t", "body": _BODY})
    pc = time.perf_counter
    if backend == "memory":
        q = MemoryQueue(f"bench-raw-{uuid.uuid4().hex[:8]}")
        t0 = pc()
        for i in range(n):
            q.send(str(i), _BODY)
        for _ in range(n):
            for m in q.receive(1):
                q.ack(m)
        return n / (pc() - t0), "MemoryQueue send + receive + ack"
    if backend == "redis":
        import redis

        r = redis.Redis.from_url(REDIS_URL)
        key = f"bench-raw-{uuid.uuid4().hex[:8]}"
        try:
            t0 = pc()
            for _ in range(n):
                r.lpush(key, msg)
            for _ in range(n):
                r.rpop(key)
            return n / (pc() - t0), "redis-py LPUSH + RPOP"
        finally:
            r.delete(key)
            r.close()
    if backend == "rabbitmq":
        import pika  # type: ignore[import-untyped, unused-ignore]

        conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        ch = conn.channel()
        name = f"bench-raw-{uuid.uuid4().hex[:8]}"
        try:
            ch.queue_declare(name, durable=True)
            t0 = pc()
            for _ in range(n):
                ch.basic_publish("", name, msg.encode())
            got = 0
            while got < n:
                method, _, _ = ch.basic_get(name)
                if method is None:
                    continue
                ch.basic_ack(method.delivery_tag)
                got += 1
            return n / (pc() - t0), "pika basic_publish + basic_get + basic_ack"
        finally:
            ch.queue_delete(name)
            conn.close()
    import boto3  # type: ignore[import-untyped, unused-ignore]

    assert url is not None
    endpoint = "http://" + url.split("://", 1)[1].split("/", 1)[0]
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    qurl = sqs.create_queue(QueueName=f"bench-raw-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    try:
        t0 = pc()
        for _ in range(n):
            sqs.send_message(QueueUrl=qurl, MessageBody=msg)
        got = 0
        while got < n:
            for m in sqs.receive_message(QueueUrl=qurl, MaxNumberOfMessages=1).get("Messages", []):
                sqs.delete_message(QueueUrl=qurl, ReceiptHandle=m["ReceiptHandle"])
                got += 1
        return n / (pc() - t0), "boto3 send_message + receive_message + delete_message"
    finally:
        sqs.delete_queue(QueueUrl=qurl)


def _queue_class_rate(url: str | None, n: int) -> float:
    """Messages/s of the harness's Queue class on the same broker: n sends, then n receive + ack."""
    q = open_queue(url, run_id=f"bench{uuid.uuid4().hex[:6]}", name="qc")
    try:
        pc = time.perf_counter
        t0 = pc()
        for i in range(n):
            q.send(str(i), _BODY)
        got = 0
        while got < n:
            for m in q.receive(1):
                q.ack(m)
                got += 1
        return n / (pc() - t0)
    finally:
        with contextlib.suppress(Exception):
            q.delete()
        q.close()


async def _end_to_end(url: str | None, n: int) -> tuple[float, int]:
    kw: dict[str, Any] = {"pattern": "daemon", "workers": 2, "time_scale": 0.01, "gateway": False}
    if url is not None:
        kw["queue"] = url
    async with harness.adeploy(ECHO_SPEC, **kw) as d:
        await asyncio.gather(*(d.invoke({"i": -k}) for k in range(1, 11)))  # warm-up, not counted
        t0 = time.perf_counter()
        records = await asyncio.gather(*(d.invoke({"i": k}) for k in range(n)))
        took = time.perf_counter() - t0
    return n / took, sum(1 for r in records if not r.ok)


def daemon_throughput(backend: str, n: int, n_raw: int) -> DaemonThroughput:
    """End-to-end tasks/s with 2 workers and the raw floor for ``backend`` (skipped if absent)."""
    out = DaemonThroughput(backend)
    why = _absent(backend)
    if why is not None:
        out.skipped = why
        return out
    with _moto() if backend == "sqs" else contextlib.nullcontext("") as endpoint:
        url = backend_url(backend, endpoint or None)
        # Short loops are at the mercy of the machine's other load: the median of ROUNDS rounds.
        per_round = max(20, n_raw // ROUNDS)
        raws = [_raw_rate(backend, url, per_round) for _ in range(ROUNDS)]
        out.raw_per_s, out.raw_what = statistics.median(r for r, _ in raws), raws[0][1]
        out.queue_class_per_s = statistics.median(_queue_class_rate(url, per_round) for _ in range(ROUNDS))
        out.tasks = n
        out.tasks_per_s, out.not_ok = asyncio.run(_end_to_end(url, n))
    return out
