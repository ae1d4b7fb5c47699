"""Sustained load: does the harness's tail latency hold as a long load's records pile up?

Two targets, one after the other, each loaded for ``duration_s`` by the throughput group's load tool
(``wrk -t1 -c8``): the bare endpoint (the floor) and serverless as shipped. The serverless deployment is
fresh, so its records start at zero. While each runs, ``gc.callbacks`` times this process's generation-2
collections (the server is in this process). When every record stayed in memory, these pauses grew with
the load's length (up to 930 ms after 75,000 calls) and ``emulators/heap.py`` froze the records out of
the collector's scans; records now go to the store and memory is bounded, so the freeze is gone (it cost
more than it saved: p99 2.4-3.3 ms with it, 1.0-1.4 ms without, serverless under ``harness serve``) and
this group is there to catch the pauses' return. The soak group (``benchmarks/soak.py``) runs far longer.
"""
from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from .throughput import LoadResult, load, served

__all__ = ["SustainedResult", "sustained"]


@dataclass
class SustainedResult:
    """One target's long run: the load tool's figures and the generation-2 pauses meanwhile."""

    load: LoadResult
    gen2_pauses_ms: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"load": asdict(self.load), "gen2_pauses_ms": [round(p, 2) for p in self.gen2_pauses_ms]}


@contextmanager
def _gen2_pauses() -> Iterator[list[float]]:
    pauses: list[float] = []
    began = [0.0]

    def timed(phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            began[0] = time.perf_counter()
        else:
            pauses.append((time.perf_counter() - began[0]) * 1000.0)

    gc.callbacks.append(timed)
    try:
        yield pauses
    finally:
        gc.callbacks.remove(timed)


def sustained(duration_s: float) -> dict[str, SustainedResult]:
    """``bare`` and ``serverless``, each loaded for ``duration_s`` on its own."""
    out: dict[str, SustainedResult] = {}
    for key, target in (("bare", "bare"), ("serverless", "serverless")):
        with served(target) as (url, deployment):
            del deployment  # only the context manager holds it: its records go when it closes
            load(f"{url}/invoke", 1.0)  # warm-up (starts the instances); its records count, as in a real run
            with _gen2_pauses() as pauses:
                res = load(f"{url}/invoke", duration_s)
            out[key] = SustainedResult(res, list(pauses))
        gc.collect()  # the next target starts on a heap without this one's leftovers
    return out
