"""``POST /v1/embeddings`` through the real openai SDK: shapes, usage, determinism, nearness of texts that
share words, the latency wait and price from the price table, errors, and proxy mode."""

from __future__ import annotations

import math

import httpx
import openai
import pytest

from emulators.billing import embedding_latency, llm_cost
from emulators.llm.embeddings import embedding_latency_s

from .llm_helpers import ServerThread

pytestmark = pytest.mark.integration


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_sdk_default_base64_decodes_to_unit_vectors_with_usage(openai_client: openai.OpenAI,
                                                               llm_server: ServerThread) -> None:
    """The SDK's default (base64) request decodes to one unit vector per input, and usage counts the tokens."""
    r = openai_client.embeddings.create(model="text-embedding-3-small", input=["my plan is Pro", "refund policy"])
    assert [d.index for d in r.data] == [0, 1]
    assert all(len(d.embedding) == 1536 for d in r.data)
    assert all(abs(math.sqrt(sum(v * v for v in d.embedding)) - 1.0) < 1e-5 for d in r.data)
    assert r.usage.prompt_tokens == r.usage.total_tokens > 0
    call = llm_server.calls[-1]
    assert (call.caller, call.api, call.status, call.output_tokens) == ("inst-1", "embeddings", 200, 0)
    assert call.input_tokens == r.usage.prompt_tokens


def test_float_and_base64_agree_and_repeat_exactly(openai_client: openai.OpenAI) -> None:
    """The same text gives the same vector every time, whether asked as floats or base64."""
    a = openai_client.embeddings.create(model="text-embedding-3-small", input="shipping address", dimensions=64,
                                        encoding_format="float").data[0].embedding
    b = openai_client.embeddings.create(model="text-embedding-3-small", input="shipping address",
                                        dimensions=64).data[0].embedding
    assert len(a) == 64
    assert all(abs(x - y) < 1e-6 for x, y in zip(a, b, strict=True))


def test_texts_sharing_words_are_nearer_than_unrelated_ones(openai_client: openai.OpenAI) -> None:
    """A question is nearest the stored fact that shares its topic word, and far from the others."""
    facts = ["The customer is on the Pro plan", "The customer lives in Lisbon", "The customer prefers email"]
    query = "which plan am I on?"
    r = openai_client.embeddings.create(model="text-embedding-3-small", input=[*facts, query], dimensions=256)
    vecs = [d.embedding for d in r.data]
    sims = [_cos(vecs[-1], v) for v in vecs[:-1]]
    assert max(range(3), key=lambda i: sims[i]) == 0
    assert sims[0] > 0.2 and sims[0] > 2 * max(sims[1:])
    plural = openai_client.embeddings.create(model="text-embedding-3-small", input=["plans", "plan", "lisbon"],
                                             dimensions=256).data
    assert _cos(plural[0].embedding, plural[1].embedding) > _cos(plural[0].embedding, plural[2].embedding) + 0.2


def test_latency_wait_and_price_come_from_the_price_table(openai_client: openai.OpenAI,
                                                          llm_server: ServerThread) -> None:
    """The simulated wait is the table's per-request + per-token latency; the call is priced at its input rate."""
    r = openai_client.embeddings.create(model="text-embedding-3-large", input="x " * 400, dimensions=8)
    call = llm_server.calls[-1]
    per_request_ms, per_1k_ms = embedding_latency("text-embedding-3-large")
    assert per_request_ms > 0 and per_1k_ms > 0
    assert call.platform_s == pytest.approx(embedding_latency_s("text-embedding-3-large", r.usage.prompt_tokens))
    assert llm_cost("text-embedding-3-large", r.usage.prompt_tokens, 0) > 0


def test_token_arrays_and_bad_requests(openai_client: openai.OpenAI) -> None:
    """Token-id arrays are accepted; an empty input or too many dimensions is a 400 in OpenAI's format."""
    r = openai_client.embeddings.create(model="text-embedding-3-small", input=[[1, 2, 3], [4, 5]], dimensions=16)
    assert [len(d.embedding) for d in r.data] == [16, 16] and r.usage.prompt_tokens == 5
    with pytest.raises(openai.BadRequestError) as err:
        openai_client.embeddings.create(model="text-embedding-3-small", input="")
    assert err.value.status_code == 400
    with pytest.raises(openai.BadRequestError, match="dimensions"):
        openai_client.embeddings.create(model="text-embedding-3-small", input="a", dimensions=4096)


def test_the_model_list_names_the_embedding_models(openai_client: openai.OpenAI) -> None:
    """GET /v1/models lists the embedding models beside the chat ones."""
    assert "text-embedding-3-small" in {m.id for m in openai_client.models.list()}


def test_proxy_mode_forwards_embeddings_and_meters_the_upstream_usage() -> None:
    """In proxy mode the upstream's vectors come back and its prompt_tokens are metered."""
    with ServerThread() as upstream, ServerThread(upstream=upstream.url) as proxy, \
            openai.OpenAI(base_url=proxy.openai_url("inst-2"), api_key="harness-x", max_retries=0) as c:
        r = c.embeddings.create(model="text-embedding-3-small", input="hello world", dimensions=32)
        direct = httpx.post(upstream.url + "/v1/embeddings", json={
            "model": "text-embedding-3-small", "input": "hello world", "dimensions": 32}).json()
        assert r.data[0].embedding == pytest.approx(direct["data"][0]["embedding"], abs=1e-6)
        call = proxy.calls[-1]
        assert call.upstream and call.api == "embeddings" and call.input_tokens == r.usage.prompt_tokens > 0
