"""Gateway streams against real deployments: SSE resume with Last-Event-ID (httpx-sse), keep-alives, and the
WebSocket route delivering the same events in the same order (websockets client), for every pattern."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse
from websockets.sync.client import connect as ws_connect

import harness
from emulators.gateway import GatewayOptions
from emulators.profiles import IMPLEMENTED_PATTERNS

pytestmark = [pytest.mark.integration, pytest.mark.both_loops]  # the engine runs on either loop

EMITTER = f"{Path(__file__).resolve().parents[2] / 'fixtures' / 'agents' / 'emitter.py'}:agent"
TASK = {"n": 6, "every": 1}  # six events, one platform second apart (10 ms wall at time_scale 0.01)


def _wait_done(c: httpx.Client, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        body: dict[str, Any] = c.get(f"/tasks/{task_id}").json()
        if body["result"] is not None:
            return body
        time.sleep(0.02)
    raise AssertionError("the task did not finish")


@pytest.mark.parametrize("pattern", IMPLEMENTED_PATTERNS)
def test_sse_reconnect_with_last_event_id_misses_no_event(pattern: str) -> None:
    """A client that drops after two events and reconnects with Last-Event-ID gets every later event once."""
    with harness.deploy(EMITTER, pattern, time_scale=0.01, timeout_s=60) as d, \
            httpx.Client(base_url=d.url, timeout=20) as c:
        task_id = c.post("/tasks", json=TASK).json()["task_id"]
        seen: list[tuple[int, str, Any]] = []
        with connect_sse(c, "GET", f"/tasks/{task_id}/events") as source:
            for e in source.iter_sse():
                seen.append((int(e.id), e.event, json.loads(e.data)))
                if len(seen) == 2:
                    break  # leaves the with-block: the connection is closed mid-stream
        time.sleep(0.03)  # events go on being emitted while no client listens
        last = str(seen[-1][0])
        with connect_sse(c, "GET", f"/tasks/{task_id}/events", headers={"Last-Event-ID": last}) as source:
            seen += [(int(e.id), e.event, json.loads(e.data)) for e in source.iter_sse()]
        final = _wait_done(c, task_id)

    assert [i for i, _, _ in seen] == list(range(7))  # 0-5 the events, 6 the result: no gap, no repeat
    assert [data for _, kind, data in seen if kind == "progress"] == final["events"]
    assert seen[-1][1] == "result" and seen[-1][2]["output"] == {"events": 6}


@pytest.mark.parametrize("pattern", IMPLEMENTED_PATTERNS)
def test_websocket_receives_the_same_events_in_the_same_order(pattern: str) -> None:
    """/tasks/{id}/ws sends the same ids, events and result as the SSE stream of the same task, then closes."""
    with harness.deploy(EMITTER, pattern, time_scale=0.01, timeout_s=60) as d, \
            httpx.Client(base_url=d.url, timeout=20) as c:
        accepted = c.post("/tasks", json=TASK).json()
        with ws_connect(accepted["ws_url"], open_timeout=10) as ws:
            messages = [json.loads(m) for m in ws]  # iteration ends when the server closes
        with connect_sse(c, "GET", f"/tasks/{accepted['task_id']}/events") as source:
            sse = [(int(e.id), e.event, json.loads(e.data)) for e in source.iter_sse()]
        with ws_connect(accepted["ws_url"] + "?after=3", open_timeout=10) as ws:
            resumed = [json.loads(m) for m in ws]

    assert [(m["id"], m["type"], m["data"]) for m in messages] == sse
    assert [m["type"] for m in messages] == ["progress"] * 6 + ["result"]
    assert [m["id"] for m in resumed] == [4, 5, 6]


def test_sse_sends_keepalives_while_the_agent_is_quiet() -> None:
    """Between events the stream carries ': keep-alive' comments every keepalive_s wall seconds."""
    opts = GatewayOptions(keepalive_s=0.05)
    with harness.deploy(EMITTER, time_scale=0.01, timeout_s=60, gateway=opts) as d, \
            httpx.Client(base_url=d.url, timeout=20) as c, \
            c.stream("POST", "/invoke/stream", json={"n": 2, "every": 30}) as resp:
        text = resp.read().decode()
        task_id = resp.headers["x-harness-task-id"]
    assert text.count(": keep-alive") >= 3
    assert text.rstrip().endswith("}") and "event: result" in text
    assert task_id


def test_python_stream_and_http_stream_share_one_task_machinery() -> None:
    """d.stream() yields the same events as the SSE route, and d.submit() ids are pollable over HTTP."""
    with harness.deploy(EMITTER, time_scale=0.01, timeout_s=60) as d, httpx.Client(base_url=d.url) as c:
        items = list(d.stream({"n": 3, "every": 0.5}))
        tid = d.submit({"n": 2, "every": 0.5})
        d.wait(tid, 20)
        polled = c.get(f"/tasks/{tid}").json()
    assert items[:3] == [{"i": i, "of": 3} for i in range(3)] and isinstance(items[3], harness.Record)
    assert polled["state"] == "succeeded" and polled["events"] == [{"i": 0, "of": 2}, {"i": 1, "of": 2}]


def test_closing_with_a_stream_open_ends_it_promptly() -> None:
    """Closing a deployment while an SSE client follows a long task cuts the stream and returns within a second."""
    import threading

    d = harness.deploy(EMITTER, time_scale=0.01, timeout_s=900)
    got: list[str] = []
    try:
        c = httpx.Client(base_url=d.url, timeout=20)
        task_id = c.post("/tasks", json={"n": 2, "every": 500}).json()["task_id"]

        def follow() -> None:
            try:
                with c.stream("GET", f"/tasks/{task_id}/events") as resp:
                    got.extend(resp.iter_lines())
            except httpx.HTTPError:
                got.append("<cut>")

        reader = threading.Thread(target=follow)
        reader.start()
        time.sleep(0.2)
    finally:
        t0 = time.monotonic()
        d.close()
        closed_in = time.monotonic() - t0
    reader.join(5)
    c.close()
    assert not reader.is_alive()
    assert closed_in < 1.0


def test_finished_tasks_expire_after_retention_and_answer_404() -> None:
    """A finished task is answered until its retention passes (or newer ones push it out), then 404."""
    echo = f"{Path(__file__).resolve().parents[2] / 'fixtures' / 'agents' / 'echo.py'}:agent"
    opts = GatewayOptions(task_retention_s=60.0, max_finished_tasks=3)
    with harness.deploy(echo, "serverless", gateway=opts) as d, httpx.Client(base_url=d.url, timeout=10) as c:
        ids = [d.submit({"i": i}) for i in range(5)]
        deadline = time.monotonic() + 20
        while c.get("/stats").json()["tasks"]["succeeded"] < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        # Five finished, three kept: the two that finished first are gone.
        codes = {t: c.get(f"/tasks/{t}").status_code for t in ids}
        assert sorted(codes.values()) == [200, 200, 200, 404, 404]
        expired = next(t for t, code in codes.items() if code == 404)
        assert "task_retention_s" in c.get(f"/tasks/{expired}").json()["error"]
        assert c.get("/stats").json()["tasks"]["succeeded"] == 5  # counts keep every task that finished
        d.advance(61)  # past the retention period (platform time)
        kept = [t for t, code in codes.items() if code == 200]
        assert [c.get(f"/tasks/{t}").status_code for t in kept] == [404, 404, 404]
        with pytest.raises(harness.ConfigError, match="kept for 60 platform seconds"):
            d.status(kept[0])
