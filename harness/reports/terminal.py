"""Terminal rendering of summaries with rich: one row per deployment, then the failures by kind."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.table import Table

from emulators.records import Record, Summary

__all__ = ["failures_table", "patterns_table", "regions_table", "summary_table"]


def _ms(v: float) -> str:
    return f"{v:,.1f}" if v < 10_000 else f"{v / 1000:,.1f} s"


def _usd(v: float) -> str:
    if 0 < v < 1e-4:  # a call's price (a 2 ms Lambda call is $0.0000000042): three significant digits, not $0.000000
        return f"${v:.{min(12, 2 - math.floor(math.log10(v)))}f}"
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
    if any(s.embedding_tokens or s.memory_ops for s in summaries):
        # Long-term memory: what it cost in embedding tokens and store round trips.
        rows.insert(-2, ("embed tok / mem ops",
                         [f"{s.embedding_tokens:,} / {s.memory_ops:,}" for s in summaries]))
    if any(s.peak_replicas or s.idle_cost_usd for s in summaries):
        # Warm capacity is paid for idle too: the split shows what the traffic used vs what sat waiting.
        rows.append(("busy / idle cost", [f"{_usd(s.busy_cost_usd)} / {_usd(s.idle_cost_usd)}" for s in summaries]))
    if any(s.peak_replicas for s in summaries):
        rows.append(("replicas (peak)", [
            f"{s.peak_replicas} ({s.replica_seconds:,.0f} replica-s)" if s.peak_replicas else "-"
            for s in summaries]))
    if any(s.warmup_pings for s in summaries):
        rows.append(("warm-up pings", [str(s.warmup_pings) for s in summaries]))
    if any(s.min_headroom for s in summaries):
        # How close the closest ok call came to each limit: "fits, with 12% CPU headroom".
        rows.append(("headroom (min)", [", ".join(f"{k} {v:.0%}" for k, v in sorted(s.min_headroom.items())) or "-"
                                        for s in summaries]))
    if any(s.clock_late_max_s >= 1.0 for s in summaries):
        # A scaled clock: a host stall stretched the fleet's periods (syncs, expiries) by up to this much.
        rows.append(("timers late (max)", [f"{s.clock_late_max_s:,.1f} s" for s in summaries]))
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


def _short_ms(v: float) -> str:
    return f"{v:,.1f}" if v < 100 else (f"{v:,.0f}" if v < 100_000 else f"{v / 1000:,.0f}s")


def patterns_table(summaries: Mapping[str, Mapping[str, Any]],
                   title: str = "Harness summary (latency: platform ms)") -> Table:
    """One row per pattern, from the report's JSON summaries (the pytest plugin's end-of-session table).

    Compact on purpose (short headers and values, light box): it must fit the 80 columns pytest often has.
    """
    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for col in ("pattern", "ok/calls", "failures", "p50", "p95", "p99", "cold", "$/1k calls", "tokens"):
        t.add_column(col, justify="left" if col in ("pattern", "failures") else "right",
                     no_wrap=col != "failures")
    for pattern, s in summaries.items():
        kinds = ", ".join(f"{k} {n}" for k, n in s.get("outcomes", {}).items() if k != "ok") or "-"
        cost = s["cost_per_1k_usd"]
        t.add_row(pattern, f"{s['ok']}/{s['calls']}", kinds, _short_ms(s["latency_p50_ms"]),
                  _short_ms(s["latency_p95_ms"]), _short_ms(s["latency_p99_ms"]), str(s["cold_starts"]),
                  f"${cost:.4g}" if cost < 1 else f"${cost:,.2f}",
                  f"{s.get('input_tokens', 0) + s.get('output_tokens', 0):,}")
    return t


def regions_table(summaries: Sequence[Summary]) -> Table | None:
    """Latency by caller region for every deployment that models geography, with why (None if none does)."""
    from emulators.edge_geo import region_comparison

    rows = region_comparison(summaries)
    if not rows:
        return None
    t = Table(title="Latency by caller region (platform time)", title_justify="left")
    for name, justify in (("caller", "left"), ("pattern", "left"), ("p50 ms", "right"), ("p95 ms", "right"),
                          ("why", "left")):
        t.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        t.add_row(str(r["caller_region"]), f"{r['pattern']} ({r['profile']})", _ms(float(r["p50_ms"])),  # type: ignore[arg-type]
                  _ms(float(r["p95_ms"])), str(r["why"]))  # type: ignore[arg-type]
    return t
