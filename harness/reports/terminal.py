"""Terminal rendering of summaries with rich: one row per deployment, then the failures by kind."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from emulators.records import Record, Summary

__all__ = ["failures_table", "summary_table"]


def _ms(v: float) -> str:
    return f"{v:,.1f}" if v < 10_000 else f"{v / 1000:,.1f} s"


def _usd(v: float) -> str:
    return f"${v:,.6f}" if v < 1 else f"${v:,.2f}"


def summary_table(summaries: Sequence[Summary], title: str = "Summary (platform time)") -> Table:
    """Metrics down, one column per deployment, so patterns compare side by side in a narrow terminal."""
    t = Table(title=title, title_justify="left")
    t.add_column("")
    for s in summaries:
        t.add_column(s.pattern, justify="right")
    rows: list[tuple[str, list[str]]] = [
        ("profile", [s.profile for s in summaries]),
        ("calls", [str(s.calls) for s in summaries]),
        ("ok", [str(s.ok) for s in summaries]),
    ]
    kinds = sorted({k for s in summaries for k in s.outcomes if k != "ok"})
    rows += [(f"  {k}", [str(s.outcomes.get(k, 0)) for s in summaries]) for k in kinds]
    rows += [
        ("latency p50 ms", [_ms(s.latency_p50_ms) for s in summaries]),
        ("latency p95 ms", [_ms(s.latency_p95_ms) for s in summaries]),
        ("latency p99 ms", [_ms(s.latency_p99_ms) for s in summaries]),
        ("latency max ms", [_ms(s.latency_max_ms) for s in summaries]),
        ("cold starts", [f"{s.cold_starts} ({s.cold_start_share:.0%})" for s in summaries]),
        ("LLM calls", [str(s.llm_calls) for s in summaries]),
        ("LLM tokens in / out", [f"{s.input_tokens:,} / {s.output_tokens:,}" for s in summaries]),
        ("cost / 1k calls", [_usd(s.cost_per_1k_usd) for s in summaries]),
        ("total cost", [_usd(s.cost_usd + s.fixed_cost_usd) for s in summaries]),
    ]
    if any(s.warmup_pings for s in summaries):
        rows.append(("warm-up pings", [str(s.warmup_pings) for s in summaries]))
    for label, values in rows:
        t.add_row(label, *values)
    return t


def failures_table(records: Sequence[Record], limit: int = 8) -> Table | None:
    """The first error message of each failure kind, so a user sees why without opening the JSON."""
    first: dict[tuple[str, str], tuple[int, str]] = {}
    for r in records:
        if r.ok or r.trigger != "invoke":
            continue
        key = (r.pattern, r.outcome)
        count, msg = first.get(key, (0, (r.error or "").strip().splitlines()[0] if r.error else ""))
        first[key] = (count + 1, msg)
    if not first:
        return None
    t = Table(title="Failures", title_justify="left")
    t.add_column("pattern")
    t.add_column("outcome")
    t.add_column("count", justify="right")
    t.add_column("first error")
    for (pattern, outcome), (count, msg) in list(first.items())[:limit]:
        t.add_row(pattern, outcome, str(count), msg[:160])
    return t
