"""The HTTP gateway: one ASGI app per deployment, the same routes in front of every pattern.

``POST /invoke`` (sync, under the profile's gateway timeout), ``POST /tasks`` + ``GET /tasks/{id}``
(background runs and polling), webhooks (``callback_url``, signed and retried), SSE
(``GET /tasks/{id}/events``, ``POST /invoke/stream``), WebSocket (``/tasks/{id}/ws``), ``/stats``,
``/healthz``, ``/metrics`` and ``/openapi.json``. It talks only to the ``Emulator`` Protocol and to the
``TaskRegistry`` here, which the Python API's ``submit/status/wait/stream`` share. See ``docs/gateway.md``.
"""

from .options import GatewayOptions, is_loopback_host
from .tasks import Task, TaskRegistry, TaskState, async_request_limit, async_retry_delays, result_json
from .webhooks import WebhookSender, check_target, sign, verify

__all__ = [
    "Gateway",
    "GatewayOptions",
    "Task",
    "TaskRegistry",
    "TaskState",
    "WebhookSender",
    "async_request_limit",
    "async_retry_delays",
    "check_target",
    "is_loopback_host",
    "result_json",
    "sign",
    "verify",
]


def __getattr__(name: str) -> object:
    # The server pulls in uvicorn and starlette: only when a deployment actually serves HTTP.
    if name == "Gateway":
        from .server import Gateway

        return Gateway
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
