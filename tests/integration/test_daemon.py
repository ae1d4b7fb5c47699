"""The daemon pattern end to end: long checkpointed tasks, poison tasks, duplicates, a restart of the
harness itself, a backend that is down, and 1,000 tasks through every queue backend while workers are
SIGKILLed: nothing is lost, and resumed tasks redo at most one step per crash."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import random
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import harness
from emulators import daemon as daemon_module
from emulators.daemon import Daemon
from emulators.errors import BackendUnavailableError

pytestmark = [pytest.mark.integration, pytest.mark.both_loops]  # the engine runs on either loop

ROOT = Path(__file__).resolve().parents[2]
RESUMABLE = f"{ROOT / 'fixtures' / 'agents' / 'resumable.py'}:agent"


def _daemon(d: harness.Deployment) -> Daemon:
    emu = d._async._emulator
    assert isinstance(emu, Daemon)
    return emu


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_two_hour_task_of_twelve_checkpointed_steps_finishes_in_seconds() -> None:
    """12 steps of 10 platform minutes: ok, 12 progress events, about 2 platform hours, a few wall seconds."""
    began = time.monotonic()
    with harness.deploy(RESUMABLE, pattern="daemon", state="memory://") as d:
        r = d.invoke({"steps": 12, "step_s": 600})
    assert r.ok, r.error
    assert r.output == {"steps": 12, "resumed_from": 0}
    assert [e["step"] for e in r.events] == list(range(1, 13))
    assert 7_200_000 <= r.latency_ms <= 7_200_100 and r.duration_ms >= 7_200_000
    assert time.monotonic() - began < 10


def test_a_poison_task_is_dead_lettered_with_its_attempts_and_others_finish() -> None:
    """A task that always crashes its worker ends dead_lettered after max_receives; the rest are ok."""
    with harness.deploy(RESUMABLE, pattern="daemon", time_scale=0.01, state="memory://", max_receives=3,
                        retry_backoff_s=0.5) as d:
        emu = _daemon(d)
        ids = [d.submit({"steps": 2, "step_s": 1}) for _ in range(6)]
        poison = d.invoke({"poison": True})
        others = [d.wait(t, timeout_s=30) for t in ids]
        [dead] = emu.queue.dead_letters()  # type: ignore[union-attr]
    assert poison.outcome == "dead_lettered" and poison.attempts == 3
    assert poison.error is not None and poison.error.count("crash") == 3
    assert dead.receive_count == 3 and "crash" in dead.last_error
    assert all(r.ok for r in others), [r.error for r in others]


def test_a_duplicate_delivery_of_a_finished_task_does_not_run_it_again() -> None:
    """Re-sending a finished task's id acks it without running the agent; the log says duplicate."""
    with harness.deploy(RESUMABLE, pattern="daemon", time_scale=0.01, state="memory://") as d:
        emu = _daemon(d)
        first = d.invoke({"steps": 1, "step_s": 1})
        d._engine.call(functools.partial(emu.submit, {"steps": 1, "step_s": 1}, task_id=first.invocation_id))
        deadline = time.monotonic() + 10
        while not any(r.trigger == "duplicate" for r in emu.attempts_log) and time.monotonic() < deadline:
            time.sleep(0.01)
        runs = [r for r in emu.attempts_log if r.trigger == "attempt"]
        dups = [r for r in emu.attempts_log if r.trigger == "duplicate"]
    assert first.ok and len(runs) == 1
    assert len(dups) == 1 and dups[0].invocation_id == first.invocation_id and dups[0].ok
    assert "duplicate" in (dups[0].error or "")


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_results_survive_a_restart_of_the_harness_on_the_same_store(store: str, tmp_path: Path) -> None:
    """Tasks finished by one deployment are read back, with their results, by the next on the same store."""
    if store == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        if not _port_open(5432):
            pytest.skip("postgresql is not reachable on 127.0.0.1:5432; start it to run this test")
        url = f"postgresql://postgres@127.0.0.1:5432/test?namespace=restart_{uuid.uuid4().hex[:12]}"
    with harness.deploy(RESUMABLE, pattern="daemon", time_scale=0.01, state=url) as d:
        done = [d.invoke({"steps": 1, "step_s": 1}) for _ in range(3)]
    with harness.deploy(RESUMABLE, pattern="daemon", time_scale=0.01, state=url) as again:
        stored = [_daemon(again).state.get_task(r.invocation_id) for r in done]
    if store == "postgres":
        from emulators.state import open_state_store

        open_state_store(url, tmp_path).drop()  # type: ignore[attr-defined]
    assert all(r.ok for r in done)
    assert [s["status"] for s in stored if s] == ["succeeded"] * 3
    assert [s["result"] for s in stored if s] == [r.output for r in done]


def test_a_queue_backend_that_is_down_is_a_clear_error_naming_it() -> None:
    """A Redis URL with nothing listening fails the deploy within seconds, naming the address."""
    port = _free_port()
    began = time.monotonic()
    with pytest.raises(BackendUnavailableError, match=f"127.0.0.1:{port}"), harness.deploy(
            RESUMABLE, pattern="daemon", time_scale=0.01, queue=f"redis://127.0.0.1:{port}/0"):
        pass
    assert time.monotonic() - began < 10


# ---- chaos: 1,000 tasks through each backend with workers SIGKILLed --------------------------------------

BACKENDS = ["memory", "fakeredis", "redis", "sqs", "amqp"]


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """A moto SQS server on a free port for this module."""
    moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(params=BACKENDS)
def queue_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The queue URL of the backend under test (fakeredis injected through open_queue)."""
    name = request.param
    if name == "memory":
        return "memory://"
    if name == "fakeredis":
        fakeredis = pytest.importorskip("fakeredis")
        server = fakeredis.FakeServer()
        real_open = daemon_module.open_queue

        def open_fake(url: str | None, **kwargs: Any) -> Any:
            return real_open(url, client=fakeredis.FakeRedis(server=server), **kwargs)

        monkeypatch.setattr(daemon_module, "open_queue", open_fake)
        return "redis://127.0.0.1:6379/15"
    if name == "redis":
        if not _port_open(6379):
            pytest.skip("redis is not reachable on 127.0.0.1:6379; start it to run this test")
        return "redis://127.0.0.1:6379/15"
    if name == "amqp":
        if not _port_open(5672):
            pytest.skip("rabbitmq is not reachable on 127.0.0.1:5672; start it to run this test")
        return "amqp://guest:guest@127.0.0.1:5672/%2F"
    endpoint = request.getfixturevalue("moto_endpoint")
    for key, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                       ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(key, value)
    return f"sqs://{endpoint}/chaos-{os.getpid()}-{time.monotonic_ns()}?region=us-east-1"


def _chaos(emu: Daemon, stop: threading.Event, kills: list[int], every_wall_s: float) -> None:
    rng = random.Random(7)
    while not stop.wait(every_wall_s):
        live = [w.instance.pid for w in emu._workers if w.instance is not None and w.instance.alive]
        if live:
            with contextlib.suppress(ProcessLookupError):
                os.kill(rng.choice(live), signal.SIGKILL)
                kills.append(1)


def test_a_thousand_tasks_survive_workers_being_killed(queue_url: str) -> None:
    """Every task ends ok or dead_lettered, none lost, and resumed tasks redo at most one step per crash."""
    # moto's SQS scans the whole queue on every receive, so 1,000 tasks take about a minute there; the suite
    # runs 300 on SQS (ADH_SQS_CHAOS_TASKS=1000 runs the full count) and 1,000 on every other backend.
    n = int(os.environ.get("ADH_SQS_CHAOS_TASKS", "300")) if queue_url.startswith("sqs://") else 1000
    steps = 3
    kills: list[int] = []
    stop = threading.Event()
    with harness.deploy(RESUMABLE, pattern="daemon", time_scale=0.01, state="memory://", queue=queue_url,
                        workers=4, max_receives=10, retry_backoff_s=0.2, start_limit_interval_s=0,
                        llm="off") as d:
        emu = _daemon(d)
        ids = [d.submit({"steps": steps, "step_s": 0.1}) for _ in range(n)]
        # A kill every 20 ms: on the in-memory queue and uvloop the 1,000 tasks can end within a quarter of a
        # second, and a 50 ms period then killed only 3 workers (the check below wants the chaos to happen).
        chaos = threading.Thread(target=_chaos, args=(emu, stop, kills, 0.02), daemon=True)
        chaos.start()
        try:
            results = [d.wait(t, timeout_s=120) for t in ids]
        finally:
            stop.set()
            chaos.join(5)
    outcomes = {r.outcome for r in results}
    assert outcomes <= {"ok", "dead_lettered"}, outcomes
    assert sum(r.ok for r in results) >= n - 5  # max_receives=10: a task dead-letters only if killed 10 times
    assert len(kills) >= 5
    redone = sum(len(r.events) - steps for r in results if r.ok)
    print(f"{queue_url.split(':')[0]}: {n} tasks, {len(kills)} workers killed, {redone} steps redone, "
          f"{sum(r.attempts > 1 for r in results)} tasks retried, "
          f"{sum(r.ok and r.output['resumed_from'] > 0 for r in results)} resumed from a checkpoint")
    assert 0 <= redone <= len(kills), (redone, len(kills))


def _start_redis(port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    # Append-only file on: a SIGTERM'd redis saves it, so the queue is still there when it comes back.
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "yes", "--dir", str(data_dir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not _port_open(port):
        assert time.monotonic() < deadline and proc.poll() is None, "redis-server did not start"
        time.sleep(0.02)
    return proc


def test_the_run_resumes_when_a_lost_redis_comes_back(tmp_path: Path) -> None:
    """The queue's Redis stops mid-run and restarts: workers wait, reconnect, and every task ends ok."""
    if subprocess.run(["which", "redis-server"], capture_output=True).returncode != 0:
        pytest.skip("redis-server is not installed; install it to run the broker-restart test")
    port = _free_port()
    procs = [_start_redis(port, tmp_path)]
    try:
        with harness.deploy(RESUMABLE, pattern="daemon", time_scale=0.01, state="memory://", workers=2,
                            queue=f"redis://127.0.0.1:{port}/0", llm="off") as d:
            ids = [d.submit({"steps": 3, "step_s": 1}) for _ in range(30)]
            time.sleep(0.15)  # some tasks done, some running, most still queued
            procs[0].terminate()
            procs[0].wait(10)
            time.sleep(0.5)  # the broker is away for 50 platform seconds
            procs.append(_start_redis(port, tmp_path))
            back = time.time()
            results = [d.wait(t, timeout_s=60) for t in ids]
        assert [r.outcome for r in results] == ["ok"] * 30, [r.error for r in results if not r.ok]
        assert sum(r.ended_at > back for r in results) >= 5  # the run really went on after the restart
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(10)


def test_a_large_task_is_billed_one_queue_request_per_64_kb_chunk() -> None:
    """With SQS's 64 KB billing chunks (A57), sending a 200 KB task costs 4 requests where a small one costs 1."""

    def sent(pad: int) -> int:
        # No workers: nothing receives, so the count is the send's alone.
        with harness.deploy(RESUMABLE, pattern="daemon", state="memory://", workers=0,
                            queue_request_chunk_bytes=65536, price_per_million_queue_requests_usd=0.40) as d:
            emu = _daemon(d)
            d.submit({"steps": 1, "pad": "x" * pad})
            assert emu.fixed_cost() == pytest.approx(emu.queue_requests * 0.40 / 1e6)
            return emu.queue_requests

    assert (sent(0), sent(200_000)) == (1, 4)  # ceil(200 KB / 64 KB) = 4
