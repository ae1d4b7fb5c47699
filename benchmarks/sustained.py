"""Sustained load: does the harness's tail latency hold as the records of a long load pile up?

Three targets, one after the other, each loaded for ``duration_s`` by the throughput group's load tool
(``wrk -t1 -c8``): the bare endpoint (the floor), serverless as shipped, and serverless with
``HARNESS_GC_FREEZE=0`` (the collector's default behaviour, as before ``emulators/heap.py``). Each
serverless deployment is fresh, so its records start at zero. While each runs, ``gc.callbacks`` times
this process's generation-2 collections (the server is in this process).

Short runs hide the problem: the pauses grow with the records kept, so the full size loads each target
for 15 s.
"""

from __future__ import annotations

import gc
import os
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


@contextmanager
def _env(name: str, value: str | None) -> Iterator[None]:
    old = os.environ.get(name)
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def sustained(duration_s: float) -> dict[str, SustainedResult]:
    """``bare``, ``serverless`` and ``serverless_no_freeze``, each loaded for ``duration_s`` on its own."""
    out: dict[str, SustainedResult] = {}
    for key, target, freeze in (("bare", "bare", None), ("serverless", "serverless", None),
                                ("serverless_no_freeze", "serverless", "0")):
        # The setting is read when the process's first deployment opens: set it before this one does.
        with _env("HARNESS_GC_FREEZE", freeze), served(target) as (url, deployment):
            del deployment  # only the context manager holds it: its records go when it closes
            load(f"{url}/invoke", 1.0)  # warm-up (starts the instances); its records count, as in a real run
            with _gen2_pauses() as pauses:
                res = load(f"{url}/invoke", duration_s)
            out[key] = SustainedResult(res, list(pauses))
        gc.collect()  # the next target starts on a heap without this one's leftovers
    return out
