"""Fixtures of the integration tests: the LLM simulator and SDK clients bound to it, and a read counter.

The openai, embeddings and anthropic modules each used a copy of the LLM fixtures; here once. The SDKs are
imported inside the fixtures, so the other integration modules do not pay for importing them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from .llm_helpers import ServerThread

if TYPE_CHECKING:
    import anthropic
    import openai


@pytest.fixture(scope="module")
def llm_server() -> Iterator[ServerThread]:
    """One LLM simulator for the module, at time_scale 0.001."""
    with ServerThread(time_scale=0.001) as s:
        yield s


@pytest.fixture
def openai_client(llm_server: ServerThread) -> Iterator[openai.OpenAI]:
    """A sync openai client of the module's simulator, under the caller prefix 'inst-1'."""
    import openai

    with openai.OpenAI(base_url=llm_server.openai_url("inst-1"), api_key="sk-test", max_retries=0) as c:
        yield c


@pytest.fixture
def anthropic_client(llm_server: ServerThread) -> Iterator[anthropic.Anthropic]:
    """A sync anthropic client of the module's simulator, under the caller prefix 'inst-a'."""
    import anthropic

    with anthropic.Anthropic(base_url=llm_server.anthropic_url("inst-a"), api_key="sk-ant-test", max_retries=0) as c:
        yield c


@pytest.fixture
def count_calls(monkeypatch: pytest.MonkeyPatch) -> Callable[[type], Counter[type]]:
    """``count_calls(cls)``: count the calls of ``cls.__call__`` in this process from now on (a clock's reads)."""
    counts = Counter[type]()

    def count(cls: type) -> Counter[type]:
        original = cls.__call__

        def counted(self: Any) -> Any:
            counts[cls] += 1
            return original(self)

        monkeypatch.setattr(cls, "__call__", counted)
        return counts

    return count
