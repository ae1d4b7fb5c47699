"""The instance's serve loop: one call at a time inline, or leader and followers up to a replica's concurrency."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

from emulators.runtime import child
from emulators.runtime.agent import resolve_agent
from emulators.runtime.wire import FrameReader, encode

SLEEPER = Path(__file__).resolve().parents[2] / "fixtures" / "agents" / "sleeper.py"


def _instance(sock: socket.socket, concurrency: int) -> child._Instance:
    cfg: dict[str, Any] = {
        "cpu_factor": 1.0, "init_cpu_factor": 1.0, "time_scale": 0.01, "overhead_ms": 0.0,
        "agent": resolve_agent(f"{SLEEPER}:agent"), "adapter": "auto", "instance_concurrency": concurrency,
        "pattern": "container", "instance_id": "i-1", "function_name": "f", "memory_mb": 512,
        "queue_correction": False,
    }
    inst = child._Instance(child._Channel(sock), cfg)
    inst.init()
    return inst


def _serve(concurrency: int, calls: int) -> tuple[float, list[dict[str, Any]], int]:
    """``calls`` invocations of 0.2 s (20 platform s at 0.01) sent at once; wall time, results, serving threads."""
    parent, mine = socket.socketpair()
    with parent, mine:
        inst = _instance(mine, concurrency)
        server = threading.Thread(target=inst.serve)
        server.start()
        reader = FrameReader(parent)
        while reader.recv()["op"] != "ready":  # the cold start's frames
            pass
        t0 = time.monotonic()
        for i in range(calls):
            parent.sendall(encode({"op": "invoke", "id": f"c{i}", "timeout_s": 900.0, "session_id": None,
                                   "task": {"seconds": 20}}))
        results = []
        while len(results) < calls:
            msg = reader.recv()
            assert msg is not None
            if msg["op"] == "result":
                results.append(msg)
        took = time.monotonic() - t0
        parent.sendall(encode({"op": "exit"}))
        server.join(timeout=5)
        assert not server.is_alive()  # exit ends the serve loop (the main thread's part of it)
        return took, results, inst._threads


def test_a_replica_runs_its_calls_at_once_on_the_thread_that_read_each() -> None:
    """Three calls on a replica of concurrency 3 overlap (about one call's time) on three threads, no more."""
    took, results, threads = _serve(3, 3)
    assert [r["outcome"] for r in results] == ["ok"] * 3
    assert took < 0.5, took  # one after another: 0.6 s or more
    assert threads == 3  # each thread that read a call ran it; a new one started to read the next, up to 3


def test_concurrency_one_runs_calls_one_after_another_inline() -> None:
    """An instance of concurrency 1 (a Lambda environment) runs its calls one at a time on its one thread."""
    took, results, threads = _serve(1, 2)
    assert [r["outcome"] for r in results] == ["ok"] * 2
    assert took >= 0.4, took
    assert threads == 1
