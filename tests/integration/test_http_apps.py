"""HTTP apps as agents: an ASGI app and Lambda handlers behind API Gateway, reached over real HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

import harness

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FASTAPI_APP = f"{ROOT / 'fixtures' / 'deployments' / 'fastapi' / 'app.py'}:app"
HANDLERS = ROOT / "fixtures" / "agents" / "apigw_handler.py"


def _calls(url: str) -> dict[str, Any]:
    with httpx.Client(base_url=url, timeout=30) as c:
        health = c.get("/healthz")
        item = c.get("/items/3", params={"q": "x"})
        bad = c.get("/items/notanint")
        ask = c.post("/invoke", json={"question": "hi"})
        raw = c.post("/bytes", content=b"\x00\x01\xffabc", headers={"content-type": "application/octet-stream"})
        login = c.get("/login")
        missing = c.get("/nope")
        spec = c.get("/openapi.json")
        stats = c.get("/_harness/stats")
    return {"health": health, "item": item, "bad": bad, "ask": ask, "raw": raw, "login": login,
            "missing": missing, "spec": spec, "stats": stats}


@pytest.mark.parametrize("pattern", ["container", "serverless"])
def test_a_fastapi_app_answers_its_own_routes_through_the_gateway(pattern: str) -> None:
    """Its routes, statuses, binary bodies, cookies, 404/422 and /openapi.json are the app's own."""
    with harness.deploy(FASTAPI_APP, pattern=pattern, adapter="asgi") as d:
        got = _calls(d.url)
        records = d.records()
    assert got["health"].status_code == 200 and got["health"].json()["app"] == "support-agent"
    assert got["health"].headers["x-harness-outcome"] == "ok"
    assert got["item"].json() == {"item_id": 3, "q": "x"}
    assert got["bad"].status_code == 422  # FastAPI's validation error, not the harness's
    assert got["ask"].json() == {"answer": "you asked: hi"}
    assert got["raw"].content == b"cba\xff\x01\x00" and got["raw"].headers["x-size"] == "6"
    assert got["login"].cookies.get("session") == "abc123"
    assert got["missing"].status_code == 404 and got["missing"].json() == {"detail": "Not Found"}
    assert got["spec"].json()["info"]["title"] == "support-agent"  # the app's OpenAPI, not the harness's
    assert got["stats"].status_code == 200 and got["stats"].json()["summary"]["calls"] >= 8  # the harness's, moved
    assert {r.outcome for r in records} == {"ok"}


def test_the_same_app_gives_identical_bodies_on_container_and_serverless() -> None:
    """Bodies through container and serverless are byte-identical (the patterns differ in timing and cost)."""
    bodies = {}
    for pattern in ("container", "serverless"):
        with harness.deploy(FASTAPI_APP, pattern=pattern, adapter="asgi") as d:
            got = _calls(d.url)
        bodies[pattern] = {k: (v.status_code, v.content) for k, v in got.items() if k not in ("stats", "health")}
    assert bodies["container"] == bodies["serverless"]


def test_on_container_each_replica_serves_the_fastapi_app_with_uvicorn() -> None:
    """On container each replica serves the sample with uvicorn (a socket each, lifespan once), by forwarding."""
    with harness.deploy(FASTAPI_APP, pattern="container", adapter="asgi", min_replicas=2) as d, \
            httpx.Client(base_url=d.url, timeout=30) as c:
        health = [c.get("/healthz") for _ in range(4)]
        head = c.head("/items/3")
        sockets = sorted(p.name for p in d.run_dir.glob("*.sock"))
        ask = d.invoke({"question": "hi"})
        records = d.records()
    assert sockets == ["i-0001.sock", "i-0002.sock"]
    assert {h.json()["startups"] for h in health} == {1}  # each process ran the app's lifespan startup once
    assert {h.headers["x-harness-instance"] for h in health} == {"i-0001", "i-0002"}  # both replicas served
    assert head.status_code == 405 and head.content == b""  # FastAPI's own answer to HEAD (a GET route), no body
    assert ask.ok and ask.output == {"answer": "you asked: hi"} and ask.instance_id in ("i-0001", "i-0002")
    assert len(records) == 6 and {r.outcome for r in records} == {"ok"}


def test_a_task_reaches_an_app_as_a_post_to_app_path() -> None:
    """d.invoke(task) POSTs the task as JSON to app_path; the app's JSON answer is the output."""
    with harness.deploy(FASTAPI_APP, adapter="asgi", app_path="/invoke") as d:
        ok = d.invoke({"question": "2+2?"})
        bad = d.invoke({"wrong": 1})
    assert ok.ok and ok.output == {"answer": "you asked: 2+2?"}
    assert ok.cold_start and ok.init_ms > 0  # the app's import and lifespan startup are the cold start
    assert bad.outcome == "agent_error" and "HTTP 422" in (bad.error or "")


def test_an_http_api_handler_returns_its_status_headers_and_cookies() -> None:
    """An API Gateway 2.0 handler's statusCode, headers and cookies reach a real HTTP client."""
    with harness.deploy(f"{HANDLERS}:handler", adapter="apigw-v2") as d, \
            httpx.Client(base_url=d.url, timeout=30) as c:
        r = c.post("/orders?x=1&x=2", content=b"hello", headers={"content-type": "text/plain"})
        png = c.get("/png")
        malformed = c.get("/malformed")
    assert r.status_code == 201
    assert r.headers["x-handler"] == "yes"
    assert r.json() == {"method": "POST", "path": "/orders", "body": "hello", "query": {"x": "1,2"},
                        "function": "handler"}
    assert r.headers.get_list("set-cookie") == ["a=1", "b=2; Path=/"]
    assert png.content == b"\x89PNG\r\n" and png.headers["content-type"] == "image/png"
    assert malformed.status_code == 502 and malformed.json() == {"message": "Internal server error"}
    assert "statusCode" in malformed.headers["x-harness-error"]


def test_a_rest_api_handler_gets_version_1_events() -> None:
    """An API Gateway 1.0 handler sees httpMethod/path and its multiValueHeaders come back as repeats."""
    with harness.deploy(f"{HANDLERS}:handler", adapter="apigw-v1") as d, \
            httpx.Client(base_url=d.url, timeout=30) as c:
        r = c.get("/items", params={"k": "v"})
        malformed = c.get("/malformed")
    assert r.status_code == 200 and r.json()["method"] == "GET" and r.json()["query"] == {"k": "v"}
    assert r.headers.get_list("x-multi") == ["one", "two"]
    assert malformed.status_code == 502


def test_a_plain_answer_is_inferred_as_json_by_the_http_api() -> None:
    """A 2.0 handler answering a plain dict gets API Gateway's inferred 200 JSON response."""
    with harness.deploy(f"{HANDLERS}:bare", adapter="apigw-v2") as d, \
            httpx.Client(base_url=d.url, timeout=30) as c:
        r = c.get("/anything")
    assert r.status_code == 200 and r.json() == {"hello": "/anything"}


def test_platform_failures_are_api_gateway_answers() -> None:
    """A request over the profile's request limit is 413 with API Gateway's message, named in the headers."""
    with harness.deploy(f"{HANDLERS}:handler", adapter="apigw-v2", request_limit_bytes=100) as d, \
            httpx.Client(base_url=d.url, timeout=30) as c:
        r = c.post("/big", content=b"x" * 500)
    assert r.status_code == 413 and r.json() == {"message": "Request Too Long"}
    assert r.headers["x-harness-outcome"] == "payload_too_large"


def test_the_live_dashboard_stays_under_harness_in_app_mode() -> None:
    """/_harness/dashboard and /_harness/timeline answer in app mode as in task mode."""
    with harness.deploy(FASTAPI_APP, adapter="asgi") as d, httpx.Client(base_url=d.url, timeout=30) as c:
        c.get("/healthz")
        page = c.get("/_harness/dashboard")
        points = c.get("/_harness/timeline")
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert points.status_code == 200


def test_a_manifest_whose_image_runs_uvicorn_deploys_the_app_under_uvicorn(tmp_path: Path) -> None:
    """A Deployment without a command takes the Dockerfile's `uvicorn app:app`: the app answers on container."""
    for name in ("app.py", "Dockerfile"):
        (tmp_path / name).write_text((ROOT / "fixtures" / "deployments" / "fastapi" / name).read_text())
    (tmp_path / "deployment.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: support}\nspec:\n  replicas: 1\n"
        "  template:\n    spec:\n      containers:\n        - name: app\n          image: support:latest\n")
    with harness.deploy(source=tmp_path / "deployment.yaml") as d:
        with httpx.Client(base_url=d.url, timeout=30) as c:
            health, item = c.get("/healthz"), c.get("/items/3", params={"q": "x"})
        records = d.records()
    assert health.json()["app"] == "support-agent" and item.json() == {"item_id": 3, "q": "x"}
    assert {r.pattern for r in records} == {"container"} and len(records) == 2
