"""The gateway's ``/_harness/`` routes against real deployments: the timeline fills as calls arrive, the charts
draw it, the dashboard page links them, and the container and daemon gauges (desired replicas, queue depth)
come through."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

import harness

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ECHO = f"{ROOT / 'fixtures' / 'agents' / 'echo.py'}:agent"


def _burst(url: str, n: int) -> None:
    with httpx.Client(timeout=30) as c, ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: c.post(f"{url}/invoke", json={"i": i}), range(n)))


@pytest.mark.parametrize("pattern", ["serverless", "container", "daemon"])
def test_timeline_and_charts_follow_the_calls(pattern: str) -> None:
    """After a burst, the timeline's last point counts every call and the charts draw every figure."""
    with harness.deploy(ECHO, pattern, time_scale=0.01, llm="off") as d:
        first = httpx.get(f"{d.url}/_harness/timeline").json()["patterns"][pattern]
        assert first["interval_s"] == 0.5
        _burst(d.url, 24)
        time.sleep(0.6)  # at least one point sampled on its own while the calls finished
        doc = httpx.get(f"{d.url}/_harness/timeline", params={"fresh": "1"}).json()["patterns"][pattern]
        assert len(doc["points"]) >= 3
        last = doc["points"][-1]  # fresh=1: taken now, after every call
        assert last["calls"] == 24 and last["outcomes"] == {"ok": 24}
        assert last["instances"] >= 1 and last["compute_usd"] > 0
        assert (last["desired"] is not None) == (pattern == "container")
        assert (last["queue_depth"] is not None) == (pattern != "serverless")
        newer = httpx.get(f"{d.url}/_harness/timeline", params={"since": str(last["i"])}).json()
        assert all(p["i"] > last["i"] for p in newer["patterns"][pattern]["points"])
        charts = httpx.get(f"{d.url}/_harness/charts").json()
        assert charts["patterns"] == [pattern]
        drawn = dict(re.findall(r'data-chart="(\w+)" data-pattern="\w+" data-points="(\d+)"', charts["html"]))
        expected = {"rate", "latency", "instances", "cold", "cost"} | ({"queue"} if pattern != "serverless" else set())
        assert {k for k, n in drawn.items() if int(n) > 0} == expected
        page = httpx.get(f"{d.url}/_harness/dashboard")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert '"charts"' in page.text and "harness-pattern" in page.text
