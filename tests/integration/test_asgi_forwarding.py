"""An ASGI app on the container pattern: real uvicorn in each replica, HTTP forwarded unchanged and streamed."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets.sync.client
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

import harness

# The relay's own I/O (streams, failures, WebSockets) runs on both loops; routing, limits and accounting are
# the container's, whose suites already do, so those run once on the default loop (the suite stays fast).
pytestmark = pytest.mark.integration

APP = f"{Path(__file__).resolve().parents[2] / 'fixtures' / 'agents' / 'asgi_streaming.py'}:app"


def _in_threads(n: int, fn: Any) -> list[Any]:
    """``fn(i)`` in ``n`` threads started together; their results in order."""
    out: list[Any] = [None] * n
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        barrier.wait(timeout=30)
        out[i] = fn(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out


@pytest.mark.both_loops
@pytest.mark.parametrize("sse", [False, True], ids=["streaming-response", "sse"])
def test_a_streamed_body_arrives_chunk_by_chunk(sse: bool) -> None:
    """Each chunk reaches the client while the app still sleeps before the next; the record is one ok call."""
    with harness.deploy(APP, pattern="container", adapter="asgi") as d, \
            httpx.Client(base_url=d.url, timeout=60) as c:
        arrivals: list[tuple[float, bytes]] = []
        t0 = time.monotonic()
        with c.stream("GET", "/stream", params={"n": 3, "pause": 1.0, "sse": int(sse)}) as r:
            assert r.status_code == 200
            for chunk in r.iter_raw():
                arrivals.append((time.monotonic() - t0, chunk))
        records = d.records()
    expected = [b"data: %d\n\n" % i if sse else b"chunk %d\n" % i for i in range(3)]
    assert b"".join(c for _, c in arrivals) == b"".join(expected)
    assert [c for _, c in arrivals] == expected  # one read per chunk: nothing was buffered
    # The app sleeps 1 s between chunks (2 s in all): the first came well before the last was written.
    assert arrivals[-1][0] - arrivals[0][0] >= 1.0
    assert r.headers["content-type"].startswith("text/event-stream" if sse else "text/plain")
    assert [rec.outcome for rec in records] == ["ok"]
    assert records[0].latency_ms >= 1900 and records[0].instance_id


@pytest.mark.both_loops
def test_a_request_and_its_answer_pass_unchanged() -> None:
    """Method, raw path, query, repeated headers and binary body reach the app; status, headers, both cookies return."""
    body = bytes(range(256))
    with harness.deploy(APP, pattern="container", adapter="asgi") as d, \
            httpx.Client(base_url=d.url, timeout=60) as c:
        r = c.put("/echo/a%20b/c?x=1&x=2&y=", content=body,
                  headers=[("x-custom", "one"), ("x-custom", "two"), ("content-type", "application/x-thing")])
        cookies = c.get("/cookies")
        missing = c.get("/nope")
    got = r.json()
    assert r.status_code == 201 and r.headers["x-echo"] == "yes"
    assert got["method"] == "PUT" and got["path"] == "/echo/a%20b/c" and got["query"] == "x=1&x=2&y="
    assert bytes.fromhex(got["body"]) == body
    sent = [h for h in got["headers"] if h[0] in ("x-custom", "content-type", "content-length")]
    assert sent == [["x-custom", "one"], ["x-custom", "two"], ["content-type", "application/x-thing"],
                    ["content-length", "256"]]
    assert cookies.headers.get_list("set-cookie") == ["a=1; Path=/; SameSite=lax", "b=2; Path=/x; SameSite=lax"]
    assert missing.status_code == 404 and missing.text == "Not Found"  # Starlette's own 404
    assert r.headers["x-harness-outcome"] == "ok" and r.headers["x-harness-instance"].startswith("i-")


@pytest.mark.both_loops
def test_a_request_over_the_timeout_is_a_504_and_a_gateway_timeout_record() -> None:
    """Past the ingress limit the caller gets 504 and the record says gateway_timeout; the replica is not killed."""
    with harness.deploy(APP, pattern="container", adapter="asgi", timeout_s=1.0) as d, \
            httpx.Client(base_url=d.url, timeout=60) as c:
        pid = c.get("/pid").json()["pid"]
        r = c.get("/slow", params={"s": 4})
        after = c.get("/pid").json()["pid"]
        records = d.records()
    assert r.status_code == 504 and r.json() == {"message": "Endpoint request timed out"}
    assert r.headers["x-harness-outcome"] == "gateway_timeout"
    assert [rec.outcome for rec in records] == ["ok", "gateway_timeout", "ok"]
    assert records[1].latency_ms == pytest.approx(1000.0)
    assert after == pid  # the same process served on: only the caller gave up


@pytest.mark.both_loops
def test_a_stream_silent_past_the_limit_is_cut_with_a_gateway_timeout_record() -> None:
    """Mid-stream the ingress limit is the longest silence between chunks: past it the client's stream is cut."""
    with harness.deploy(APP, pattern="container", adapter="asgi", timeout_s=1.0) as d, \
            httpx.Client(base_url=d.url, timeout=60) as c:
        got: list[bytes] = []
        with pytest.raises(httpx.RemoteProtocolError), \
                c.stream("GET", "/stream", params={"n": 3, "pause": 3}) as r:
            got.extend(r.iter_raw())
        records = _records(d, 1)
    assert r.status_code == 200 and got == [b"chunk 0\n"]
    assert [rec.outcome for rec in records] == ["gateway_timeout"]
    assert "silent" in (records[0].error or "")


def test_a_client_that_leaves_a_stream_frees_the_replica_s_slot() -> None:
    """Closing an endless stream closes the app's side: its one slot is free for the next request (no 429)."""
    with harness.deploy(APP, pattern="container", adapter="asgi", min_replicas=1, max_replicas=1,
                        replica_concurrency=1, replica_queue_limit=0) as d, \
            httpx.Client(base_url=d.url, timeout=60) as c:
        with c.stream("GET", "/stream", params={"n": 1000, "pause": 0.2}) as r:
            first = next(r.iter_raw())
        records = _records(d, 1)
        after = c.get("/pid")
    assert first == b"chunk 0\n" and records[0].outcome == "ok"
    assert records[0].latency_ms < 60_000  # ended with the client, not after the app's 200 s of chunks
    assert after.status_code == 200


@pytest.mark.both_loops
def test_a_replica_killed_mid_request_gives_502_and_a_crash_record() -> None:
    """SIGKILL of the replica's process during a request answers 502; the replica is restarted."""
    with harness.deploy(APP, pattern="container", adapter="asgi", restart_backoff_s=0.1) as d, \
            httpx.Client(base_url=d.url, timeout=60) as c:
        pid = c.get("/pid").json()["pid"]
        answers: list[httpx.Response] = []
        slow = threading.Thread(target=lambda: answers.append(c.get("/slow", params={"s": 30})))
        slow.start()
        deadline = time.monotonic() + 20
        while not any(r.running for r in d._async._emulator.replicas):  # the slow request holds the replica's slot
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)  # and has reached the app
        os.kill(pid, signal.SIGKILL)
        slow.join(60)
        later = c.get("/pid")
        records = d.records()
    assert answers[0].status_code == 502 and answers[0].json() == {"message": "Internal server error"}
    assert answers[0].headers["x-harness-outcome"] == "crash"
    assert [rec.outcome for rec in records] == ["ok", "crash", "ok"]
    assert "ended mid-request" in (records[1].error or "")
    assert later.status_code == 200 and later.json()["pid"] != pid  # a new process took the replica's place


def test_requests_beyond_a_replicas_slots_queue_then_are_throttled() -> None:
    """One slot and one queue place per replica, one replica: one runs, one queues behind it, the third is 429."""
    with harness.deploy(APP, pattern="container", adapter="asgi", min_replicas=1, max_replicas=1,
                        replica_concurrency=1, replica_queue_limit=1) as d, \
            httpx.Client(base_url=d.url, timeout=60) as c:
        answers = _in_threads(3, lambda i: c.get("/slow", params={"s": 3}))
        records = d.records()
    assert sorted(a.status_code for a in answers) == [200, 200, 429]
    assert sorted(r.outcome for r in records) == ["ok", "ok", "throttled"]
    queued = max((r for r in records if r.ok), key=lambda r: r.latency_ms)
    assert queued.latency_ms >= 5000  # it waited for the first (3 s) before its own 3 s


def test_requests_beyond_the_slots_start_replicas_on_cloud_run() -> None:
    """Cloud Run's front door (one slot per instance, scale from zero) starts a replica per waiting request."""
    with harness.deploy(APP, pattern="container", profile="gcp-cloud-run", adapter="asgi", replica_concurrency=1,
                        max_replicas=3) as d, httpx.Client(base_url=d.url, timeout=120) as c:
        answers = _in_threads(3, lambda i: c.get("/slow", params={"s": 2}))
        records = d.records()
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert len({a.json()["pid"] for a in answers}) == 3  # three replica processes served them
    assert len({r.instance_id for r in records}) == 3 and all(r.cold_start for r in records)


@pytest.mark.parametrize("enforcement", ["cgroup", "poll"])
def test_an_app_over_its_memory_cap_is_killed_and_the_request_fails_oom(enforcement: str,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The replica process stays under the instance's memory watch (cgroup or RSS poll): past memory_mb, 502 oom."""
    if enforcement == "poll":
        monkeypatch.setenv("HARNESS_NO_CGROUP", "1")
    with harness.deploy(APP, pattern="container", adapter="asgi", memory_mb=160) as d, \
            httpx.Client(base_url=d.url, timeout=60) as c:
        r = c.get("/hog", params={"mb": 400})
        records = d.records()
        used = d._async._emulator.pool.memory_enforcement
    assert used == enforcement
    assert r.status_code == 502
    assert [rec.outcome for rec in records] == ["oom"]


def test_the_app_s_real_time_is_platform_time_on_a_scaled_clock() -> None:
    """At time_scale=0.01 an app's real second is a platform second: no 504 at 0.6 s of a 60 s limit."""
    with harness.deploy(APP, pattern="container", adapter="asgi", time_scale=0.01, timeout_s=60) as d, \
            httpx.Client(base_url=d.url, timeout=60) as c:
        r = c.get("/slow", params={"s": 1})
        records = d.records()
    assert r.status_code == 200 and [rec.outcome for rec in records] == ["ok"]
    assert 1000 <= records[0].latency_ms < 30_000  # real time 1:1, not divided by the scale


def test_a_failed_lifespan_startup_fails_the_replica_s_start_with_the_app_s_traceback(tmp_path: Path) -> None:
    """uvicorn runs the app's lifespan startup in the cold start: its failure is an init error naming the app's."""
    app = tmp_path / "badlife.py"
    app.write_text("from contextlib import asynccontextmanager\nfrom starlette.applications import Starlette\n\n"
                   "@asynccontextmanager\nasync def lifespan(app):\n    raise RuntimeError('no database')\n"
                   "    yield\n\napp = Starlette(lifespan=lifespan)\n")
    with pytest.raises(harness.InstanceStartError) as info:
        harness.deploy(f"{app}:app", pattern="container", adapter="asgi")
    assert "lifespan startup failed" in str(info.value) and "RuntimeError: no database" in str(info.value)


def test_a_task_is_forwarded_as_a_post_to_app_path() -> None:
    """d.invoke(task) on container reaches the app's uvicorn as a JSON POST to app_path."""
    with harness.deploy(APP, pattern="container", adapter="asgi", app_path="/echo/task") as d:
        r = d.invoke({"q": "hi"})
        records = d.records()
    assert r.ok and r.output["method"] == "POST" and r.output["path"] == "/echo/task"
    assert bytes.fromhex(r.output["body"]) == b'{"q":"hi"}'
    assert r.instance_id and [rec.outcome for rec in records] == ["ok"]


@pytest.mark.both_loops
def test_a_websocket_is_relayed_to_the_app_both_ways() -> None:
    """Handshake (query, header, subprotocol), text and binary messages and the app's close pass through; one record."""
    with harness.deploy(APP, pattern="container", adapter="asgi") as d:
        url = d.url.replace("http", "ws", 1)
        with websockets.sync.client.connect(f"{url}/ws?room=7", additional_headers={"x-token": "t1"},
                                            subprotocols=[Subprotocol("chat.v1")], open_timeout=30) as ws:
            hello = json.loads(ws.recv(timeout=30))
            ws.send("hi")
            text = ws.recv(timeout=30)
            ws.send(b"\x00\x01\x02")
            data = ws.recv(timeout=30)
            protocol = ws.subprotocol
            ws.send("bye")
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=30)
        with pytest.raises(InvalidStatus):
            websockets.sync.client.connect(f"{url}/ws-refuse", open_timeout=30)
        records = _records(d, 2)
    assert hello["hello"] == "room=7" and hello["x-token"] == "t1" and protocol == "chat.v1"
    assert text == "echo: hi" and data == b"\x02\x01\x00"
    assert info.value.rcvd is not None and (info.value.rcvd.code, info.value.rcvd.reason) == (4001, "bye from the app")
    assert [r.outcome for r in records] == ["ok", "ok"] and records[0].instance_id


def _records(d: Any, n: int) -> list[Any]:
    """The deployment's records once there are ``n`` (a WebSocket's is added just after the client sees its close)."""
    deadline = time.monotonic() + 20
    while len(d.records()) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return list(d.records())


@pytest.mark.both_loops
def test_a_websocket_whose_replica_dies_closes_1011_with_a_crash_record() -> None:
    """SIGKILL of the replica under an open WebSocket closes the client's side with 1011; the record is crash."""
    with harness.deploy(APP, pattern="container", adapter="asgi") as d:
        with websockets.sync.client.connect(d.url.replace("http", "ws", 1) + "/ws", open_timeout=30) as ws:
            pid = json.loads(ws.recv(timeout=30))["pid"]
            os.kill(pid, signal.SIGKILL)
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=30)
        records = _records(d, 1)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1011
    assert [r.outcome for r in records] == ["crash"]


def test_no_process_remains_after_close_with_a_request_in_flight(harness_procs: Any) -> None:
    """Closing with a forwarded request in flight ends every replica process (uvicorn runs inside them)."""
    before = harness_procs.own_zygote_pids()
    d = harness.deploy(APP, pattern="container", adapter="asgi", min_replicas=2)
    try:
        run_id = harness_procs.new_zygote(before).run_id
        slow = threading.Thread(target=lambda: httpx.get(f"{d.url}/slow?s=30", timeout=60), daemon=True)
        slow.start()
        time.sleep(1.0)
        run_dir = d.run_dir
        assert len(list(run_dir.glob("*.sock"))) == 2  # each replica's uvicorn listens on its own socket
    finally:
        d.close()
    assert harness_procs.wait_run_gone(run_id) == []
    assert not run_dir.exists()  # the sockets went with the run directory


def test_an_apps_llm_call_is_in_its_record_at_platform_length_on_container_as_on_serverless() -> None:
    """The app's SDK call lands in the request's record (calls, tokens, cost) and counts its platform wait."""
    records = {}
    # Container at time_scale=0.01, serverless on the virtual clock: at 0.01 the API Gateway's 29 s are 0.29 s of
    # wall time, which the SDK's real setup in a cold instance passes (its real time is not scaled).
    for pattern, kw in (("container", {"time_scale": 0.01}), ("serverless", {"memory_mb": 1769, "timeout_s": 30})):
        with harness.deploy(APP, pattern=pattern, adapter="asgi", **kw) as d, \
                httpx.Client(base_url=d.url, timeout=60) as c:
            c.post("/ask")  # the cold start and the SDK's import out of the way
            assert c.post("/ask").status_code == 200
            records[pattern] = d.records()[-1]
    box, fn = records["container"], records["serverless"]
    assert box.llm_calls == fn.llm_calls == 1 and box.input_tokens == fn.input_tokens > 0
    assert box.cost.llm_usd == pytest.approx(fn.cost.llm_usd) and box.cost.llm_usd > 0
    # At time_scale=0.01 the model's answer took a hundredth of its platform length in wall time: the
    # record counts the platform length, as the handler's does on serverless.
    assert box.llm_ms == pytest.approx(fn.llm_ms) and box.llm_ms > 100
    assert box.latency_ms >= box.llm_ms and box.duration_ms >= box.llm_ms
