"""JUnit properties: what a test's deployment did, as ``<property>`` entries of its ``<testcase>``.

pytest writes the JUnit XML (``--junitxml``); the plugin adds these through ``record_property`` so CI
systems that read JUnit (GitLab, Jenkins, Azure) show pattern, outcome, latency and cost per test case.
Values pass through the same redaction as every other report.
"""

from __future__ import annotations

from collections.abc import Sequence

from emulators.records import Record

from .redact import Redactor

__all__ = ["junit_properties"]


def junit_properties(pattern: str, records: Sequence[Record],
                     redactor: Redactor | None = None) -> list[tuple[str, str]]:
    """(name, value) pairs for one test: its pattern, worst outcome, call count, latency and cost."""
    calls = [r for r in records if r.trigger == "invoke"]
    outcomes = sorted({r.outcome for r in calls})
    failed = [r for r in calls if not r.ok]
    props = [
        ("harness.pattern", pattern),
        ("harness.profile", calls[0].profile if calls else ""),
        ("harness.calls", str(len(calls))),
        ("harness.outcome", failed[0].outcome if failed else ("ok" if calls else "none")),
        ("harness.outcomes", ",".join(outcomes)),
        ("harness.latency_ms_max", f"{max((r.latency_ms for r in calls), default=0.0):.3f}"),
        ("harness.latency_ms_total", f"{sum(r.latency_ms for r in calls):.3f}"),
        ("harness.cold_starts", str(sum(1 for r in calls if r.cold_start))),
        ("harness.cost_usd", f"{sum(r.cost.total_usd for r in records):.9f}"),
    ]
    if failed and failed[0].error:
        props.append(("harness.error", failed[0].error.strip().splitlines()[0][:300]))
    red = redactor or Redactor()
    return [(k, red.text(v)) for k, v in props]
