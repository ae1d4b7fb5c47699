"""The one error tree of the harness.

Platform failures (a timeout, an OOM, a throttle) are *outcomes* recorded on a Result, never raised. These
exceptions are for the user's mistakes and the harness's own trouble: a bad agent path, a bad profile, a
process that could not be started. Every message says what failed, the value, and what to do.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "AgentLoadError",
    "BackendUnavailableError",
    "ConfigError",
    "DeploymentClosedError",
    "HarnessError",
    "InstanceStartError",
    "MemoryStoreError",
    "MessageTooLargeError",
    "close_matches_hint",
]


class HarnessError(Exception):
    """Base of every error the harness raises."""


class ConfigError(HarnessError, ValueError):
    """A configuration value is wrong: an unknown pattern, profile field, bad agent path, bad profile file."""


class AgentLoadError(ConfigError):
    """The agent spec cannot be resolved to a callable (bad path, missing attribute, syntax error)."""


class InstanceStartError(HarnessError):
    """The harness could not start an instance process for reasons of its own (not the agent's init)."""


class DeploymentClosedError(HarnessError):
    """The deployment was used after it was closed."""


class BackendUnavailableError(HarnessError):
    """A queue or state backend (Redis, SQS, RabbitMQ, PostgreSQL) cannot be reached, at open or mid-run."""


class MemoryStoreError(HarnessError, ValueError):
    """A long-term memory (``ctx.memory``) call is wrong: vectors of another size, a bad filter or namespace."""


class MessageTooLargeError(HarnessError, ValueError):
    """A queue message is larger than the queue's size limit (the platform's, e.g. SQS's 1 MiB)."""


def close_matches_hint(value: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean X?)' for the closest valid choices, or '' when nothing is close."""
    matches = difflib.get_close_matches(value, list(choices), n=3, cutoff=0.6)
    if not matches:
        return ""
    return " (did you mean " + " or ".join(repr(m) for m in matches) + "?)"
