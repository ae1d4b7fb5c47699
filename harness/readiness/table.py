"""Terminal rendering of a readiness result: the checklist as a rich table, then the recommendation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

__all__ = ["checklist_table", "recommendation_text"]

_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red"}


def checklist_table(section: Mapping[str, Any], width: int = 60) -> Table:
    """One row per checklist item, one column per pattern: the verdict and its evidence."""
    patterns = list(section.get("patterns") or {})
    t = Table(title=f"Readiness: {section.get('agent', '')}", title_justify="left", show_lines=True)
    t.add_column("item", no_wrap=True)
    for p in patterns:
        t.add_column(f"{p}\n({section['patterns'][p]['profile']})", overflow="fold")
    rows: dict[str, dict[str, Mapping[str, Any]]] = {}
    for item in section.get("checklist") or ():
        rows.setdefault(item["name"], {})[item["pattern"]] = item
    for name, by in rows.items():
        cells: list[Text | str] = [name]
        for p in patterns:
            item = by.get(p)
            if item is None:
                cells.append("-")
                continue
            cell = Text(item["verdict"].upper(), style=_STYLE.get(item["verdict"], ""))
            cell.append(" " + str(item["evidence"])[:width * 2])
            cells.append(cell)
        t.add_row(*cells)
    return t


def recommendation_text(section: Mapping[str, Any]) -> Group:
    """The recommendation, the runner-up, the reasons, what would change it, and the crossovers."""
    rec = section.get("recommendation") or {}
    lines: list[Text] = []
    choice, runner = rec.get("choice"), rec.get("runner_up")
    if choice:
        lines.append(Text(f"Recommended: {choice['pattern']} on {choice['profile']} "
                          f"(${choice['monthly_compute_usd']:,.2f}/month compute + "
                          f"${choice['monthly_llm_usd']:,.2f}/month LLM)", style="bold green"))
    else:
        lines.append(Text("No recommendation: no candidate meets the limits and the budget", style="bold red"))
    if runner:
        lines.append(Text(f"Runner-up: {runner['pattern']} on {runner['profile']} "
                          f"(${runner['monthly_usd']:,.2f}/month)"))
    lines += [Text(f"  - {r}") for r in rec.get("reasons") or ()]
    if rec.get("would_change"):
        lines.append(Text("What would change the choice:", style="bold"))
        lines += [Text(f"  - {w}") for w in rec["would_change"]]
    proj = section.get("projection") or {}
    cross = [c for c in proj.get("crossovers") or () if c.get("shape") == section.get("traffic", {}).get("shape")]
    if cross:
        lines.append(Text("Crossovers (compute cost, " + str(section["traffic"]["shape"]) + " traffic):", style="bold"))
        lines += [Text(f"  - {c['cheaper_below']} is cheaper below {c['per_day']:,.0f} tasks/day, "
                       f"{c['cheaper_above']} above (${c['monthly_usd']:,.2f}/month there)") for c in cross[:8]]
    return Group(*lines)
