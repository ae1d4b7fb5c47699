"""The LLM endpoint: an OpenAI/Anthropic-compatible simulator served by uvicorn in the engine's loop.

Every route is served at ``/v1/...`` and at ``/i/{caller}/v1/...``; the prefix names the instance a call
belongs to, and the ``x-harness-invocation`` header the invocation. A request goes: parse (400 in the
provider's format if malformed) -> script rule or default answer -> rate limits (429) -> scripted or
random fault -> latency wait (time to first token + output tokens / tokens per second, via the clock) ->
answer, streamed at that pace. Each request yields one ``LLMCall`` (``on_call``), and each latency wait is
announced when it begins and ends (``on_wait``) so the harness counts it as an emulated wait.

``retry-after`` on a 429 carries the platform seconds a real provider would send; ``retry-after-ms``
carries the same wait in wall milliseconds (scaled by the clock), and the ``openai`` and ``anthropic`` SDKs
prefer it, so their own retries wait the compressed time and land when the emulated slot comes.
"""

from __future__ import annotations

import json
import logging
import math
import random
import socket
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..clock import Clock
from ..serving import start_server
from .anthropic_api import MessagesApi, anthropic_error, anthropic_models
from .backoff import Backoffs
from .dialog import ApiError, Prompt, Reply
from .embeddings import EMBEDDING_MODELS, EmbeddingsApi, embedding_latency_s
from .generate import default_reply
from .limits import Admission, RateLimiter, limit_headers
from .openai_api import ChatCompletionsApi, openai_error, openai_model, openai_models
from .pacing import PartialResponse, StreamResponse, Waiter, quiet_cut_logs
from .proxy import Upstream, Usage
from .requests import api_key, digest, is_anthropic, json_body
from .responses_api import ResponsesApi
from .script import Script, load_script
from .sse import Api

__all__ = ["BUILTIN_MODELS", "LLMCall", "LLMEndpoint"]

log = logging.getLogger("emulators.llm")

MAX_CALLS_KEPT = 10_000  # LLMEndpoint.calls: the latest model calls
MAX_DISTINCT_KEPT = 100_000  # distinct requests whose occurrences are counted (they seed faults per attempt)
BUILTIN_MODELS = ("gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-4.1", "gpt-4o", "gpt-4o-mini",
                  "claude-opus-5", "claude-opus-4-5", "claude-sonnet-4-5", "claude-haiku-4-5", *EMBEDDING_MODELS)
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
_REPLY_CACHE = 1024  # distinct requests whose default answer is kept


@dataclass(frozen=True)
class LLMCall:
    """One request the endpoint answered (or refused). Tokens are 0 unless the call was answered (200)."""

    caller: str | None  # from the URL prefix /i/{caller}/... (the instance id), else None
    invocation_id: str | None  # from the request header "x-harness-invocation", else None
    provider: str  # "openai" | "anthropic"
    api: str  # "chat.completions" | "responses" | "messages" | "embeddings"
    model: str
    status: int  # HTTP status answered (200, 429, 500, 529, ...); 499: the client left during a hang
    input_tokens: int
    output_tokens: int
    platform_s: float  # emulated latency in platform seconds (0 for a refused call)
    wall_s: float  # wall seconds the request took in the server
    stream: bool
    fault: str | None = None  # rate_limited, error, overloaded, hang, cut, scripted, disconnected, invalid
    retry_after_s: float | None = None  # on a 429: the platform seconds the caller was told to wait
    upstream: bool = False  # answered by the real upstream (proxy mode): platform_s is then real time
    started_at: float = 0.0  # wall clock (UNIX s) the request arrived (its trace span begins here)


@dataclass
class _Meta:
    caller: str | None
    invocation_id: str | None
    api: Api
    started: float
    model: str = ""
    stream: bool = False
    at: float = field(default_factory=time.time)  # wall clock of ``started``


class LLMEndpoint:
    """The simulator as an ASGI app (``app``) that ``start`` serves on a real port."""

    def __init__(self, *, clock: Clock, script: str | Path | Script | None = None, seed: int = 0,
                 on_call: Callable[[LLMCall], None] | None = None,
                 on_wait: Callable[[str | None, str | None, str, float], None] | None = None,
                 rpm: int | None = None, tpm: int | None = None, upstream: str | Upstream | None = None,
                 upstream_key: str | None = None) -> None:
        self.clock = clock
        # Proxy mode (see proxy.py): admitted requests are answered by a real upstream, not simulated.
        self.upstream = Upstream(upstream, api_key=upstream_key) if isinstance(upstream, str) else upstream
        self.script = load_script(script)
        self.seed = seed
        self.on_call = on_call
        self.on_wait = on_wait
        # Per-caller added latency: (caller, invocation id) -> platform seconds added to each answer's wait
        # (edge: the round trip to the LLM's region). It may raise ApiError to refuse the request (edge: a
        # call over the subrequest budget).
        self.extra_latency: Callable[[str | None, str | None], float] | None = None
        lim = self.script.limits
        self.limiter = RateLimiter(rpm if rpm is not None else lim.rpm, tpm if tpm is not None else lim.tpm,
                                   lim.burst_s)
        # The latest calls, for tests and debugging (a long run's memory stays flat); every call's figures
        # are in its invocation's record.
        self.calls: deque[LLMCall] = deque(maxlen=MAX_CALLS_KEPT)
        self.url: str | None = None
        self._chat, self._responses, self._messages = ChatCompletionsApi(), ResponsesApi(), MessagesApi()
        self._embeddings = EmbeddingsApi()
        self._seen: Counter[str] = Counter()  # occurrences of each distinct request (seeds its faults)
        self._replies: dict[str, Reply] = {}  # default answers by request digest (bounded: _REPLY_CACHE)
        self._used: Counter[int] = Counter()  # uses of each script rule (for ``times``)
        self._waiter = Waiter(clock)
        self._backoffs = Backoffs(clock)  # 429 retry-after waits still running, per caller and invocation
        self._server: uvicorn.Server | None = None
        self._sock: socket.socket | None = None
        # The model-call routes: served by the routes below and, past the router, by _HotPath.
        self._model_calls: dict[str, Api] = {"/v1/chat/completions": self._chat, "/v1/responses": self._responses,
                                             "/v1/messages": self._messages, "/v1/embeddings": self._embeddings}
        self.app = _HotPath(Starlette(routes=self._routes()), self._serve, self._model_calls)

    # ---- serving ---------------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0: a free port) in the running loop; returns the base URL."""
        if self._server is not None:
            raise RuntimeError("this LLM endpoint is already started; stop it first or make another")
        quiet_cut_logs()
        self._waiter.reset()
        server, sock, self.url = await start_server(self.app, host, port, what="the LLM endpoint", graceful_s=2)
        self._server, self._sock = server, sock
        return self.url

    async def stop(self) -> None:
        """End hangs and streams in flight, close every connection and the listening socket."""
        server, sock = self._server, self._sock
        if server is None:
            return
        self._server = self._sock = None
        self._waiter.stop()
        server.should_exit = True
        try:
            await server.shutdown(sockets=[sock] if sock is not None else None)
        finally:
            self.url = None
            if self.upstream is not None:
                await self.upstream.aclose()

    # ---- routes ----------------------------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        def post(api: Api) -> Callable[[Request], Any]:
            async def endpoint(request: Request) -> Response:
                return await self._serve(request, api)
            return endpoint

        base = [*((path, post(api), ["POST"]) for path, api in self._model_calls.items()),
                ("/v1/messages/count_tokens", self._count_tokens, ["POST"]),
                ("/v1/models", self._models, ["GET"]),
                ("/v1/models/{model:path}", self._model, ["GET"])]
        routes = [Route(path, fn, methods=methods) for path, fn, methods in base]
        routes += [Route("/i/{caller}" + path, fn, methods=methods) for path, fn, methods in base]
        return [*routes, Route("/{path:path}", self._unknown, methods=_METHODS)]

    def _model_names(self) -> list[str]:
        return list(dict.fromkeys([*self.script.model_names(), *BUILTIN_MODELS]))

    async def _models(self, request: Request) -> Response:
        if is_anthropic(request):
            return JSONResponse(anthropic_models(self._model_names()))
        return JSONResponse(openai_models(self._model_names()))

    async def _model(self, request: Request) -> Response:
        name = request.path_params["model"]
        if is_anthropic(request):
            return JSONResponse({"type": "model", "id": name, "display_name": name,
                                 "created_at": "2025-01-01T00:00:00Z"})
        return JSONResponse(openai_model(name))

    async def _count_tokens(self, request: Request) -> Response:
        """Anthropic's token counting: the prompt's input tokens, by the same approximation (not a call)."""
        try:
            body = await json_body(request)
            prompt = self._messages.parse({"max_tokens": 1, **body, "stream": False})
        except ApiError as err:
            return JSONResponse(anthropic_error(err), status_code=err.status)
        return JSONResponse({"input_tokens": prompt.input_tokens})

    async def _unknown(self, request: Request) -> Response:
        err = ApiError(400, f"Invalid URL ({request.method} {request.url.path}); this endpoint serves "
                            f"POST /v1/chat/completions, POST /v1/responses, POST /v1/messages, "
                            f"POST /v1/embeddings and GET /v1/models")
        body = anthropic_error(err) if is_anthropic(request) else openai_error(err)
        return JSONResponse(body, status_code=400)

    # ---- one LLM request -------------------------------------------------------------------------------

    async def _serve(self, request: Request, api: Api) -> Response:
        meta = _Meta(request.path_params.get("caller"), request.headers.get("x-harness-invocation"), api,
                     time.monotonic())
        key, retry = (meta.caller, meta.invocation_id), request.headers.get("x-stainless-retry-count")
        if self.clock.virtual:
            left = self._backoffs.left(key, retry)
            if left is not None:  # the retry came at once: it waits out its back-off here, on the clock
                self._notify(meta, "begin", left)
                try:
                    await self.clock.sleep(left)
                finally:
                    self._notify(meta, "end", left)
        else:
            ended = self._backoffs.end(key, retry)
            if ended is not None:
                self._notify(meta, "end", ended)
        try:
            return await self._answer(request, meta)
        except ApiError as err:
            return self._refuse(meta, err, "invalid")
        except Exception:  # a bug of the simulator must still answer in the provider's format
            log.exception("the LLM simulator failed on %s %s", request.method, request.url.path)
            return self._refuse(meta, ApiError(500, "The simulator failed on this request; see the harness log."),
                                "error")

    async def _answer(self, request: Request, meta: _Meta) -> Response:
        api = meta.api
        body = await json_body(request)
        if api is self._embeddings:
            return await self._embed(request, meta, body)
        model = body.get("model")
        meta.model = model if isinstance(model, str) else ""
        meta.stream = bool(body.get("stream"))
        prompt = api.parse(body)
        extra_s = self.extra_latency(meta.caller, meta.invocation_id) if self.extra_latency is not None else 0.0
        key = digest(api.api, body)
        occurrence = self._seen[key]
        self._seen[key] += 1
        if len(self._seen) > MAX_DISTINCT_KEPT:  # a run of unique prompts: forget the oldest (it seeded its faults)
            del self._seen[next(iter(self._seen))]
        content_rng = random.Random(f"{self.seed}:{key}")  # same prompt, same answer (retries included)
        rng = random.Random(f"{self.seed}:{key}:{occurrence}")  # faults and latency differ per attempt
        index = self.script.match(prompt, rng, self._used)
        rule = self.script.rules[index] if index is not None else None
        if rule is not None and rule.error is None and rule.fault != "hang":
            reply = rule.answer(prompt, content_rng)
        else:
            reply = self._default_reply(key, prompt, content_rng)
        cost = prompt.input_tokens + (0 if rule is not None and rule.error is not None else reply.output_tokens)
        admission = self.limiter.admit(api_key(request), cost, self.clock.now())
        headers = limit_headers(api.provider, admission)
        if not admission.admitted:
            return self._rate_limited(meta, admission, headers)
        if index is not None:
            self._used[index] += 1
        fault = rule.fault if rule is not None else None
        if rule is not None and rule.error is not None:
            return self._refuse(meta, ApiError(rule.error, rule.message or ""), "scripted", headers)
        if fault is None:
            fault = self._random_fault(rng)
        if fault == "error":
            return self._refuse(meta, ApiError(500, ""), fault, headers)
        if fault == "overloaded":
            return self._refuse(meta, ApiError(529 if api.provider == "anthropic" else 503, ""), fault, headers)
        if fault == "hang":
            return await self._hang(request, meta, prompt, headers)
        if self.upstream is not None:
            return await self._forward(request, meta, body, fault == "cut", headers)
        ttft, tps = self.script.latency_for(prompt.model).sample(rng)
        ttft += extra_s
        if prompt.stream:
            return StreamResponse(
                api.frames(prompt, reply, body, rng), waiter=self._waiter, ttft_s=ttft, tokens_per_s=tps,
                total_tokens=reply.output_tokens, cut=fault == "cut", headers=headers,
                on_begin=lambda s: self._notify(meta, "begin", s),
                on_end=lambda waited, sent, how: self._finish_stream(meta, prompt, waited, sent, how))
        return await self._complete(request, meta, prompt, reply, body, rng, ttft, tps, fault, headers)

    async def _embed(self, request: Request, meta: _Meta, body: dict[str, Any]) -> Response:
        """``POST /v1/embeddings``: limits, random faults (error, overloaded), the latency wait, the vectors.

        Script rules are for conversations and do not apply; proxy mode forwards as for chat.
        """
        req = self._embeddings.parse_embed(body)
        meta.model = req.model
        extra_s = self.extra_latency(meta.caller, meta.invocation_id) if self.extra_latency is not None else 0.0
        key = digest(self._embeddings.api, body)
        occurrence = self._seen[key]
        self._seen[key] += 1
        admission = self.limiter.admit(api_key(request), req.input_tokens, self.clock.now())
        headers = limit_headers("openai", admission)
        if not admission.admitted:
            return self._rate_limited(meta, admission, headers)
        fault = self._random_fault(random.Random(f"{self.seed}:{key}:{occurrence}"))
        if fault == "error":
            return self._refuse(meta, ApiError(500, ""), fault, headers)
        if fault == "overloaded":
            return self._refuse(meta, ApiError(503, ""), fault, headers)
        if self.upstream is not None:
            return await self._forward(request, meta, body, False, headers)
        latency = embedding_latency_s(req.model, req.input_tokens) + extra_s
        how, waited = await self._timed_wait(request, meta, latency)
        if how != "done":
            self._record(meta, 499 if how == "disconnected" else 503, platform_s=waited, fault="disconnected")
            return Response(status_code=499 if how == "disconnected" else 503)
        payload = json.dumps(self._embeddings.render_embed(req), separators=(",", ":")).encode()
        self._record(meta, 200, req.input_tokens, 0, latency)
        return Response(payload, headers={**headers, **self._answer_headers(meta.api, latency)},
                        media_type="application/json")

    def _default_reply(self, key: str, prompt: Prompt, rng: random.Random) -> Reply:
        """The unscripted answer to the request with digest ``key``: the same every time, so made once.

        (The text is generated word by word: tens of microseconds a request, on every model call.)
        """
        reply = self._replies.get(key)
        if reply is None:
            reply = default_reply(prompt, rng).capped(prompt.max_tokens)
            if len(self._replies) >= _REPLY_CACHE:
                del self._replies[next(iter(self._replies))]
            self._replies[key] = reply
        return reply

    async def _complete(self, request: Request, meta: _Meta, prompt: Prompt, reply: Reply, body: dict[str, Any],
                        rng: random.Random, ttft: float, tps: float, fault: str | None,
                        headers: dict[str, str]) -> Response:
        latency = ttft + reply.output_tokens / tps
        how, waited = await self._timed_wait(request, meta, latency)
        if how != "done":
            self._record(meta, 499 if how == "disconnected" else 503, platform_s=waited, fault="disconnected")
            return Response(status_code=499 if how == "disconnected" else 503)
        payload = json.dumps(meta.api.render(prompt, reply, body, rng), separators=(",", ":")).encode()
        headers = {**headers, **self._answer_headers(meta.api, latency)}
        if fault == "cut":
            self._record(meta, 200, prompt.input_tokens, reply.output_tokens // 2, latency, fault="cut")
            return PartialResponse(payload, headers=headers)
        self._record(meta, 200, prompt.input_tokens, reply.output_tokens, latency)
        return Response(payload, headers=headers, media_type="application/json")

    async def _hang(self, request: Request, meta: _Meta, prompt: Prompt, headers: dict[str, str]) -> Response:
        hang = self.script.faults.hang_s
        how, waited = await self._timed_wait(request, meta, hang)
        status = {"done": 504, "disconnected": 499}.get(how, 503)
        self._record(meta, status, platform_s=waited, fault="hang")
        err = ApiError(status, "The model did not answer (an injected hang).")
        return JSONResponse(meta.api.error_body(err), status_code=status, headers=headers)

    async def _timed_wait(self, request: Request, meta: _Meta, platform_s: float) -> tuple[str, float]:
        """The wait before a non-streamed answer, announced to ``on_wait`` even if it is cut short.

        Returns how it ended (done, disconnected, stopped) and the platform seconds it lasted.
        """
        self._notify(meta, "begin", platform_s)
        began = self.clock.now()
        how, waited = "stopped", 0.0
        try:
            how = await self._waiter.wait(platform_s, request.receive)
        finally:
            waited = platform_s if how == "done" else self.clock.now() - began
            self._notify(meta, "end", waited)
        return how, waited

    async def _forward(self, request: Request, meta: _Meta, body: dict[str, Any], cut: bool,
                       headers: dict[str, str]) -> Response:
        """Proxy mode: the upstream answers; its ``usage`` is metered into the call record."""
        assert self.upstream is not None
        path = "/v1/" + request.url.path.split("/v1/", 1)[1]

        def done(u: Usage) -> None:
            ok = u.status == 200
            fault = "cut" if u.cut else (None if ok else "upstream")
            self._record(meta, u.status, u.input_tokens if ok else 0, u.output_tokens if ok else 0,
                         time.monotonic() - meta.started, fault=fault, upstream=True)

        try:
            response = await self.upstream.forward(meta.api, path, body, dict(request.headers), api_key(request),
                                                   cut=cut, done=done)
        except ApiError as err:
            return self._refuse(meta, err, "upstream", headers)
        for name, value in headers.items():  # the emulated limits' headers, where the upstream sent none
            response.headers.setdefault(name, value)
        return response

    def _finish_stream(self, meta: _Meta, prompt: Prompt, waited: float, sent: int, how: str) -> None:
        self._notify(meta, "end", waited)
        fault = None if how == "done" else ("cut" if how == "cut" else "disconnected")
        self._record(meta, 200, prompt.input_tokens, sent, waited, fault=fault)

    def _random_fault(self, rng: random.Random) -> str | None:
        f = self.script.faults
        if not (f.error or f.overloaded or f.hang or f.cut):
            return None
        draw = rng.random()
        for name, p in (("error", f.error), ("overloaded", f.overloaded), ("hang", f.hang), ("cut", f.cut)):
            if draw < p:
                return name
            draw -= p
        return None

    # ---- answers that are not completions --------------------------------------------------------------

    def _refuse(self, meta: _Meta, err: ApiError, fault: str, headers: dict[str, str] | None = None) -> Response:
        self._record(meta, err.status, fault=fault)
        out = {**(headers or {}), **err.headers, **self._answer_headers(meta.api, 0.0)}
        return JSONResponse(meta.api.error_body(err), status_code=err.status, headers=out)

    def _rate_limited(self, meta: _Meta, adm: Admission, headers: dict[str, str]) -> Response:
        wait = adm.retry_after_s
        per = "requests" if adm.limit == "requests" else "tokens"
        limit = adm.rpm if per == "requests" else adm.tpm
        if meta.api.provider == "anthropic":
            message = (f"This request would exceed the rate limit of {limit} {per} per minute for this API key. "
                       f"Please retry after {wait:.2f} s.")
            err = ApiError(429, message)
        else:
            unit = "RPM" if per == "requests" else "TPM"
            message = (f"Rate limit reached for {meta.model} on {per} per min ({unit}): "
                       f"Limit {limit}. Please try again in {wait:.3f}s.")
            err = ApiError(429, message, kind=per, code="rate_limit_exceeded")
        # On the virtual clock the retry comes at once and waits out its back-off here (backoff.py).
        wall_ms = 0.001 if self.clock.virtual else max(0.001, math.ceil(self.clock.to_wall(wait) * 1e6) / 1e3)
        err.headers = {**headers, "retry-after": str(max(1, math.ceil(wait))), "retry-after-ms": f"{wall_ms:.3f}"}
        self._record(meta, 429, fault="rate_limited", retry_after_s=wait)
        if meta.caller is not None or meta.invocation_id is not None:
            # The client's sleep on retry-after-ms is an emulated wait (backoff.py says why).
            self._backoffs.begin((meta.caller, meta.invocation_id), wait)
            if not self.clock.virtual:
                self._notify(meta, "begin", wait)
        out = {**err.headers, **self._answer_headers(meta.api, 0.0)}
        return JSONResponse(meta.api.error_body(err), status_code=429, headers=out)

    @staticmethod
    def _answer_headers(api: Api, latency_s: float) -> dict[str, str]:
        rid = f"req_{random.getrandbits(96):024x}"
        if api.provider == "anthropic":
            return {"request-id": rid}
        return {"x-request-id": rid, "openai-processing-ms": str(round(latency_s * 1000)),
                "openai-version": "2020-10-01"}

    # ---- notifications ---------------------------------------------------------------------------------

    def _notify(self, meta: _Meta, event: str, platform_s: float) -> None:
        if self.on_wait is not None:
            try:
                self.on_wait(meta.caller, meta.invocation_id, event, platform_s)
            except Exception:
                log.exception("on_wait callback failed")

    def _record(self, meta: _Meta, status: int, input_tokens: int = 0, output_tokens: int = 0,
                platform_s: float = 0.0, *, fault: str | None = None, retry_after_s: float | None = None,
                upstream: bool = False) -> None:
        call = LLMCall(meta.caller, meta.invocation_id, meta.api.provider, meta.api.api, meta.model, status,
                       input_tokens, output_tokens, platform_s, time.monotonic() - meta.started, meta.stream,
                       fault, retry_after_s, upstream, meta.at)
        self.calls.append(call)
        if self.on_call is not None:
            try:
                self.on_call(call)
            except Exception:
                log.exception("on_call callback failed")


class _HotPath:
    """The endpoint's ASGI app: a model call goes straight to its handler; every other request to the routes.

    Model calls are every instance's hot path (on the virtual clock, the critical path of a run): the
    router and the middleware stack cost as much as the simulator's own work on such a request.
    """

    def __init__(self, routes: ASGIApp, serve: Callable[[Request, Api], Awaitable[Response]],
                 hot: dict[str, Api]) -> None:
        self.routes, self.serve, self.hot = routes, serve, hot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            caller = None
            if path.startswith("/i/"):
                caller, _, rest = path[3:].partition("/")
                path = "/" + rest
            api = self.hot.get(path)
            if api is not None and caller != "":
                scope["path_params"] = {"caller": caller} if caller is not None else {}
                response = await self.serve(Request(scope, receive), api)
                await response(scope, receive, send)
                return
        await self.routes(scope, receive, send)
