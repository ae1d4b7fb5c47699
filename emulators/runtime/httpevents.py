"""HTTP requests as API Gateway proxy events, proxy responses as HTTP, and ASGI apps behind them.

API Gateway hands a Lambda function one JSON event per HTTP request and turns the function's answer back
into HTTP. Two shapes exist: the REST API's payload format 1.0 (``httpMethod``, ``path``,
``multiValueHeaders``...) and the HTTP API's 2.0 (``rawPath``, ``rawQueryString``, ``cookies``,
``requestContext.http``...). The gateway builds them here from the request it received (``request_event``)
and maps the function's answer back (``proxy_response``), as API Gateway does, including 2.0's inference
when the function returns a plain value instead of ``{"statusCode": ...}``.

ASGI apps (FastAPI, Starlette) are deployed behind the same events, as Lambda adapters such as Mangum do:
``run_asgi`` turns an event into one ASGI ``http`` request, runs the app and collects its response into the
proxy response. A plain task (``d.invoke({...})``) reaches an app as a ``POST`` of the task as JSON to a
configurable path; the app's JSON answer is the output.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

__all__ = ["EVENT_VERSIONS", "HttpRequest", "is_event", "lifespan_startup", "proxy_response", "request_event",
           "run_asgi", "sqs_record", "sqs_task_event", "task_event"]

EVENT_VERSIONS = ("1.0", "2.0")
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript", "+json", "+xml")

HttpRequest = tuple[str, str, str, list[tuple[str, str]], bytes]  # method, path, query, headers, body


def is_event(task: Any) -> bool:
    """True when ``task`` is an API Gateway proxy event (either version), not a plain task."""
    return isinstance(task, dict) and isinstance(task.get("requestContext"), dict) and (
        "rawPath" in task or "httpMethod" in task)


def _is_text(content_type: str) -> bool:
    return any(t in content_type.lower() for t in _TEXT_TYPES)


def request_event(version: str, method: str, path: str, query: str, headers: list[tuple[str, str]],
                  body: bytes, *, source_ip: str = "127.0.0.1", stage: str = "$default") -> dict[str, Any]:
    """The proxy event API Gateway sends for one HTTP request (payload format ``version``)."""
    now = time.time()
    request_id = str(uuid.uuid4())
    lower: dict[str, list[str]] = {}
    for name, value in headers:
        lower.setdefault(name.lower(), []).append(value)
    content_type = lower.get("content-type", [""])[0]
    binary = bool(body) and not _is_text(content_type)
    text = base64.b64encode(body).decode() if binary else body.decode("utf-8", errors="replace")
    agent = lower.get("user-agent", [""])[0]
    if version == "2.0":
        cookies = [c.strip() for v in lower.pop("cookie", []) for c in v.split(";") if c.strip()]
        event: dict[str, Any] = {
            "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
            "headers": {k: ",".join(v) for k, v in lower.items()},
            "requestContext": {
                "accountId": "123456789012", "apiId": "harness", "domainName": lower.get("host", ["localhost"])[0],
                "domainPrefix": "harness", "requestId": request_id, "routeKey": "$default", "stage": stage,
                "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)), "timeEpoch": int(now * 1000),
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": source_ip,
                         "userAgent": agent},
            },
            "body": text if body else None, "isBase64Encoded": binary,
        }
        if cookies:
            event["cookies"] = cookies
        if query:
            params: dict[str, list[str]] = {}
            for k, v in parse_qsl(query, keep_blank_values=True):
                params.setdefault(k, []).append(v)
            event["queryStringParameters"] = {k: ",".join(v) for k, v in params.items()}
        return event
    params1: dict[str, list[str]] = {}
    for k, v in parse_qsl(query, keep_blank_values=True):
        params1.setdefault(k, []).append(v)
    return {
        "version": "1.0", "resource": "/{proxy+}", "path": path, "httpMethod": method,
        "headers": {k: v[-1] for k, v in lower.items()}, "multiValueHeaders": lower,
        "queryStringParameters": {k: v[-1] for k, v in params1.items()} or None,
        "multiValueQueryStringParameters": params1 or None,
        "pathParameters": {"proxy": path.lstrip("/")}, "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012", "apiId": "harness", "resourcePath": "/{proxy+}", "httpMethod": method,
            "path": f"/{stage}{path}", "stage": stage, "requestId": request_id, "requestTimeEpoch": int(now * 1000),
            "identity": {"sourceIp": source_ip, "userAgent": agent}, "protocol": "HTTP/1.1",
        },
        "body": text if body else None, "isBase64Encoded": binary,
    }


def task_event(version: str, task: Any, path: str) -> dict[str, Any]:
    """A plain task as the event of ``POST path`` with the task as its JSON body."""
    body = json.dumps(task).encode()
    return request_event(version, "POST", path, "", [("content-type", "application/json"),
                                                     ("content-length", str(len(body)))], body)


def proxy_response(version: str, answer: Any) -> tuple[int, list[tuple[str, str]], bytes] | str:
    """The HTTP response API Gateway makes of a function's answer; a str says why it is malformed (502).

    2.0 infers a 200 JSON response from an answer without ``statusCode``; 1.0 requires the proxy shape.
    """
    if not (isinstance(answer, dict) and "statusCode" in answer):
        if version == "1.0":
            return "the function's answer is not a proxy response ({\"statusCode\": ..., \"body\": ...})"
        text = answer if isinstance(answer, str) else json.dumps(answer)
        return 200, [("content-type", "application/json")], text.encode()
    try:
        status = int(answer["statusCode"])
    except (TypeError, ValueError):
        return f"statusCode {answer.get('statusCode')!r} is not an integer"
    pairs: list[tuple[str, str]] = []
    single = answer.get("headers") or {}
    multi = answer.get("multiValueHeaders") or {}
    if not isinstance(single, Mapping) or not isinstance(multi, Mapping):
        return "headers and multiValueHeaders must be objects"
    for name, values in multi.items():
        pairs += [(str(name), str(v)) for v in (values if isinstance(values, list) else [values])]
    taken = {n.lower() for n, _ in pairs}
    pairs += [(str(k), str(v)) for k, v in single.items() if str(k).lower() not in taken]
    pairs += [("set-cookie", str(c)) for c in answer.get("cookies") or []]
    body = answer.get("body")
    if body is None:
        raw = b""
    elif not isinstance(body, str):
        return f"body must be a string, got {type(body).__name__}"
    elif answer.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except ValueError:
            return "isBase64Encoded is true but the body is not base64"
    else:
        raw = body.encode()
    return status, pairs, raw


def _event_request(event: Mapping[str, Any]) -> HttpRequest:
    """Method, path, query, headers and body of a proxy event (either version)."""
    body_text = event.get("body") or ""
    body = base64.b64decode(body_text) if event.get("isBase64Encoded") else str(body_text).encode()
    if event.get("version") == "2.0" or "rawPath" in event:
        method = event["requestContext"]["http"]["method"]
        headers = [(k, v) for k, v in (event.get("headers") or {}).items()]
        if event.get("cookies"):
            headers.append(("cookie", "; ".join(event["cookies"])))
        return method, event.get("rawPath") or "/", event.get("rawQueryString") or "", headers, body
    multi = event.get("multiValueHeaders") or {k: [v] for k, v in (event.get("headers") or {}).items()}
    headers = [(k, v) for k, vs in multi.items() for v in vs]
    mq = event.get("multiValueQueryStringParameters") or {
        k: [v] for k, v in (event.get("queryStringParameters") or {}).items()}
    query = urlencode([(k, v) for k, vs in mq.items() for v in vs])
    return event["httpMethod"], event.get("path") or "/", query, headers, body


async def run_asgi(app: Callable[..., Awaitable[None]], event: Mapping[str, Any],
                   version: str = "2.0") -> dict[str, Any]:
    """Run one request of ``event`` through the ASGI ``app``; the proxy response (``version``) it makes."""
    method, path, query, headers, body = _event_request(event)
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "method": method, "scheme": "https", "path": path, "raw_path": quote(path).encode(),
        "query_string": query.encode(), "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "server": ("localhost", 443), "client": ("127.0.0.1", 0),
        "aws.event": dict(event),
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    status = 500
    out_headers: list[tuple[str, str]] = []
    chunks: list[bytes] = []

    async def send(message: Mapping[str, Any]) -> None:
        nonlocal status, out_headers
        if message["type"] == "http.response.start":
            status = int(message["status"])
            out_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", [])]
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))

    await app(scope, receive, send)
    raw = b"".join(chunks)
    content_type = next((v for k, v in out_headers if k.lower() == "content-type"), "")
    binary = bool(raw) and not _is_text(content_type)
    text = base64.b64encode(raw).decode() if binary else raw.decode("utf-8", errors="replace")
    answer: dict[str, Any] = {"statusCode": status, "body": text, "isBase64Encoded": binary}
    if version == "2.0":
        answer["cookies"] = [v for k, v in out_headers if k.lower() == "set-cookie"]
        joined: dict[str, list[str]] = {}
        for k, v in out_headers:
            if k.lower() != "set-cookie":
                joined.setdefault(k.lower(), []).append(v)
        answer["headers"] = {k: ",".join(v) for k, v in joined.items()}
    else:
        multi: dict[str, list[str]] = {}
        for k, v in out_headers:
            multi.setdefault(k.lower(), []).append(v)
        answer["multiValueHeaders"] = multi
    return answer


async def lifespan_startup(app: Callable[..., Awaitable[None]]) -> str | None:
    """Run the app's lifespan startup (left running, as a server does); why it failed, or None.

    An app without lifespan support raises or returns at once: that is not an error (uvicorn's "auto").
    """
    import asyncio

    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await queue.put({"type": "lifespan.startup"})
    answer: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()

    async def receive() -> dict[str, Any]:
        return await queue.get()

    async def send(message: Mapping[str, Any]) -> None:
        if answer.done():
            return
        if message["type"] == "lifespan.startup.complete":
            answer.set_result(None)
        elif message["type"] == "lifespan.startup.failed":
            answer.set_result(f"the app's startup failed: {message.get('message', '')}".rstrip(": "))

    async def run() -> None:
        # No lifespan support raises at once: proceed without it, as uvicorn's lifespan="auto" does.
        with contextlib.suppress(Exception):
            await app({"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}},
                      receive, send)
        if not answer.done():
            answer.set_result(None)

    task = asyncio.ensure_future(run())
    _LIFESPANS.append(task)  # kept alive for the instance's life: the app may hold state in it
    return await answer


_LIFESPANS: list[Any] = []


SQS_REGION = "us-east-1"  # the harness's stand-in account and region: an SQS event's ARN needs some
SQS_ACCOUNT = "123456789012"


def sqs_record(message_id: str, receipt: str, task: Any, receive_count: int, sent_s: float,
               queue_name: str) -> dict[str, Any]:
    """One message of Lambda's SQS event: the task as its (string) body, with SQS's attributes."""
    body = json.dumps(task, separators=(",", ":"))
    return {
        "messageId": message_id,
        "receiptHandle": receipt,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": str(int(sent_s * 1000)),
            "SenderId": SQS_ACCOUNT,
            "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000)),
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode()).hexdigest(),  # SQS's own checksum of the body, not security
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{SQS_REGION}:{SQS_ACCOUNT}:{queue_name}",
        "awsRegion": SQS_REGION,
    }


def sqs_task_event(task: Any) -> dict[str, Any]:
    """A plain task as Lambda's SQS event of one message (``adapter="sqs"`` outside the daemon's batches)."""
    message_id = str(uuid.uuid4())
    return {"Records": [sqs_record(message_id, message_id, task, 1, time.time(), "harness")]}
