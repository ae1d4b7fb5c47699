"""Soak: does ``harness serve`` keep its tail latency and its memory flat over a million calls?

As a user would run it: ``harness serve fixtures/agents/echo.py:agent --pattern P --records-dir DIR`` in its
own process (the shipped defaults: ``time_scale=1``, the live status line on), loaded with ``wrk -t1 -c8``
(POST /invoke) in bursts, and every ``every`` calls a probe: ``wrk -t1 -c1 -d10s --latency`` (p50/p90/p99 of
one connection) and the server's RSS (the serve process; the instances are counted apart). When the target
is reached the server gets SIGTERM, and ``harness report DIR --no-records`` reads every record back: the
calls it counts must equal the calls the server answered. The store's size is given per million records.

Targets: serverless and container (``http_calls``, 1,000,000 in the full size), and the daemon pattern on
the memory queue and on Redis (``daemon_calls``, 100,000). Needs ``wrk``; the Redis run needs Redis on
127.0.0.1:6379 (else that row says it was skipped).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from . import ECHO_SPEC, REPO_ROOT
from .throughput import _WRK_LUA

__all__ = ["Probe", "SoakResult", "soak"]

REDIS_URL = "redis://127.0.0.1:6379/0"  # the daemon-redis profile's queue and state
# Seconds of each one-connection probe. At a p99 of 1-3 ms, 3 s probes (the issue's) scattered 1.2-3.0 ms
# from one probe to the next without a trend, more than the 1.5x target allows; 10 s (~18,000 requests,
# p99 = the 180th slowest) steadies it.
PROBE_S = 10


@dataclass
class Probe:
    """One probe: where the run stood and what one connection saw."""

    calls: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    rss_mb: float  # the serve process
    instances_rss_mb: float  # its descendants (the instances, the zygote)
    rps: float  # the load burst just before


@dataclass
class SoakResult:
    """A whole soak of one target."""

    target: str
    probes: list[Probe] = field(default_factory=list)
    calls: int = 0
    wall_s: float = 0.0
    store_mb: float = 0.0
    reported_calls: int = 0  # what `harness report` counted from the store afterwards
    report_s: float = 0.0
    non_2xx: int = 0
    skipped: str | None = None

    @property
    def p99_ratio(self) -> float:
        """p99 at the last probe over p99 at the first probe past the first mark."""
        return self.probes[-1].p99_ms / self.probes[1].p99_ms if len(self.probes) > 2 else 0.0

    @property
    def rss_growth_mb_per_million(self) -> float:
        """Serve-process RSS growth from the first mark's probe to the last, per million calls."""
        if len(self.probes) < 3:
            return 0.0
        a, b = self.probes[1], self.probes[-1]
        return (b.rss_mb - a.rss_mb) / max(1, b.calls - a.calls) * 1e6

    @property
    def store_mb_per_million(self) -> float:
        """Size of the SQLite store per million records."""
        return self.store_mb / max(1, self.calls) * 1e6

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {**asdict(self), "p99_ratio": self.p99_ratio,
                "rss_growth_mb_per_million": self.rss_growth_mb_per_million,
                "store_mb_per_million": self.store_mb_per_million}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)] if m else 0.0


def _wrk(url: str, connections: int, seconds: int, script: str) -> tuple[dict[str, float], int]:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script, url],
                         check=True, capture_output=True, text=True, timeout=seconds + 60).stdout
    got = {q: _ms(m.group(1)) for q in ("50", "90", "99")
           if (m := re.search(rf"^\s+{q}%\s+(\S+)", out, re.M))}
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    got["rps"] = float(rps.group(1)) if rps else 0.0
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return got, int(non2xx.group(1)) if non2xx else 0


def _calls(url: str) -> int:
    with urllib.request.urlopen(f"{url}/stats", timeout=30) as r:
        return int(json.load(r)["summary"]["calls"])


def _rss(proc: psutil.Process) -> tuple[float, float]:
    own = proc.memory_info().rss / 2**20
    kids = 0.0
    for p in proc.children(recursive=True):
        try:
            kids += p.memory_info().rss / 2**20
        except psutil.Error:
            continue
    return own, kids


def _start(target: str, records_dir: Path) -> tuple[subprocess.Popen[str], str]:
    pattern, _, queue = target.partition("-")
    argv = [sys.executable, "-m", "harness.cli", "serve", ECHO_SPEC, "--pattern", pattern,
            "--records-dir", str(records_dir)]
    if queue == "redis":
        argv += ["--profile", "daemon-redis"]  # its queue and state are Redis on 127.0.0.1:6379
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO_ROOT,
                            start_new_session=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        m = re.search(r"(http://\S+)", line)
        if m:
            return proc, m.group(1)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"harness serve --pattern {pattern} did not print its URL")


def _stop(proc: subprocess.Popen[str]) -> None:
    with_kids = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    for p in with_kids:
        if p.is_running():
            p.kill()


def _redis_up() -> bool:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        return True
    except Exception:
        return False


def soak_one(target: str, total: int, every: int, progress: bool = True) -> SoakResult:
    """Serve ``target`` (``serverless``, ``container``, ``daemon``, ``daemon-redis``) for ``total`` calls."""
    res = SoakResult(target)
    if target == "daemon-redis" and not _redis_up():
        res.skipped = f"no Redis at {REDIS_URL}"
        return res
    with tempfile.TemporaryDirectory(prefix="harness-soak-") as tmp:
        records_dir = Path(tmp) / "runs"
        script = str(Path(tmp) / "post.lua")
        Path(script).write_text(_WRK_LUA)
        t0 = time.monotonic()
        proc, url = _start(target, records_dir)
        try:
            server = psutil.Process(proc.pid)
            invoke = f"{url}/invoke"
            _wrk(invoke, 8, 2, script)  # warm-up: instances started, replicas up

            def probe(rps: float) -> None:
                got, bad = _wrk(invoke, 1, PROBE_S, script)
                res.non_2xx += bad
                calls = _calls(url)
                own, kids = _rss(server)
                res.probes.append(Probe(calls, got.get("50", 0.0), got.get("90", 0.0), got.get("99", 0.0),
                                        round(own, 1), round(kids, 1), round(rps)))
                if progress:
                    print(f"  soak {target}: {calls:,} calls, p50 {got.get('50', 0):.2f} ms, p99 "
                          f"{got.get('99', 0):.2f} ms, RSS {own:.0f} MB (+{kids:.0f} MB instances), "
                          f"{rps:,.0f} req/s", file=sys.stderr, flush=True)

            probe(0.0)
            served, mark, rps = _calls(url), every, 2000.0
            while served < total:
                seconds = int(max(2, min(60, (min(mark, total) - served) / max(rps, 100.0))))
                got, bad = _wrk(invoke, 8, seconds, script)
                res.non_2xx += bad
                rps = got["rps"] or rps
                served = _calls(url)
                if served >= mark or served >= total:
                    probe(rps)
                    served = res.probes[-1].calls
                    while mark <= served:
                        mark += every
        finally:
            _stop(proc)
        res.wall_s = time.monotonic() - t0
        res.calls = res.probes[-1].calls if res.probes else 0
        stores = list(records_dir.glob("*.sqlite"))
        res.store_mb = sum(p.stat().st_size for p in stores) / 2**20
        t1 = time.monotonic()
        out = Path(tmp) / "report.json"
        subprocess.run([sys.executable, "-m", "harness.cli", "report", str(records_dir), "--no-records",
                        "--out", str(out)], check=True, capture_output=True, cwd=REPO_ROOT, timeout=1800)
        res.report_s = time.monotonic() - t1
        summaries = json.loads(out.read_text())["summaries"]
        res.reported_calls = sum(int(s["calls"]) for s in summaries.values())
    return res


def soak(http_calls: int, daemon_calls: int, progress: bool = True) -> dict[str, SoakResult]:
    """Every soak target; probes every tenth of its total."""
    out: dict[str, SoakResult] = {}
    for target in ("serverless", "container"):
        out[target] = soak_one(target, http_calls, http_calls // 10, progress)
    for target in ("daemon", "daemon-redis"):
        out[target] = soak_one(target, daemon_calls, daemon_calls // 10, progress)
    return out
