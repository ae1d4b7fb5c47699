"""The gateway's OpenAPI 3.1 document, served at ``/openapi.json`` and checked in as ``docs/gateway-openapi.json``.

Written out by hand (rather than generated from the routes) so that it is the contract: a test compares
the served document, the checked-in copy and this function, and a schemathesis run checks the app
against it. The WebSocket route is described in prose: OpenAPI has no way to model it.
"""

from __future__ import annotations

from typing import Any

from ..records import OUTCOMES

__all__ = ["openapi_document"]

_HEADERS = {
    "x-harness-outcome": "Outcome kind of the invocation this response is about (empty when none).",
    "x-harness-cold-start": "'true' if that invocation cold-started an instance, else 'false' (empty when none).",
    "x-harness-instance": "Id of the instance that ran it (empty when none).",
    "x-harness-latency-ms": "Its latency as the caller sees it, platform milliseconds (empty when none).",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _resp(description: str, schema: dict[str, Any] | None = None, media: str = "application/json") -> dict[str, Any]:
    out: dict[str, Any] = {"description": description,
                           "headers": {h: {"$ref": f"#/components/headers/{h}"} for h in _HEADERS}}
    if schema is not None:
        out["content"] = {media: {"schema": schema}}
    return out


def _err(description: str) -> dict[str, Any]:
    return _resp(description, _ref("Error"))


def _result_resps() -> dict[str, Any]:
    return {
        "200": _resp("The agent's result (outcome ok).", _ref("Result")),
        "400": _err("The body is empty or not JSON."),
        "401": _err("An API key is configured and the request lacks it."),
        "413": _resp("The body exceeds the profile's request limit (payload_too_large).", _ref("Result")),
        "429": _resp("Throttled: the concurrency or rate limit is reached.", _ref("Result")),
        "502": _resp("The agent or its instance failed (agent_error, crash, oom, ...).", _ref("Result")),
        "504": _resp("The execution limit (timeout) or the gateway timeout (gateway_timeout) passed.", _ref("Result")),
    }


_SESSION = {"name": "session_id", "in": "query", "required": False, "schema": {"type": "string"},
            "description": "Session whose externalized state (ctx.state) the agent sees."}
_CALLBACK = {"name": "callback_url", "in": "query", "required": False, "schema": {"type": "string"},
             "description": "Webhook target for the final task JSON (loopback only unless allow-listed)."}
_TASK_ID = {"name": "task_id", "in": "path", "required": True, "schema": {"type": "string"}}
_TASK_BODY = {"required": True, "description": "The task itself, passed to the agent as is.",
              "content": {"application/json": {"schema": {"type": "object"}}}}

_SCHEMAS: dict[str, Any] = {
    "Cost": {"type": "object", "properties": {k: {"type": "number"} for k in
                                               ("compute_usd", "requests_usd", "llm_usd", "total_usd")}},
    "Result": {
        "type": "object",
        "required": ["ok", "outcome"],
        "properties": {
            "ok": {"type": "boolean"}, "outcome": {"type": "string", "enum": list(OUTCOMES)}, "output": {},
            "error": {"type": ["string", "null"]}, "latency_ms": {"type": "number"},
            "cold_start": {"type": "boolean"}, "init_ms": {"type": "number"},
            "instance_id": {"type": ["string", "null"]}, "attempts": {"type": "integer"},
            "cpu_ms": {"type": "number"}, "peak_memory_mb": {"type": "number"}, "llm_calls": {"type": "integer"},
            "input_tokens": {"type": "integer"}, "output_tokens": {"type": "integer"}, "cost": _ref("Cost"),
            "invocation_id": {"type": "string"}, "trace_id": {"type": "string"},
        },
    },
    "Error": {"type": "object", "required": ["error", "code"],
              "properties": {"error": {"type": "string"}, "code": {"type": "string"}}},
    "Accepted": {"type": "object", "required": ["task_id", "status_url"],
                 "properties": {k: {"type": "string"} for k in ("task_id", "status_url", "events_url", "ws_url")}},
    "Task": {
        "type": "object",
        "required": ["task_id", "state", "events", "result"],
        "properties": {
            "task_id": {"type": "string"},
            "state": {"type": "string", "enum": ["queued", "running", "succeeded", "failed"]},
            "events": {"type": "array", "items": {}},
            "result": {"oneOf": [_ref("Result"), {"type": "null"}]},
            "attempts": {"type": "integer"},
            "webhook": {"type": "object", "description": "Delivery state, when a callback_url was given."},
        },
    },
}

_SSE = {"type": "string", "description": "Server-Sent Events: 'progress' events (id = index), then 'result'."}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the gateway (the same for every pattern)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "agent-deploy-harness gateway",
            "version": "1",
            "description": (
                "One HTTP front door per deployment, the same for every pattern. The task is the JSON body; "
                "session_id and callback_url go in the query string. GET /tasks/{task_id}/ws streams the same "
                "events as /tasks/{task_id}/events over a WebSocket (JSON messages {id, type, data}; ?after=ID "
                "resumes). With an API key configured, send 'x-api-key' or 'Authorization: Bearer'; /healthz "
                "stays open."),
        },
        "paths": {
            "/invoke": {"post": {"summary": "Run the agent synchronously under the gateway timeout",
                                 "operationId": "invoke", "parameters": [_SESSION], "requestBody": _TASK_BODY,
                                 "responses": _result_resps()}},
            "/invoke/stream": {"post": {
                "summary": "Run the agent and stream its progress events, then its result (SSE)",
                "operationId": "invokeStream", "parameters": [_SESSION], "requestBody": _TASK_BODY,
                "responses": {"200": _resp("The event stream; header x-harness-task-id names the task to resume.",
                                           _SSE, "text/event-stream"),
                              "400": _err("The body is empty or not JSON."), "401": _err("API key missing."),
                              "413": _resp("The body exceeds the request limit.", _ref("Result"))}}},
            "/tasks": {"post": {
                "summary": "Run the agent in the background, as the platform's async invocation",
                "operationId": "submitTask", "parameters": [_SESSION, _CALLBACK], "requestBody": _TASK_BODY,
                "responses": {"202": _resp("Accepted; poll status_url, stream events_url or ws_url.", _ref("Accepted")),
                              "400": _err("The body is not JSON, or the callback_url is refused."),
                              "401": _err("API key missing."),
                              "413": _resp("The body exceeds the async request limit.", _ref("Result"))}}},
            "/tasks/{task_id}": {"get": {
                "summary": "Poll a task", "operationId": "getTask", "parameters": [_TASK_ID],
                "responses": {"200": _resp("State, events so far, result once finished.", _ref("Task")),
                              "401": _err("API key missing."), "404": _err("No such task.")}}},
            "/tasks/{task_id}/events": {"get": {
                "summary": "Stream a task's events (SSE); Last-Event-ID resumes", "operationId": "taskEvents",
                "parameters": [_TASK_ID, {"name": "Last-Event-ID", "in": "header", "required": False,
                                          "schema": {"type": "string"}}],
                "responses": {"200": _resp("The event stream.", _SSE, "text/event-stream"),
                              "401": _err("API key missing."), "404": _err("No such task.")}}},
            "/stats": {"get": {"summary": "Live summary", "operationId": "stats",
                               "responses": {"200": _resp("Summary, tasks, streams, instances.", {"type": "object"}),
                                             "401": _err("API key missing.")}}},
            "/healthz": {"get": {"summary": "Liveness", "operationId": "healthz",
                                 "responses": {"200": _resp("The gateway is up.", {"type": "object"})}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "operationId": "metrics",
                                 "responses": {"200": _resp("Text exposition format 0.0.4.", {"type": "string"},
                                                            "text/plain"),
                                               "401": _err("API key missing.")}}},
            "/openapi.json": {"get": {"summary": "This document", "operationId": "openapi",
                                      "responses": {"200": _resp("OpenAPI 3.1.", {"type": "object"}),
                                                    "401": _err("API key missing.")}}},
            "/_harness/dashboard": {"get": {
                "summary": "Live charts of the run over time (HTML; fetches /_harness/charts every 2 s)",
                "operationId": "dashboard",
                "responses": {"200": _resp("The page.", {"type": "string"}, "text/html"),
                              "401": _err("API key missing.")}}},
            "/_harness/timeline": {"get": {
                "summary": "The deployment sampled over time: cumulative counts, gauges, interval latency",
                "operationId": "timeline",
                "parameters": [{"name": "since", "in": "query", "required": False, "schema": {"type": "string"},
                                "description": "Only points after N ('12'), or per pattern ('serverless:12,...')."},
                               {"name": "fresh", "in": "query", "required": False, "schema": {"type": "string"},
                                "description": "'1': take a point now before answering (the end of a run)."}],
                "responses": {"200": _resp("{patterns: {pattern: {profile, interval_s, points}}}", {"type": "object"}),
                              "401": _err("API key missing.")}}},
            "/_harness/charts": {"get": {
                "summary": "The dashboard's charts as an HTML fragment of inline SVG",
                "operationId": "charts",
                "parameters": [{"name": "pattern", "in": "query", "required": False, "schema": {"type": "string"},
                                "description": "Draw this pattern only."}],
                "responses": {"200": _resp("{patterns: [...], html: ...}", {"type": "object"}),
                              "401": _err("API key missing.")}}},
        },
        "components": {
            "schemas": _SCHEMAS,
            "headers": {h: {"description": d, "schema": {"type": "string"}} for h, d in _HEADERS.items()},
        },
    }
