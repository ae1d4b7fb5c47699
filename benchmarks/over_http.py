"""Warm invoke over HTTP: ``POST /invoke`` with a keep-alive client, per pattern, versus the bare endpoint.

The client is one ``httpx.Client`` (one keep-alive connection) in the main thread; the server is the
deployment's gateway in the engine's loop thread, or the bare endpoint (``bare.py``) served the same way.
Every call posts ``{}`` and is timed with ``perf_counter_ns`` around ``client.post``, after a warm-up; a
call that did not answer 200 with ``x-harness-outcome: ok`` and ``x-harness-cold-start: false`` is
counted in ``not_warm_ok``. The bare endpoint runs first and last (two halves of ``n``), so a drift in
the machine's load during the run shows as a gap between its two medians (both are in the JSON).
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from typing import Any

import httpx

import harness

from . import ECHO_SPEC
from ._stats import Stats, ns_to_ms
from .bare import bare_endpoint
from .warm import PATTERN_KW

__all__ = ["HttpResult", "http_bare", "http_pattern"]


@dataclass
class HttpResult:
    """Latency of the measured requests and how many were not warm successes."""

    stats: Stats
    not_warm_ok: int
    samples_ms: list[float]

    def to_json(self) -> dict[str, Any]:
        """JSON form (statistics only)."""
        return {"latency_ms": self.stats.to_json(), "not_warm_ok": self.not_warm_ok}


def _time_posts(url: str, n: int, warmup: int, harness_headers: bool) -> HttpResult:
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(warmup):
            client.post("/invoke", content=b"{}", headers={"content-type": "application/json"})
        gc.collect()
        pc = time.perf_counter_ns
        samples: list[int] = []
        bad = 0
        headers = {"content-type": "application/json"}
        for _ in range(n):
            t0 = pc()
            r = client.post("/invoke", content=b"{}", headers=headers)
            samples.append(pc() - t0)
            if r.status_code != 200 or (harness_headers and (r.headers.get("x-harness-outcome") != "ok"
                                                              or r.headers.get("x-harness-cold-start") != "false")):
                bad += 1
    ms = ns_to_ms(samples)
    return HttpResult(Stats.of(ms), bad, ms)


def http_bare(n: int, warmup: int) -> HttpResult:
    """The floor: the bare uvicorn + starlette endpoint, one keep-alive connection."""
    with bare_endpoint() as url:
        return _time_posts(url, n, warmup, harness_headers=False)


def http_pattern(pattern: str, n: int, warmup: int) -> HttpResult:
    """``POST {d.url}/invoke`` on a deployment of the echo agent under ``pattern``."""
    with harness.deploy(ECHO_SPEC, **PATTERN_KW[pattern]) as d:
        return _time_posts(d.url, n, warmup, harness_headers=True)
