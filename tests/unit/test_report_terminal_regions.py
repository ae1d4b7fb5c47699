"""The terminal report shows latency by caller region with the reason, and each limit's headroom."""

from __future__ import annotations

import io
from dataclasses import replace

from rich.console import Console

from emulators.records import Summary, summarize
from harness.reports.terminal import regions_table, summary_table


def _summary(pattern: str, **fields: object) -> Summary:
    return replace(summarize([], pattern=pattern, profile="p"), **fields)  # type: ignore[arg-type]


def _text(table: object) -> str:
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(table)
    return out.getvalue()


def test_regions_table_explains_each_row_and_is_absent_without_geography() -> None:
    """A summary with latency by region gets a row saying its round trips; none without geography."""
    edge = _summary("edge", latency_by_region={
        "eu-west": {"p50_ms": 628.0, "p95_ms": 700.0, "client_rtt_ms": 3.0, "network_ms": 10.0, "llm_calls": 2.0}})
    text = _text(regions_table([edge]))
    assert "eu-west" in text and "628.0" in text and "3 ms caller-to-isolate round trip" in text
    assert regions_table([_summary("serverless")]) is None


def test_summary_table_shows_the_smallest_headroom_per_limit() -> None:
    """min_headroom turns into a 'headroom (min)' row with percentages."""
    s = _summary("edge", min_headroom={"cpu": 0.12, "memory": 0.5})
    assert "cpu 12%, memory 50%" in _text(summary_table([s]))
