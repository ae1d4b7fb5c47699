"""Fixtures of the LLM endpoint tests: one simulator per module and SDK clients bound to it.

The openai, embeddings and anthropic modules each used a copy of these; here once. The SDKs are imported
inside the fixtures, so the other integration modules do not pay for importing them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

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
