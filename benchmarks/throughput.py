"""Gateway throughput: requests/s through ``POST /invoke`` with 8 keep-alive connections for a fixed time.

Targets, each served in this process the same way (the gateway in the engine's loop thread; the bare
endpoint of ``bare.py`` in a loop thread with the same uvicorn settings): the bare endpoint (the floor),
the container pattern with 2 replicas (``min_replicas = max_replicas = 2``, round robin) and the
serverless pattern (one call per instance: 8 connections keep about 8 instances warm), all on the echo
agent. The load comes from another process: ``wrk -t1 -c8`` (Debian's ``wrk``; one thread is far more
than these servers can answer) where it is on PATH, else ``python -m benchmarks.loadgen`` (raw HTTP/1.1 on
asyncio). ``BENCH_LOADGEN=python`` forces the fallback. Each target first gets a 1 s warm-up run (not
counted), which also starts the serverless instances.

``throughput_interleaved`` serves every target at once and gives each the load in turns (``rounds`` runs
of ``slice_seconds`` per target), so a change in the machine's load falls on all of them alike.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

import harness

from . import ECHO_SPEC, REPO_ROOT
from .bare import bare_endpoint

__all__ = ["CONNECTIONS", "LoadResult", "load", "load_tool", "served", "slice_seconds", "throughput_interleaved"]

CONNECTIONS = 8
WARMUP_S = 1.0
TARGET_KW: dict[str, dict[str, Any]] = {
    "container": {"pattern": "container", "time_scale": 0.01, "min_replicas": 2, "max_replicas": 2},
    "serverless": {"pattern": "serverless", "time_scale": 0.01, "memory_mb": 1769},
}
_WRK_LUA = 'wrk.method = "POST"\nwrk.body = "{}"\nwrk.headers["Content-Type"] = "application/json"\n'


@dataclass
class LoadResult:
    """What one load run measured."""

    tool: str
    rps: float
    requests: int
    duration_s: float
    non_2xx: int
    errors: int
    p50_ms: float
    p99_ms: float
    records: int | None = None  # invocations the deployment recorded during the whole target (warm-up too)
    server_cpu_us_per_request: float = 0.0  # this process's CPU (user + sys) during the run, per request
    instances_cpu_us_per_request: float = 0.0  # the child processes' CPU (instances, zygote), per request
    max_ms: float = 0.0  # the slowest request (wrk's "Latency ... Max"; 0 from the Python load generator)

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def load_tool() -> str:
    """``wrk`` when installed (and not overridden by ``BENCH_LOADGEN=python``), else ``python``."""
    if os.environ.get("BENCH_LOADGEN", "") != "python" and shutil.which("wrk"):
        return "wrk"
    return "python"


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        return 0.0
    value, unit = float(m.group(1)), m.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def _run_wrk(url: str, duration_s: float) -> LoadResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(_WRK_LUA)
        script = f.name
    try:
        out = subprocess.run(["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{max(1, round(duration_s))}s", "--latency",
                              "-s", script, url], check=True, capture_output=True, text=True,
                             timeout=duration_s + 30).stdout
    finally:
        Path(script).unlink(missing_ok=True)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+),", out)
    requests = int(m.group(1)) if m else 0
    took = _ms(m.group(2) + m.group(3)) / 1000 if m else duration_s
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    worst = re.search(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)", out, re.M)
    return LoadResult("wrk", rps, requests, took, int(non2xx.group(1)) if non2xx else 0,
                      sum(int(g) for g in errs.groups()) if errs else 0,
                      _ms(p50.group(1)) if p50 else 0.0, _ms(p99.group(1)) if p99 else 0.0,
                      max_ms=_ms(worst.group(1)) if worst else 0.0)


def _run_python(url: str, duration_s: float) -> LoadResult:
    out = subprocess.run([sys.executable, "-m", "benchmarks.loadgen", url, "--connections", str(CONNECTIONS),
                          "--duration", str(duration_s)], check=True, capture_output=True, text=True,
                         cwd=REPO_ROOT, timeout=duration_s + 30).stdout
    r = json.loads(out)
    return LoadResult("python -m benchmarks.loadgen", r["rps"], r["requests"], r["duration_s"], r["non_2xx"],
                      r["errors"], r["p50_ms"], r["p99_ms"])


def load(url: str, duration_s: float) -> LoadResult:
    """One load run of ``duration_s`` against ``url`` (wrk where installed)."""
    return _run_wrk(url, duration_s) if load_tool() == "wrk" else _run_python(url, duration_s)


@contextmanager
def served(target: str) -> Iterator[tuple[str, Any]]:
    """The URL (and deployment, None for ``bare``) of a target, served until the block ends."""
    if target == "bare":
        with bare_endpoint() as url:
            yield url, None
        return
    with harness.deploy(ECHO_SPEC, **TARGET_KW[target]) as d:
        yield d.url, d


def _cpu_s() -> tuple[float, dict[int, float]]:
    """CPU seconds (user + sys) of this process, and of each of its descendants other than the load generator."""
    me = psutil.Process()
    own = me.cpu_times()
    kids: dict[int, float] = {}
    for p in me.children(recursive=True):
        try:
            if p.name() == "wrk" or "benchmarks.loadgen" in " ".join(p.cmdline()):
                continue
            t = p.cpu_times()
            kids[p.pid] = t.user + t.system
        except psutil.Error:
            continue
    return own.user + own.system, kids


def _kids_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU the descendants used between two readings, per process: one that ended in between (another target's
    instance recycled while idle) must not take its whole past CPU out of the sum (it made a container's
    instances read 12 us a request instead of 80)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def slice_seconds(duration_s: float, rounds: int) -> int:
    """Seconds of each of a target's ``rounds`` load runs (whole seconds: ``wrk -d`` takes no fraction)."""
    return max(1, round(duration_s / rounds))


def throughput_interleaved(targets: tuple[str, ...], duration_s: float, rounds: int) -> dict[str, LoadResult]:
    """Requests/s of each target (``bare``, ``container``, ``serverless``), served together, loaded in turns."""
    slice_s = slice_seconds(duration_s, rounds)
    with ExitStack() as stack:
        up = {t: stack.enter_context(served(t)) for t in targets}
        for url, _ in up.values():
            load(f"{url}/invoke", WARMUP_S)
        runs: dict[str, list[LoadResult]] = {t: [] for t in targets}
        cpu = {t: [0.0, 0.0] for t in targets}
        for _ in range(rounds):
            for t, (url, _) in up.items():
                own0, kids0 = _cpu_s()
                runs[t].append(load(f"{url}/invoke", slice_s))
                own1, kids1 = _cpu_s()
                cpu[t][0] += own1 - own0
                cpu[t][1] += _kids_delta(kids0, kids1)
        records = {t: (len(d.records()) if d is not None else None) for t, (_, d) in up.items()}
    out: dict[str, LoadResult] = {}
    for t, rs in runs.items():
        requests = sum(r.requests for r in rs)
        took = sum(r.duration_s for r in rs)
        p50s = sorted(r.p50_ms for r in rs)
        res = LoadResult(rs[0].tool, requests / took if took else 0.0, requests, took, sum(r.non_2xx for r in rs),
                         sum(r.errors for r in rs), p50s[len(p50s) // 2], max(r.p99_ms for r in rs), records[t])
        if requests:
            res.server_cpu_us_per_request = cpu[t][0] / requests * 1e6
            res.instances_cpu_us_per_request = cpu[t][1] / requests * 1e6
        out[t] = res
    return out
