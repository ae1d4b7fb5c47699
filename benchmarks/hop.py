"""The instance hop alone: the floor under every warm call, with the harness's own wire code and nothing else.

A forked child reads frames with ``wire.FrameReader`` and answers each with a result frame, as an
instance's serve loop does but without running an agent or any of its accounting; the parent, on the
engine's loop kind (``emulators.loops``), writes an invoke frame with ``wire.encode`` and waits for the
answer through ``wire.FrameProtocol``, as ``runtime.instance.Instance.call`` does. The round trip's wall
time and the parent's CPU per round trip are what an instance process costs a call by itself; the rest of a
warm call's time and CPU is the engine's and the instance's own Python (docs/performance.md).

Run it before any thread starts (it forks), as the other floors are.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from emulators import loops
from emulators.runtime import wire

__all__ = ["HopResult", "hop_floor"]

_TASK = b"{}"


@dataclass
class HopResult:
    """Round-trip wall times (ms) and the parent's CPU per round trip (µs)."""

    samples_ms: list[float]
    parent_cpu_us: float

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"samples": len(self.samples_ms), "parent_cpu_us_per_round_trip": self.parent_cpu_us}


def _serve(sock: socket.socket) -> None:
    reader = wire.FrameReader(sock)
    while True:
        msg = reader.recv()
        if msg is None:
            return
        wire.send_frame(sock, {"op": "result", "id": msg["id"], "outcome": "ok", "error": None,
                               "duration_ms": 0.0, "wall_ms": 0.0, "cpu_ms": 0.0, "peak_memory_mb": 0.0},
                        raw=("output", _TASK))  # the echo agent's answer to an empty task


async def _rounds(sock: socket.socket, n: int, warmup: int) -> HopResult:
    loop = asyncio.get_running_loop()
    waiting: list[asyncio.Future[dict[str, Any]]] = []

    def answered(msg: dict[str, Any]) -> None:
        waiting.pop().set_result(msg)

    transport, proto = await loop.connect_accepted_socket(lambda: wire.FrameProtocol(answered), sock)
    samples: list[float] = []
    pc = time.perf_counter_ns
    cpu0 = 0.0
    try:
        for i in range(warmup + n):
            if i == warmup:
                cpu0 = time.process_time()
            t0 = pc()
            fut = loop.create_future()
            waiting.append(fut)
            proto.write(wire.encode({"op": "invoke", "id": str(i), "timeout_s": 900.0}, raw=("task", _TASK)))
            await fut
            if i >= warmup:
                samples.append((pc() - t0) / 1e6)
        cpu = (time.process_time() - cpu0) / n * 1e6
    finally:
        transport.close()
    return HopResult(samples, cpu)


def hop_floor(n: int, warmup: int = 200) -> HopResult:
    """``n`` timed round trips of an invoke frame to a forked frame-echoing child and its result frame back."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        parent.close()
        try:
            _serve(child)
        finally:
            os._exit(0)
    child.close()
    try:
        return loops.run(_rounds(parent, n, warmup))
    finally:
        parent.close()
        os.waitpid(pid, 0)
