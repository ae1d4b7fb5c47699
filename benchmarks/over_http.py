"""Warm invoke over HTTP: ``POST /invoke`` with a keep-alive client, per pattern, versus the bare endpoint.

The client is one ``httpx.Client`` (one keep-alive connection) in the main thread; the server is the
deployment's gateway in the engine's loop thread, or the bare endpoint (``bare.py``) served the same way.
Every call posts ``{}`` and is timed with ``perf_counter_ns`` around ``client.post``, after a warm-up; a
call that did not answer 200 with ``x-harness-outcome: ok`` and ``x-harness-cold-start: false`` is
counted in ``not_warm_ok``.

``http_interleaved`` serves every target at once and measures them in rounds (bare, then each pattern,
``n / rounds`` requests each, round after round), so a change in the machine's load during the run
falls on all of them alike: on these shared machines a target measured a minute after another saw a
different machine (the bare endpoint's p50 moved 1.7 -> 2.6 ms between the start and the end of one run).
"""

from __future__ import annotations

import gc
import time
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx

import harness

from . import ECHO_SPEC
from ._stats import Stats, ns_to_ms
from .bare import bare_endpoint
from .warm import PATTERN_KW

__all__ = ["HttpResult", "http_interleaved"]


@dataclass
class HttpResult:
    """Latency of the measured requests and how many were not warm successes."""

    stats: Stats
    not_warm_ok: int
    samples_ms: list[float]

    def to_json(self) -> dict[str, Any]:
        """JSON form (statistics only)."""
        return {"latency_ms": self.stats.to_json(), "not_warm_ok": self.not_warm_ok}


_HEADERS = {"content-type": "application/json"}


def _posts(client: httpx.Client, n: int, harness_headers: bool, samples: list[int]) -> int:
    """Time ``n`` posts into ``samples``; returns how many were not warm successes."""
    pc = time.perf_counter_ns
    bad = 0
    for _ in range(n):
        t0 = pc()
        r = client.post("/invoke", content=b"{}", headers=_HEADERS)
        samples.append(pc() - t0)
        if r.status_code != 200 or (harness_headers and (r.headers.get("x-harness-outcome") != "ok"
                                                          or r.headers.get("x-harness-cold-start") != "false")):
            bad += 1
    return bad


def http_interleaved(patterns: tuple[str, ...], n: int, warmup: int, rounds: int) -> dict[str, HttpResult]:
    """The bare endpoint (key ``bare``) and a deployment per pattern, all served at once, measured in rounds."""
    with ExitStack() as stack:
        urls = {"bare": stack.enter_context(bare_endpoint())}
        for p in patterns:
            urls[p] = stack.enter_context(harness.deploy(ECHO_SPEC, **PATTERN_KW[p])).url
        clients = {k: stack.enter_context(httpx.Client(base_url=u, timeout=30)) for k, u in urls.items()}
        samples: dict[str, list[int]] = {k: [] for k in urls}
        bad = dict.fromkeys(urls, 0)
        for k, c in clients.items():
            _posts(c, warmup, k != "bare", [])
        gc.collect()
        for r in range(rounds):
            share = n // rounds + (1 if r < n % rounds else 0)
            for k, c in clients.items():
                bad[k] += _posts(c, share, k != "bare", samples[k])
    out = {}
    for k, xs in samples.items():
        ms = ns_to_ms(xs)
        out[k] = HttpResult(Stats.of(ms), bad[k], ms)
    return out
