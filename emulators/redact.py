"""Secret redaction rules shared by the reports (``harness.reports.redact``) and the traces (``emulators.tracing``).

An agent's output, error text and events are written into reports verbatim, and an agent may well echo its
environment or an HTTP header by mistake; a span's error text may too. So reports and spans pass through one
``Redactor``. Three nets, from most to least specific:

1. literal values of secret-looking environment variables (the control process's and each deployment's
   ``env``): they are known exactly, whatever their shape;
2. dictionary keys that name a secret (``api_key``, ``Authorization``, ``GITHUB_TOKEN`` ...): the value goes;
3. well-known key shapes in any string (``sk-...``, ``Bearer ...``, AWS/GitHub/Slack/Google keys, JWTs,
   ``password=...``).

It lives in ``emulators`` because the engine may not import ``harness``; ``harness.reports.redact`` re-exports it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["REDACTED", "Redactor", "is_secret_name", "secret_values"]

REDACTED = "[REDACTED]"

# A name is secret-looking when one of these words is a whole segment of it (segments split by _ - .), so
# OPENAI_API_KEY and access_token match while input_tokens and max_tokens (metrics) do not.
_SECRET_NAME = re.compile(
    r"(?i)(?:^|[_\-.])(?:api[_\-]?key|apikey|secret|secrets|token|password|passwd|authorization|auth|"
    r"credential|credentials|private[_\-]?key|access[_\-]?key|session[_\-]?token|x[_\-]api[_\-]key)(?:$|[_\-.])"
)
# Shapes of keys that are secret wherever they appear. Each pattern keeps a recognisable prefix so a reader
# still sees *that* something was there.
_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(bearer)(\s+)(?!\[REDACTED)[A-Za-z0-9._~+/=\-]{8,}"), rf"\1\2{REDACTED}"),
    (re.compile(r"\bsk-[A-Za-z0-9][A-Za-z0-9_\-]{11,}"), f"sk-{REDACTED}"),
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), rf"\1{REDACTED}"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"), f"gh_{REDACTED}"),
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"), f"github_pat_{REDACTED}"),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}"), f"xox-{REDACTED}"),
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{30,}"), f"AIza{REDACTED}"),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"), f"jwt-{REDACTED}"),
    # NAME=value / "NAME": "value" / NAME: value, where NAME is secret-looking (headers, env dumps, URLs)
    (re.compile(r"(?i)\b([A-Za-z0-9_\-.]*(?:api[_\-]?key|apikey|secret|token|password|passwd|authorization|"
                r"credentials?)[\"']?\s*[:=]\s*[\"']?)(?!\[REDACTED|(?i:bearer)\s)([^\s\"',;&}{]{4,})"),
     rf"\1{REDACTED}"),
)
_MIN_LITERAL = 8  # shorter env values ("1", "true", "dev") are not worth the false positives


def is_secret_name(name: str) -> bool:
    """True if ``name`` (an env var, header or JSON key) looks like it holds a key, token or secret."""
    return bool(_SECRET_NAME.search(name))


def secret_values(*envs: Mapping[str, str]) -> set[str]:
    """Values of the secret-looking variables in ``envs`` (the control process's environment by default)."""
    sources = envs or (os.environ,)
    return {v for env in sources for k, v in env.items()
            if is_secret_name(k) and isinstance(v, str) and len(v) >= _MIN_LITERAL}


class Redactor:
    """Replaces secrets in strings and JSON-like values; keeps everything else as it is."""

    def __init__(self, values: Iterable[str] = (), *, include_environ: bool = True) -> None:
        known = set(values) | (secret_values(os.environ) if include_environ else set())
        # Longest first, so a key that contains another known key is replaced whole.
        self._values = sorted((v for v in known if len(v) >= _MIN_LITERAL), key=len, reverse=True)

    def text(self, s: str) -> str:
        """``s`` with every known secret value and every key-shaped token replaced."""
        for v in self._values:
            if v in s:
                s = s.replace(v, REDACTED)
        for pattern, repl in _SHAPES:
            s = pattern.sub(repl, s)
        return s

    def value(self, obj: Any) -> Any:
        """A copy of a JSON-like value with secrets replaced (dict keys that name a secret lose their value)."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, Mapping):
            out: dict[Any, Any] = {}
            for k, v in obj.items():
                key = self.text(k) if isinstance(k, str) else k
                if isinstance(k, str) and is_secret_name(k) and isinstance(v, str) and v:
                    out[key] = REDACTED
                else:
                    out[key] = self.value(v)
            return out
        if isinstance(obj, list | tuple):
            return [self.value(v) for v in obj]
        return obj

    def contains_secret(self, s: str) -> bool:
        """True if redaction would change ``s`` (a cheap test before rewriting pytest's own reports)."""
        return self.text(s) != s
