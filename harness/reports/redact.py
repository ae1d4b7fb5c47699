"""Secret redaction: API keys, tokens and Authorization headers never reach a report file.

An agent's output, error text and events are written into reports verbatim, and an agent may well echo its
environment or an HTTP header by mistake. So every report passes through one ``Redactor`` before any
renderer sees it (the JSON model is redacted, and the Markdown, HTML and JUnit renderers read only that
model). The rules live in ``emulators.redact`` (the traces use the same ones, and the engine may not import
``harness``); this module keeps their public names where the reports and the pytest plugin import them.
"""

from __future__ import annotations

from emulators.redact import REDACTED, Redactor, is_secret_name, secret_values

__all__ = ["REDACTED", "Redactor", "is_secret_name", "secret_values"]
