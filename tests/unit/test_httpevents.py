"""API Gateway proxy events and answers, and the ASGI bridge, as pure functions."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from emulators.runtime.agent import detect_adapter
from emulators.runtime.httpevents import is_event, proxy_response, request_event, run_asgi, task_event


def test_a_version_2_event_has_the_http_api_shape() -> None:
    """rawPath, rawQueryString, joined headers, cookies apart, a text body as is."""
    ev = request_event("2.0", "POST", "/a/b", "x=1&x=2", [("Content-Type", "text/plain"), ("Cookie", "s=1; t=2"),
                                                        ("X-A", "1"), ("X-A", "2")], b"hi")
    assert ev["version"] == "2.0" and ev["rawPath"] == "/a/b" and ev["rawQueryString"] == "x=1&x=2"
    assert ev["requestContext"]["http"]["method"] == "POST"
    assert ev["headers"]["x-a"] == "1,2" and "cookie" not in ev["headers"] and ev["cookies"] == ["s=1", "t=2"]
    assert ev["queryStringParameters"] == {"x": "1,2"}
    assert ev["body"] == "hi" and ev["isBase64Encoded"] is False
    assert is_event(ev)


def test_a_version_1_event_has_the_rest_api_shape_and_binary_is_base64() -> None:
    """httpMethod, path, multi-value headers and query, a binary body base64-encoded."""
    ev = request_event("1.0", "PUT", "/p", "k=a&k=b", [("content-type", "application/octet-stream")], b"\x00\xff")
    assert ev["httpMethod"] == "PUT" and ev["path"] == "/p"
    assert ev["multiValueQueryStringParameters"] == {"k": ["a", "b"]} and ev["queryStringParameters"] == {"k": "b"}
    assert ev["isBase64Encoded"] and base64.b64decode(ev["body"]) == b"\x00\xff"
    assert not is_event({"question": "hi"})


def test_answers_map_back_as_api_gateway_maps_them() -> None:
    """statusCode/headers/multiValueHeaders/cookies/base64 come back; 2.0 infers plain answers, 1.0 refuses."""
    status, headers, body = proxy_response("2.0", {"statusCode": 201, "headers": {"a": "1"}, "cookies": ["c=1"],
                                                   "body": base64.b64encode(b"\x01").decode(),
                                                   "isBase64Encoded": True})
    assert (status, body) == (201, b"\x01") and ("a", "1") in headers and ("set-cookie", "c=1") in headers
    assert proxy_response("2.0", {"hello": 1}) == (200, [("content-type", "application/json")], b'{"hello": 1}')
    assert isinstance(proxy_response("1.0", {"hello": 1}), str)
    assert isinstance(proxy_response("2.0", {"statusCode": "x"}), str)
    assert isinstance(proxy_response("2.0", {"statusCode": 200, "body": 5}), str)
    multi = proxy_response("1.0", {"statusCode": 200, "multiValueHeaders": {"x": ["1", "2"]}, "headers": {"x": "9"}})
    assert not isinstance(multi, str) and multi[1] == [("x", "1"), ("x", "2")]


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    message = await receive()
    await send({"type": "http.response.start", "status": 202,
                "headers": [(b"content-type", b"text/plain"), (b"set-cookie", b"k=v")]})
    await send({"type": "http.response.body",
                "body": f"{scope['method']} {scope['path']} {scope['query_string'].decode()} ".encode()
                + message["body"]})


def test_run_asgi_turns_an_event_into_one_request_and_back() -> None:
    """The app sees method, path, query and body; its status, headers and cookies make the answer."""
    ev = task_event("2.0", {"q": 1}, "/run")
    answer = asyncio.run(run_asgi(_app, ev))
    assert answer["statusCode"] == 202 and answer["body"] == 'POST /run  {"q": 1}'
    assert answer["cookies"] == ["k=v"] and answer["headers"] == {"content-type": "text/plain"}
    v1 = asyncio.run(run_asgi(_app, request_event("1.0", "GET", "/x", "a=1", [], b""), "1.0"))
    assert v1["body"] == "GET /x a=1 " and v1["multiValueHeaders"]["set-cookie"] == ["k=v"]


def test_an_asgi_app_is_detected() -> None:
    """app(scope, receive, send) coroutines and objects are 'asgi'; handlers and agents keep theirs."""

    class App:
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None: ...

    def handler(event: Any, context: Any) -> None: ...

    assert detect_adapter(_app) == "asgi" and detect_adapter(App()) == "asgi"
    assert detect_adapter(handler) == "lambda"
