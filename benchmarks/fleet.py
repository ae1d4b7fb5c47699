"""Memory and scale: many instances at once, each figure measured in a fresh interpreter of its own.

``python -m benchmarks.fleet memory N`` and ``python -m benchmarks.fleet scale N`` print one JSON object;
``python -m benchmarks`` runs them as subprocesses so that the control plane's RSS is the harness's, not
what the earlier benchmarks of the run imported (moto, boto3, pika...), and so that the forks of the scale
floor happen before any thread exists.

**memory** (serverless, aws-lambda, echo agent, ``memory_mb=1769``, ``time_scale=0.01``):
- per warm instance: RSS of the instance process after one call (``psutil``; USS and PSS in the JSON)
  minus the RSS of a bare interpreter that imported the same agent by path the same way and waits
  (the floor). Target: at most 10 MB more.
- control plane: this process's RSS with ``N`` warm instances (``N`` concurrent calls of the stamp agent
  holding 2 platform s, so each needs its own instance), next to its RSS with one warm instance.

**scale** (serverless, the stamp agent, ``time_scale=0.01``, ``memory_mb=128``):
- time to reach ``N`` instances from zero: ``N`` concurrent calls on a fresh deployment, from the moment
  they are fired to the latest ``started`` stamp the agent wrote (wall clock, ``time.time()`` on both
  sides). Floor: forking ``N`` idle processes (each waiting on its socket) from this process, timed
  the same way.
- p95 of a burst of ``N`` concurrent calls on the ``N`` warm instances (caller-seen wall latency of each
  call, over ``bursts`` bursts). Floor: the same burst over ``N`` forked echo processes that speak the
  harness's wire framing (``emulators.runtime.wire``) on socketpairs, driven from one asyncio loop: the
  least a control process can spend on N concurrent round trips to N processes here.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

import psutil

import harness
from emulators.runtime.wire import HEADER, decode, encode, recv_frame, send_frame

from . import ECHO_PATH, ECHO_SPEC, REPO_ROOT
from ._stats import Stats

__all__ = ["main", "run_fleet"]

STAMP_SPEC = f"{REPO_ROOT / 'benchmarks' / 'agents' / 'stamp.py'}:agent"
MB = 1024 * 1024
SCALE_REPEATS = 3  # fresh deployments (and fork floors) per scale run; the figures are their medians

_BARE_PROBE = """\
import importlib.util, sys
spec = importlib.util.spec_from_file_location("echo", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["echo"] = module
spec.loader.exec_module(module)
module.agent
print("ready", flush=True)
sys.stdin.read()
"""


def _mem(pid: int) -> dict[str, float]:
    info = psutil.Process(pid).memory_full_info()
    return {"rss_mb": info.rss / MB, "uss_mb": info.uss / MB, "pss_mb": getattr(info, "pss", 0) / MB}


def _bare_interpreter() -> dict[str, float]:
    """Memory of a bare interpreter with the echo agent imported, waiting on stdin."""
    proc = subprocess.Popen([sys.executable, "-c", _BARE_PROBE, str(ECHO_PATH)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        return _mem(proc.pid)
    finally:
        proc.communicate("")


async def _memory(n: int) -> dict[str, Any]:
    bare = [_bare_interpreter() for _ in range(3)]
    async with harness.adeploy(ECHO_SPEC, time_scale=0.01, memory_mb=1769, gateway=False) as d:
        await d.invoke({})
        await d.invoke({})
        pool = d._emulator.pool
        inst = [_mem(i.pid) for i in pool.instances]
        one = psutil.Process().memory_info().rss / MB
    async with harness.adeploy(STAMP_SPEC, time_scale=0.01, memory_mb=1769, gateway=False) as d:
        await d.invoke({})
        base = psutil.Process().memory_info().rss / MB
        rs = await asyncio.gather(*(d.invoke({"hold_s": 2}) for _ in range(n)))
        await asyncio.sleep(0.05)
        pool = d._emulator.pool
        live = len(pool.instances)
        control = psutil.Process().memory_info().rss / MB
        fleet = [_mem(i.pid) for i in pool.instances]
    bare_rss = sorted(b["rss_mb"] for b in bare)[len(bare) // 2]
    return {
        "bare_interpreter": bare, "bare_rss_mb": bare_rss,
        "instance": inst[0] if inst else {},
        "instance_rss_minus_bare_mb": (inst[0]["rss_mb"] - bare_rss) if inst else 0,
        "control_rss_1_warm_mb": base, "control_rss_n_warm_mb": control, "control_rss_echo_1_warm_mb": one,
        "n": n, "instances_alive": live, "not_ok": sum(1 for r in rs if not r.ok),
        "fleet_rss_mb_sum": sum(f["rss_mb"] for f in fleet), "fleet_uss_mb_sum": sum(f["uss_mb"] for f in fleet),
        "fleet_pss_mb_sum": sum(f["pss_mb"] for f in fleet),
    }


def _echo_child(sock: socket.socket) -> None:
    while True:
        msg = recv_frame(sock)
        if msg is None:
            os._exit(0)
        send_frame(sock, {"ok": True, "output": {"echo": msg.get("task")}})


def _fork_echo(n: int) -> tuple[list[int], list[socket.socket], float]:
    """Fork ``n`` echo processes on socketpairs; returns pids, the parent ends and the wall seconds."""
    pids: list[int] = []
    socks: list[socket.socket] = []
    t0 = time.perf_counter()
    for _ in range(n):
        parent, child = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            parent.close()
            for s in socks:
                s.close()
            try:
                _echo_child(child)
            finally:
                os._exit(0)
        child.close()
        pids.append(pid)
        socks.append(parent)
    return pids, socks, time.perf_counter() - t0


async def _ipc_bursts(socks: list[socket.socket], bursts: int) -> list[list[float]]:
    streams = [await asyncio.open_unix_connection(sock=s) for s in socks]
    frame = encode({"task": {}})
    pc = time.perf_counter

    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> float:
        t0 = pc()
        writer.write(frame)
        (length,) = HEADER.unpack(await reader.readexactly(HEADER.size))
        decode(await reader.readexactly(length))
        return (pc() - t0) * 1000

    await asyncio.gather(*(one(r, w) for r, w in streams))  # warm-up burst
    out: list[list[float]] = []
    for _ in range(bursts):
        out.append(list(await asyncio.gather(*(one(r, w) for r, w in streams))))
    for _, w in streams:
        w.close()
    return out


def _p95(ms: list[float]) -> float:
    return Stats.of(ms).p95


async def _scale(n: int, bursts: int, repeats: int) -> dict[str, Any]:
    """``repeats`` fresh deployments; medians of their reach times and of their bursts' p95s."""
    runs: list[dict[str, Any]] = []
    while len(runs) < repeats:
        runs.append(await _scale_once(n, bursts))
    p95s = [_p95(b) for r in runs for b in r["bursts_ms"]]
    pooled = [ms for r in runs for b in r["bursts_ms"] for ms in b]
    return {"n": n, "repeats": repeats, "bursts": bursts, "reach_s": statistics.median(r["reach_s"] for r in runs),
            "reach_s_all": [r["reach_s"] for r in runs], "burst_p95_ms": statistics.median(p95s),
            "burst_p95_ms_all": p95s, "burst_ms": Stats.of(pooled).to_json(),
            "instances": min(r["instances"] for r in runs),
            "first_burst_cold": min(r["first_burst_cold"] for r in runs),
            "first_burst_not_ok": sum(r["first_burst_not_ok"] for r in runs),
            "burst_not_warm_ok": sum(r["burst_not_warm_ok"] for r in runs),
            "close_s": statistics.median(r["close_s"] for r in runs)}


async def _scale_once(n: int, bursts: int) -> dict[str, Any]:
    async with harness.adeploy(STAMP_SPEC, time_scale=0.01, memory_mb=128, gateway=False) as d:
        fired = time.time()
        rs = await asyncio.gather(*(d.invoke({}) for _ in range(n)))
        reach_s = max(r.output["started"] for r in rs if r.ok) - fired if any(r.ok for r in rs) else 0.0
        cold = sum(1 for r in rs if r.cold_start)
        instances = len(d._emulator.pool.instances)
        pc = time.perf_counter

        async def timed() -> tuple[float, bool, bool]:
            t0 = pc()
            r = await d.invoke({})
            return (pc() - t0) * 1000, r.ok, r.cold_start

        await asyncio.gather(*(timed() for _ in range(n)))  # warm-up burst
        per_burst: list[list[float]] = []
        bad = 0
        for _ in range(bursts):
            got = await asyncio.gather(*(timed() for _ in range(n)))
            per_burst.append([ms for ms, _, _ in got])
            bad += sum(1 for _, ok, c in got if not ok or c)
        close_t0 = time.perf_counter()
    close_s = time.perf_counter() - close_t0
    return {"reach_s": reach_s, "first_burst_not_ok": sum(1 for r in rs if not r.ok), "first_burst_cold": cold,
            "instances": instances, "bursts_ms": per_burst, "burst_not_warm_ok": bad, "close_s": close_s}


def run_fleet(kind: str, n: int, bursts: int = 3) -> dict[str, Any]:
    """Run ``kind`` (``memory`` or ``scale``) in a fresh interpreter; its JSON result."""
    out = subprocess.run([sys.executable, "-m", "benchmarks.fleet", kind, str(n), str(bursts)], check=True,
                         capture_output=True, text=True, cwd=REPO_ROOT, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    """``memory N`` or ``scale N [BURSTS]``: print the figure's JSON."""
    args = sys.argv[1:] if argv is None else argv
    kind, n = args[0], int(args[1])
    bursts = int(args[2]) if len(args) > 2 else 3
    if kind == "memory":
        print(json.dumps(asyncio.run(_memory(n))))
        return 0
    # scale: the floor first, while this process has no thread (fork), then the harness
    fork_s: list[float] = []
    floor: list[list[float]] = []
    for _ in range(SCALE_REPEATS):
        pids, socks, took = _fork_echo(n)
        fork_s.append(took)
        try:
            floor += asyncio.run(_ipc_bursts(socks, bursts))
        finally:
            for sock in socks:
                sock.close()
            for pid in pids:
                os.waitpid(pid, 0)
    result = asyncio.run(_scale(n, bursts, SCALE_REPEATS))
    result.update({"floor_fork_s": statistics.median(fork_s), "floor_fork_s_all": fork_s,
                   "floor_burst_p95_ms": statistics.median(_p95(b) for b in floor),
                   "floor_burst_ms": Stats.of([ms for b in floor for ms in b]).to_json()})
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
