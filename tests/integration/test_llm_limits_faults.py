"""Rate limits, latency and injected faults of the LLM simulator, seen through real clients: 429s with
retry-after that the SDK's own retries honour, streams paced at the model's speed, cuts, hangs, 500s,
seeded repeatability, and 400s in the provider's format."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import anthropic
import httpx
import openai
import pytest

from emulators.llm import load_script

from .llm_helpers import LLM_SCRIPTS, ServerThread

pytestmark = pytest.mark.integration

HI = [{"role": "user", "content": "Hi"}]


def _burst(url: str, n: int, **client_kwargs: object) -> list[object]:
    async def main() -> list[object]:
        async with openai.AsyncOpenAI(base_url=url, api_key="sk-burst", **client_kwargs) as c:  # type: ignore[arg-type]
            calls = [c.chat.completions.create(model="gpt-4o-mini", messages=HI) for _ in range(n)]
            return list(await asyncio.gather(*calls, return_exceptions=True))

    return asyncio.run(main())


def test_rpm_burst_gets_429_with_retry_after_headers() -> None:
    """At RPM 60, ten calls within one platform second: one answer and nine 429s carrying retry-after."""
    with ServerThread(time_scale=0.1, rpm=60) as s:
        async def main() -> list[httpx.Response]:
            async with httpx.AsyncClient() as c:
                body = {"model": "gpt-4o-mini", "messages": HI}
                return list(await asyncio.gather(*[
                    c.post(f"{s.url}/v1/chat/completions", json=body, headers={"authorization": "Bearer k1"})
                    for _ in range(10)]))

        began = time.monotonic()
        responses = asyncio.run(main())
        burst_ms = (time.monotonic() - began) * 1000.0
    refused = [r for r in responses if r.status_code == 429]
    assert sorted(r.status_code for r in responses) == [200] + [429] * 9
    waits = sorted(float(r.headers["retry-after-ms"]) for r in refused)
    # Slots 1..9 platform s after the first answer, told in wall ms at 0.1 wall s per platform s, less the
    # time between the first answer and each refusal: at most the burst's own duration (a few ms; more on
    # a loaded machine, where the ten requests are answered one after another).
    for k, wait in enumerate(waits, start=1):
        assert 100.0 * k - burst_ms - 1.0 <= wait <= 100.0 * k + 1.0, (k, wait, burst_ms)
    assert sorted(int(r.headers["retry-after"]) for r in refused) == list(range(1, 10))
    first = refused[0]
    assert first.headers["x-ratelimit-limit-requests"] == "60"
    assert first.headers["x-ratelimit-remaining-requests"] == "0"
    assert first.json()["error"]["code"] == "rate_limit_exceeded"
    assert first.json()["error"]["type"] == "requests"


def test_rpm_burst_is_drained_by_the_sdks_own_retries() -> None:
    """The openai SDK's default retries honour retry-after, so all ten calls of the burst succeed."""
    with ServerThread(time_scale=0.05, rpm=60) as s:
        started = time.monotonic()
        results = _burst(s.openai_url(), 10)
        elapsed = time.monotonic() - started
        calls = s.calls
    assert all(isinstance(r, openai.types.chat.ChatCompletion) for r in results), results
    assert sum(c.status == 429 for c in calls) == 9 and sum(c.status == 200 for c in calls) == 10
    # Each refusal was told its slot (1..9 platform s after the first answer) less the time since that answer:
    # add that time back (it grows on a loaded machine, where the ten arrive one after another).
    first = min(c.started_at for c in calls if c.status == 200)
    slots = sorted((c.retry_after_s or 0.0) + (c.started_at - first) / 0.05 for c in calls if c.status == 429)
    assert slots == pytest.approx([float(k) for k in range(1, 10)], abs=0.3)
    assert elapsed < 3.0  # 9 platform seconds of waiting at 0.05 wall s per platform s


def test_api_keys_have_separate_buckets() -> None:
    """Another API key has its own bucket: its first call is answered while the first key is drained."""
    instant = load_script({"defaults": {"ttft_s": 0, "tokens_per_s": 1e6}})
    with ServerThread(time_scale=1.0, rpm=60, script=instant) as s:  # 1 request per real second per key
        for key, expected in (("a", 200), ("a", 429), ("b", 200)):
            r = httpx.post(f"{s.url}/v1/chat/completions", json={"model": "m", "messages": HI},
                           headers={"x-api-key": key})
            assert r.status_code == expected, key


def test_tpm_limit_refuses_with_the_anthropic_format() -> None:
    """A TPM limit refuses in Anthropic's format (rate_limit_error) with retry-after on /v1/messages."""
    with ServerThread(time_scale=0.1, tpm=600) as s:  # 10 tokens per second, bucket of 10
        body = {"model": "claude-haiku-4-5", "max_tokens": 100, "messages": HI}
        first = httpx.post(f"{s.url}/v1/messages", json=body, headers={"x-api-key": "k"})
        second = httpx.post(f"{s.url}/v1/messages", json=body, headers={"x-api-key": "k"})
    assert first.status_code == 200 and second.status_code == 429
    assert second.json()["error"]["type"] == "rate_limit_error"
    assert int(second.headers["retry-after"]) >= 1
    assert second.headers["anthropic-ratelimit-tokens-limit"] == "600"


def test_stream_of_200_tokens_at_50_per_second_takes_4_platform_seconds() -> None:
    """A streamed 200-token answer at 50 tok/s takes 4 s of platform time (+-10%), scaled by the clock."""
    scale = 0.05
    with ServerThread(time_scale=scale, script=LLM_SCRIPTS / "stream_pace.toml") as s, \
            openai.OpenAI(base_url=s.openai_url(), api_key="k") as c:
        # Warm up: open the connection and build the SDK's chunk models, so the measurement is the answer.
        list(c.chat.completions.create(model="sim-50tps", messages=HI, stream=True))
        started = time.monotonic()
        stream = c.chat.completions.create(model="sim-50tps", messages=HI, stream=True,
                                           stream_options={"include_usage": True})
        chunks = list(stream)
        platform = (time.monotonic() - started) / scale
        call = s.calls[-1]
    assert chunks[-1].usage.completion_tokens == 200
    assert platform == pytest.approx(4.0, rel=0.10)
    assert call.platform_s == pytest.approx(4.0) and call.stream
    assert s.waits[-2:] == [(None, None, "begin", pytest.approx(4.0)), (None, None, "end", pytest.approx(4.0))]
    assert len(chunks) == 1 + 200 + 2  # the role chunk, one chunk per token, the finish and the usage chunks


def test_non_streamed_answer_waits_its_latency() -> None:
    """A non-streamed answer arrives after ttft + tokens / tokens_per_s too, announced by on_wait."""
    scale = 0.05
    with ServerThread(time_scale=scale, script=LLM_SCRIPTS / "stream_pace.toml") as s, \
            openai.OpenAI(base_url=s.openai_url(), api_key="k") as c:
        c.chat.completions.create(model="sim-50tps", messages=HI)
        started = time.monotonic()
        c.chat.completions.create(model="sim-50tps", messages=HI)
        platform = (time.monotonic() - started) / scale
    # Never shorter than the answer's 4 platform s; longer by the client's and server's own real time only.
    assert 3.95 <= platform <= 4.6
    assert [w[2] for w in s.waits] == ["begin", "end", "begin", "end"]


def test_cut_stream_raises_in_the_client() -> None:
    """A stream cut mid-way closes the connection: the SDK raises, and the call records the cut."""
    script = load_script({"rules": [{"fault": "cut", "output_tokens": 40}]})
    with ServerThread(script=script) as s, openai.OpenAI(base_url=s.openai_url(), api_key="k", max_retries=0) as c:
        got: list[str] = []
        with pytest.raises(openai.APIConnectionError):
            for chunk in c.chat.completions.create(model="m", messages=HI, stream=True):
                got.append(chunk.choices[0].delta.content or "")
        assert 0 < len("".join(got)) < 40 * 4
        with pytest.raises(openai.APIConnectionError):
            c.chat.completions.create(model="m", messages=HI)  # a non-streamed body cut half-way
        assert [(x.status, x.fault) for x in s.calls] == [(200, "cut"), (200, "cut")]
        assert s.calls[0].output_tokens == 20


def test_cut_anthropic_stream_raises() -> None:
    """The anthropic SDK also sees a cut stream as an error, not a short answer."""
    script = load_script({"rules": [{"fault": "cut", "output_tokens": 40}]})
    with ServerThread(script=script) as s, \
            anthropic.Anthropic(base_url=s.anthropic_url(), api_key="k", max_retries=0) as c, \
            pytest.raises(Exception) as info, \
            c.messages.stream(model="claude-haiku-4-5", max_tokens=100, messages=HI) as stream:
        stream.get_final_message()
    # The anthropic SDK lets the transport's error through unwrapped while it reads a stream.
    assert isinstance(info.value, anthropic.APIConnectionError) or "RemoteProtocolError" in type(info.value).__name__
    assert "incomplete" in str(info.value) or isinstance(info.value, anthropic.APIConnectionError)


def test_hang_outlasts_the_client_timeout() -> None:
    """A hang answers nothing: the client times out, the call is 499, and the wait ended when it left."""
    script = load_script({"rules": [{"fault": "hang"}]})
    with ServerThread(time_scale=0.01, script=script) as s, \
            openai.OpenAI(base_url=s.openai_url(), api_key="k", max_retries=0, timeout=0.3) as c:
        with pytest.raises(openai.APITimeoutError):
            c.chat.completions.create(model="m", messages=HI)
        deadline = time.monotonic() + 2
        while not s.calls and time.monotonic() < deadline:
            time.sleep(0.01)
        (call,) = s.calls
    assert (call.status, call.fault) == (499, "hang")
    # 0.3 s wall at 0.01 wall s per platform s: at most about 30 platform s (less when the loaded server began
    # the wait late), and nowhere near the hang's 86,400: the wait ended when the client left.
    assert 1 <= call.platform_s <= 60
    assert s.waits[0][2:] == ("begin", 86400.0) and s.waits[1][2] == "end"


def test_stop_ends_a_hang_in_progress() -> None:
    """Stopping the endpoint ends a hang at once instead of waiting out its 86,400 platform seconds."""
    script = load_script({"rules": [{"fault": "hang"}]})
    server = ServerThread(time_scale=1.0, script=script).__enter__()
    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(httpx.post(f"{server.url}/v1/chat/completions", timeout=30,
                                      json={"model": "m", "messages": HI}).status_code)
        except httpx.HTTPError as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.3)
    started = time.monotonic()
    server.close()
    caller.join(5)
    assert not caller.is_alive() and time.monotonic() - started < 3.0
    assert outcome and server.calls[0].fault == "hang"


def test_server_error_once_is_retried_by_the_sdk() -> None:
    """A scripted 500 on the first call: the openai SDK retries and the retry is answered."""
    script = load_script({"rules": [{"times": 1, "error": 500}]})
    with ServerThread(script=script) as s, openai.OpenAI(base_url=s.openai_url(), api_key="k") as c:
        r = c.chat.completions.create(model="m", messages=HI)
        assert r.choices[0].message.content
        assert [x.status for x in s.calls] == [500, 200]


def test_random_faults_repeat_with_the_seed() -> None:
    """With fault rates set, the same seed and requests give the same statuses; overload is 503 for OpenAI."""
    def statuses(seed: int) -> list[int]:
        script = load_script({"faults": {"error": 0.3, "overloaded": 0.3}})
        with ServerThread(script=script, seed=seed) as s, \
                openai.OpenAI(base_url=s.openai_url(), api_key="k", max_retries=0) as c:
            for i in range(12):
                with contextlib.suppress(openai.APIStatusError):
                    c.chat.completions.create(model="m", messages=[{"role": "user", "content": f"q{i}"}])
            return [x.status for x in s.calls]

    first = statuses(3)
    assert first == statuses(3)
    assert set(first) <= {200, 500, 503} and len(set(first)) > 1


def test_unknown_route_malformed_json_and_missing_messages_are_400s() -> None:
    """Unknown route, malformed JSON and a missing messages field are 400s in the provider's format."""
    with ServerThread() as s:
        unknown = httpx.post(f"{s.url}/v1/chat/complete", json={})
        anthropic_unknown = httpx.post(f"{s.url}/v1/nothing", json={}, headers={"anthropic-version": "2023-06-01"})
        malformed = httpx.post(f"{s.url}/v1/chat/completions", content=b"{not json",
                               headers={"content-type": "application/json"})
        missing = httpx.post(f"{s.url}/i/x/v1/chat/completions", json={"model": "gpt-4o-mini"})
        with openai.OpenAI(base_url=s.openai_url(), api_key="k") as c, \
                pytest.raises(openai.BadRequestError) as info:
            c.chat.completions.create(model="gpt-4o-mini", messages=[])
    assert unknown.status_code == 400 and unknown.json()["error"]["type"] == "invalid_request_error"
    assert "Invalid URL (POST /v1/chat/complete)" in unknown.json()["error"]["message"]
    assert anthropic_unknown.status_code == 400 and anthropic_unknown.json()["type"] == "error"
    assert malformed.status_code == 400 and "could not parse the JSON body" in malformed.json()["error"]["message"]
    assert missing.status_code == 400
    assert missing.json()["error"] == {"message": "Missing required parameter: 'messages'.",
                                       "type": "invalid_request_error", "param": "messages",
                                       "code": "missing_required_parameter"}
    assert info.value.status_code == 400 and info.value.code == "empty_array"
