"""Metering proxy mode: the endpoint forwards admitted requests to a real upstream (here the simulator
itself, or a capturing stub), meters tokens from the upstream's usage, keeps its limits and faults, and
answers a clear 502 naming the upstream when it is down."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import anthropic
import httpx
import openai
import pytest

import harness

from .llm_helpers import AGENTS, LLM_SCRIPTS, ServerThread

pytestmark = pytest.mark.integration

HI = [{"role": "user", "content": "Hi there"}]


@pytest.fixture
def upstream() -> Iterator[ServerThread]:
    """The simulator standing in for a real provider."""
    with ServerThread() as s:
        yield s


@pytest.fixture
def proxy(upstream: ServerThread) -> Iterator[ServerThread]:
    """An endpoint in proxy mode in front of the upstream."""
    with ServerThread(upstream=upstream.url) as p:
        yield p


def test_chat_completion_is_forwarded_and_metered(proxy: ServerThread, upstream: ServerThread) -> None:
    """The answer is the upstream's, and the proxy's call record carries the upstream's token usage."""
    client = openai.OpenAI(base_url=proxy.openai_url("inst-1"), api_key="harness-run")
    direct = openai.OpenAI(base_url=upstream.openai_url(), api_key="k")
    got = client.chat.completions.create(model="gpt-4o-mini", messages=HI)  # type: ignore[arg-type]
    want = direct.chat.completions.create(model="gpt-4o-mini", messages=HI)  # type: ignore[arg-type]
    assert got.choices[0].message.content == want.choices[0].message.content
    [call] = proxy.calls
    assert call.upstream and call.status == 200 and call.caller == "inst-1"
    assert got.usage is not None
    assert (call.input_tokens, call.output_tokens) == (got.usage.prompt_tokens, got.usage.completion_tokens)
    assert len(upstream.calls) == 2


def test_stream_is_metered_without_showing_the_client_a_usage_chunk(proxy: ServerThread) -> None:
    """A stream the client did not ask usage for still gets metered; the client sees no usage chunk."""
    client = openai.OpenAI(base_url=proxy.openai_url(), api_key="harness-run")
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True))  # type: ignore[arg-type]
    assert chunks and all(c.usage is None for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    [call] = proxy.calls
    assert call.stream and call.output_tokens > 0 and call.input_tokens > 0 and text


def test_responses_and_anthropic_streams_are_metered(proxy: ServerThread) -> None:
    """responses.create streaming and an Anthropic message stream both meter input and output tokens."""
    oa = openai.OpenAI(base_url=proxy.openai_url(), api_key="harness-run")
    with oa.responses.stream(model="gpt-4o-mini", input="Say hi") as stream:
        final = stream.get_final_response()
    an = anthropic.Anthropic(base_url=proxy.anthropic_url(), api_key="harness-run")
    with an.messages.stream(model="claude-haiku-4-5", max_tokens=100, messages=HI) as s:  # type: ignore[arg-type]
        message = s.get_final_message()
    first, second = proxy.calls
    assert final.usage is not None and (first.input_tokens, first.output_tokens) == (
        final.usage.input_tokens, final.usage.output_tokens)
    assert (second.api, second.input_tokens, second.output_tokens) == (
        "messages", message.usage.input_tokens, message.usage.output_tokens)


def test_proxy_applies_its_own_rate_limit_before_the_upstream(upstream: ServerThread) -> None:
    """At RPM 60, of three quick calls the proxy forwards one and refuses two with 429 in OpenAI's format."""
    with ServerThread(time_scale=1.0, upstream=upstream.url, rpm=60) as p, httpx.Client() as c:
        body = {"model": "gpt-4o-mini", "messages": HI}
        codes = [c.post(f"{p.url}/v1/chat/completions", json=body).status_code for _ in range(3)]
    assert codes == [200, 429, 429]
    assert len(upstream.calls) == 1


def test_a_down_upstream_is_a_502_naming_it_quickly() -> None:
    """No server behind the upstream URL: a 502 in the provider's format with the address, within seconds."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with ServerThread(upstream=f"http://user:secret@127.0.0.1:{port}/v1") as p, httpx.Client() as c:
        began = time.monotonic()
        r = c.post(f"{p.url}/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": HI})
        took = time.monotonic() - began
        [call] = p.calls
    assert r.status_code == 502 and took < 5.0
    message = r.json()["error"]["message"]
    assert f"http://127.0.0.1:{port}" in message and "unreachable" in message and "secret" not in message
    assert call.fault == "upstream" and call.upstream is False


class _Capture(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, str]]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        type(self).seen.append({k.lower(): v for k, v in self.headers.items()})
        body = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                           "choices": [{"index": 0, "finish_reason": "stop",
                                        "message": {"role": "assistant", "content": "ok"}}],
                           "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def capture() -> Iterator[str]:
    """A stub upstream that records the headers it receives."""
    _Capture.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_harness_keys_are_swapped_for_the_configured_key_and_never_recorded(capture: str) -> None:
    """A harness key is replaced by the proxy's key upstream; a caller's own key is passed through."""
    with ServerThread(upstream=capture, upstream_key="sk-real-123") as p:
        openai.OpenAI(base_url=p.openai_url(), api_key="harness-abc").chat.completions.create(
            model="m", messages=HI)  # type: ignore[arg-type]
        openai.OpenAI(base_url=p.openai_url(), api_key="sk-own-456").chat.completions.create(
            model="m", messages=HI)  # type: ignore[arg-type]
        calls = p.calls
    assert [h["authorization"] for h in _Capture.seen] == ["Bearer sk-real-123", "Bearer sk-own-456"]
    assert "x-harness-invocation" not in _Capture.seen[0]
    assert all((c.input_tokens, c.output_tokens) == (7, 3) for c in calls)
    assert "sk-real" not in repr(calls) and "sk-own" not in repr(calls)


def test_a_deployment_meters_a_tool_loop_through_the_proxy(upstream: ServerThread) -> None:
    """deploy(llm=URL): the agent's three calls go upstream and the record sums the upstream's usage."""
    with ServerThread(script=LLM_SCRIPTS / "tool_loop.toml") as real, harness.deploy(
            f"{AGENTS / 'openai_tools.py'}:agent", time_scale=0.01, timeout_s=60, llm=real.url) as d:
        r = d.invoke({"question": "What is 2 + 3, and the weather in Paris?"})
        served = real.calls
    assert r.ok, r.error
    assert r.llm_calls == 3 and r.output["model_calls"] == 3
    assert r.input_tokens == sum(c.input_tokens for c in served)
    assert r.output_tokens == sum(c.output_tokens for c in served)
    assert r.cost.llm_usd > 0
