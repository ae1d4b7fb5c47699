"""``llm_sim``: the harness's LLM simulator served on a real port for a test, with its counters.

The same ``LLMEndpoint`` a deployment's pool starts for its instances, here on its own event-loop thread
(the sync facade's ``LoopThread``) so a plain sync test can point an SDK at it and then read what it got.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulators.clock import Clock
from emulators.llm import LLMEndpoint
from emulators.llm.server import LLMCall

from .._loop import LoopThread

__all__ = ["LLMSim"]


@dataclass
class LLMSim:
    """A started simulator: ``url``, ``openai_base_url``, ``script``, and counters over ``calls``."""

    endpoint: LLMEndpoint
    engine: LoopThread
    url: str

    @classmethod
    def start(cls, script: str | Path | None = None, time_scale: float = 0.01, seed: int = 0) -> LLMSim:
        """Serve a simulator on a free local port; ``stop`` ends it."""
        engine = LoopThread(name="harness-llm-sim")
        try:
            endpoint = engine.call(_make, script, time_scale, seed)
            url = engine.call(endpoint.start)
        except BaseException:
            engine.stop()
            raise
        return cls(endpoint, engine, url)

    @property
    def openai_base_url(self) -> str:
        """``base_url`` for ``openai.OpenAI``."""
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """``base_url`` for ``anthropic.Anthropic``."""
        return self.url

    @property
    def script(self) -> Any:
        """The loaded script (rules, latency, limits, faults)."""
        return self.endpoint.script

    @property
    def calls(self) -> list[LLMCall]:
        """Every request answered or refused so far, in order."""
        return list(self.endpoint.calls)

    @property
    def call_count(self) -> int:
        """Requests received."""
        return len(self.endpoint.calls)

    @property
    def input_tokens(self) -> int:
        """Prompt tokens of the answered calls."""
        return sum(c.input_tokens for c in self.endpoint.calls)

    @property
    def output_tokens(self) -> int:
        """Completion tokens of the answered calls."""
        return sum(c.output_tokens for c in self.endpoint.calls)

    def by_status(self) -> Counter[int]:
        """Calls per HTTP status (200, 429, 500 ...)."""
        return Counter(c.status for c in self.endpoint.calls)

    def env(self) -> dict[str, str]:
        """Environment variables that point the ``openai`` and ``anthropic`` SDKs here."""
        return {"OPENAI_BASE_URL": self.openai_base_url, "OPENAI_API_KEY": "harness-llm-sim",
                "ANTHROPIC_BASE_URL": self.anthropic_base_url, "ANTHROPIC_API_KEY": "harness-llm-sim"}

    def stop(self) -> None:
        """Close every connection and the port, then the loop thread."""
        try:
            self.engine.call(self.endpoint.stop)
        finally:
            self.engine.stop()


async def _make(script: str | Path | None, time_scale: float, seed: int) -> LLMEndpoint:
    # Built on the loop thread: the endpoint's waiters bind to the loop they are created in.
    return LLMEndpoint(clock=Clock(time_scale), script=script, seed=seed)
