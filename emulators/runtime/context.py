"""What the agent sees: ``ctx`` for harness agents and an AWS-style ``context`` for Lambda handlers.

Both live in the instance process. Time is platform time (``PlatformTimer``): ``ctx.sleep(20)`` is an
emulated 20-second wait that counts 20 s against the limit. On a scaled clock it takes ``20 * time_scale``
wall seconds; on the virtual clock it blocks until the control process wakes it at the platform deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from .llmtime import LLMTimeReader, with_llm_waits
from .ptime import PlatformTimer

__all__ = ["AgentContext", "LambdaContext", "SubrequestLimitError", "WaitChannel", "emulated_wait", "llm_client",
           "warm_http"]

Send = Callable[[dict[str, Any]], None]
_LLM_CLIENT: Any = None
_HTTP_TRANSPORT: Any = None


class WaitChannel(Protocol):
    """How a wait blocks on the virtual clock: announce it under a key, then block until woken."""

    def wait_key(self, inv_id: str) -> str: ...
    def block(self, key: str) -> None: ...


def begin_wait(timer: PlatformTimer, send: Send, block: WaitChannel | None, wait_id: str,
               seconds: float) -> str | None:
    """Announce an emulated wait of ``seconds``; on the virtual clock (``block``) the key its wake will carry."""
    timer.begin_wait(seconds)
    if block is not None and seconds > 0:
        key = block.wait_key(wait_id)
        send({"op": "wait", "id": wait_id, "s": seconds, "w": key})
        return key
    send({"op": "wait", "id": wait_id, "s": seconds})
    return None


def end_wait(timer: PlatformTimer, send: Send, wait_id: str, seconds: float) -> None:
    """The wait is over: tell the harness, then the timer (telling is part of the wait, not the agent)."""
    send({"op": "waitend", "id": wait_id, "s": seconds})
    timer.end_wait(seconds)


def emulated_wait(timer: PlatformTimer, send: Send, block: WaitChannel | None, wait_id: str,
                  seconds: float) -> None:
    """Wait ``seconds`` platform seconds: scaled wall time, or (virtual clock) until the harness wakes it."""
    key = begin_wait(timer, send, block, wait_id, seconds)
    try:
        if key is not None and block is not None:
            block.block(key)
        else:
            time.sleep(seconds * timer.time_scale)
    finally:
        end_wait(timer, send, wait_id, seconds)


class SubrequestLimitError(RuntimeError):
    """A ``ctx.http`` request over the per-request subrequest budget (Cloudflare: "Too many subrequests")."""


def warm_http() -> Any:
    """The instance's one HTTP connection pool, made once (an httpx client with its own costs 17-65 ms of CPU).

    The edge pattern makes it before the cold start, as an isolate's ``fetch`` is part of the runtime.
    """
    global _HTTP_TRANSPORT
    if _HTTP_TRANSPORT is None:
        import httpx

        class _Shared(httpx.HTTPTransport):
            def close(self) -> None:  # a per-call client closing must not close the instance's pool
                pass

        _HTTP_TRANSPORT = _Shared()
    return _HTTP_TRANSPORT


def llm_client() -> Any:
    """The instance's one ``openai.OpenAI`` client behind ``ctx.llm``, made on first use.

    The instance makes it during init when the agent's code uses ``ctx.llm`` (``agent.uses_ctx_llm``), as
    a real agent makes its client at module level: the SDK's import (0.5-1.7 s of CPU) is then init time,
    counted against init limits and an edge startup budget, and not the first request's. Raises
    ImportError without the SDK.
    """
    global _LLM_CLIENT
    if _LLM_CLIENT is None:
        import openai

        client = openai.OpenAI(base_url=os.environ.get("OPENAI_BASE_URL"),
                               api_key=os.environ.get("OPENAI_API_KEY", "harness"))
        _warm_up(openai)
        _LLM_CLIENT = client
    return _LLM_CLIENT


_CANNED = (b'{"id":"warm-up","object":"chat.completion","created":0,"model":"gpt-4o-mini","choices":[{"index":0,'
           b'"finish_reason":"stop","message":{"role":"assistant","content":"ok"}}],'
           b'"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}')


def _warm_up(openai: Any) -> None:
    """Run one chat completion through the SDK against a canned answer in this process (no network, no LLM
    call): its one-time work (resource modules, request transforms, platform headers, response-model schemas:
    ~10 ms of CPU) is then part of setting the client up, and the first request costs what the next ones do.
    Best effort: an SDK this does not fit is simply not warmed."""
    with contextlib.suppress(Exception):
        # The SDK's own HTTP library (httpx, or the fork a newer SDK ships) provides the mock transport.
        http = importlib.import_module(openai.DefaultHttpxClient.__mro__[1].__module__.split(".")[0])
        transport = http.MockTransport(lambda request: http.Response(
            200, content=_CANNED, headers={"content-type": "application/json"}))
        with openai.OpenAI(base_url="http://warm-up.invalid/v1", api_key="warm-up", max_retries=0,
                           http_client=openai.DefaultHttpxClient(transport=transport)) as warm:
            warm.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "warm-up"}])


class AgentContext:
    """The ``ctx`` argument of an agent: identity, time, state, checkpoints, progress and clients."""

    def __init__(self, *, invocation_id: str, pattern: str, instance_id: str, session_id: str | None,
                 timeout_s: float, timer: PlatformTimer, send: Send, state: dict[str, Any],
                 checkpoints: dict[str, Any], function_name: str, memory_mb: float,
                 llm_time: LLMTimeReader | None = None, subrequest_limit: int | None = None,
                 subrequest_rtt_s: float = 0.0, block: WaitChannel | None = None) -> None:
        self.invocation_id = invocation_id
        self.pattern = pattern
        self.instance_id = instance_id
        self.session_id = session_id
        self.timeout_s = timeout_s
        self.function_name = function_name
        self.memory_mb = memory_mb
        self.state: dict[str, Any] = state
        self.events: list[Any] = []
        self._timer = timer
        self._llm_time = llm_time
        self._send = send
        self._checkpoints = checkpoints
        self._llm: Any = None
        self._http: Any = None
        self._memory: Any = None
        self.subrequests = 0  # ctx.http requests made (requests to the LLM endpoint are counted there)
        self._subrequest_limit = subrequest_limit
        self._subrequest_rtt_s = subrequest_rtt_s
        self._block = block  # set on the virtual clock

    def remaining_time_ms(self) -> float:
        """Platform milliseconds left before the time limit."""
        elapsed = with_llm_waits(self._timer.elapsed(), self._llm_time, self._timer.time_scale)
        return max(0.0, self.timeout_s - elapsed) * 1000.0

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` platform seconds (an emulated wait: see the module docstring)."""
        emulated_wait(self._timer, self._send, self._block, self.invocation_id, max(0.0, float(seconds)))

    async def asleep(self, seconds: float) -> None:
        """``sleep`` for async agents (other coroutines of the agent run meanwhile)."""
        seconds = max(0.0, float(seconds))
        key = begin_wait(self._timer, self._send, self._block, self.invocation_id, seconds)
        try:
            if key is not None and self._block is not None:
                await asyncio.get_running_loop().run_in_executor(None, self._block.block, key)
            else:
                await asyncio.sleep(seconds * self._timer.time_scale)
        finally:
            end_wait(self._timer, self._send, self.invocation_id, seconds)

    def emit(self, event: Any) -> None:
        """Publish a progress event (JSON value) to whoever watches this invocation."""
        json.dumps(event)  # the stdlib decides what is JSON (a TypeError here, as before the frames used orjson)
        self.events.append(event)
        self._send({"op": "emit", "id": self.invocation_id, "event": event})

    def checkpoint(self, key: str, value: Any) -> None:
        """Save a task-scoped value that survives a crash of this instance."""
        json.dumps(value)  # the stdlib decides what is JSON (see emit)
        self._checkpoints[key] = value
        self._send({"op": "checkpoint", "id": self.invocation_id, "key": key, "value": value})

    def restore(self, key: str, default: Any = None) -> Any:
        """A value saved with ``checkpoint`` by an earlier attempt of this task, or ``default``."""
        return self._checkpoints.get(key, default)

    @property
    def llm(self) -> Any:
        """An ``openai.OpenAI`` client bound to the harness LLM endpoint (the environment points at it)."""
        if self._llm is None:
            try:
                client = llm_client()
            except ImportError as exc:
                raise RuntimeError(
                    "ctx.llm needs the openai SDK: pip install 'agent-deploy-harness[llm]'"
                ) from exc
            # The header ties each request to this invocation even when an instance serves several at once.
            self._llm = client.with_options(default_headers={"x-harness-invocation": self.invocation_id})
        return self._llm

    @property
    def http(self) -> Any:
        """An ``httpx.Client`` for the agent's own requests; each one counts as a subrequest."""
        if self._http is None:
            import httpx

            self._http = httpx.Client(timeout=30.0, transport=warm_http(),
                                      event_hooks={"request": [self._subrequest], "response": [self._answered]})
        return self._http

    @property
    def memory(self) -> Any:
        """Long-term memory (``emulators.memory.client.Memory``): ``add``, ``search``, ``delete``, per namespace."""
        if self._memory is None:
            from ..memory.client import Memory

            self._memory = Memory(lambda: self.llm, self._memory_request)
        return self._memory

    def _memory_request(self, op: str) -> None:
        """A request to the memory store: a subrequest where the platform counts them (edge), with its round trip."""
        if self._subrequest_limit is not None or self._subrequest_rtt_s > 0:
            self._count_subrequest("POST", f"memory/{op}")

    def _subrequest(self, request: Any) -> None:
        """Count a ctx.http request; pay the round trip to the origin's region (edge) as an emulated wait."""
        llm = os.environ.get("OPENAI_BASE_URL", "").split("/i/", 1)[0]
        if llm and str(request.url).startswith(llm):
            return  # the LLM endpoint counts its own requests and adds their round trip
        request.extensions["harness_subrequest"] = self._count_subrequest(request.method, request.url.host)

    def _count_subrequest(self, method: str, host: str) -> int:
        """Count one subrequest (over budget: SubrequestLimitError), then wait its round trip; its number."""
        self.subrequests += 1
        self._send({"op": "subreq", "id": self.invocation_id, "method": method, "host": host})
        if self._subrequest_limit is not None and self.subrequests > self._subrequest_limit:
            raise SubrequestLimitError(
                f"Too many subrequests: this request may make {self._subrequest_limit}")
        if self._subrequest_rtt_s > 0:
            self.sleep(self._subrequest_rtt_s)
        return self.subrequests

    def _answered(self, response: Any) -> None:
        """Tell the harness a subrequest's status (its span ends here; never its headers or URL path)."""
        n = response.request.extensions.get("harness_subrequest")
        if n is not None:
            self._send({"op": "subresp", "id": self.invocation_id, "n": n, "status": response.status_code})


class LambdaContext:
    """The ``context`` object AWS Lambda passes to ``handler(event, context)``."""

    function_version = "$LATEST"
    identity = None
    client_context = None

    def __init__(self, ctx: AgentContext, region: str = "us-east-1", account: str = "123456789012") -> None:
        self._ctx = ctx
        self.aws_request_id = ctx.invocation_id or str(uuid.uuid4())
        self.function_name = ctx.function_name
        self.memory_limit_in_mb = str(int(ctx.memory_mb))
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account}:function:{ctx.function_name}"
        self.log_group_name = f"/aws/lambda/{ctx.function_name}"
        day = time.strftime("%Y/%m/%d", time.gmtime())
        self.log_stream_name = f"{day}/[$LATEST]{ctx.instance_id}"

    def get_remaining_time_in_millis(self) -> int:
        """Platform milliseconds left before the function times out (as AWS, an int)."""
        return int(self._ctx.remaining_time_ms())
