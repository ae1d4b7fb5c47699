"""The harness's LLM endpoint: an OpenAI/Anthropic-compatible simulator on a real port.

``LLMEndpoint`` serves OpenAI chat completions and responses, Anthropic messages and the model lists,
answers from a script (``fixtures/llm/*.toml``) or a deterministic default, paces answers by a per-model
latency model through the clock, enforces RPM/TPM limits per API key and injects faults, and reports every
call as an ``LLMCall``.
"""

from __future__ import annotations

from .dialog import ApiError, Message, Prompt, Reply, ToolCall, ToolSpec
from .limits import RateLimiter
from .script import Faults, Limits, ModelLatency, Rule, Script, load_script
from .server import BUILTIN_MODELS, LLMCall, LLMEndpoint

__all__ = [
    "BUILTIN_MODELS",
    "ApiError",
    "Faults",
    "LLMCall",
    "LLMEndpoint",
    "Limits",
    "Message",
    "ModelLatency",
    "Prompt",
    "RateLimiter",
    "Reply",
    "Rule",
    "Script",
    "ToolCall",
    "ToolSpec",
    "load_script",
]
