"""Turn measurements into rows (a JSON model first), then render the one table with ``rich``.

Each row is one figure: what was measured (with its unit), the floor it is compared with (measured in the
same run), the difference or ratio to that floor, the target, and a verdict. A target bounds the measured
value, its difference to the floor, or its ratio to the floor, from above (``<=``) or below (``>=``).
Rows without a target are context and carry no verdict; a row with no samples says why (``skipped``).
Nothing here asserts: a missed target is reported, never raised.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from rich.console import Console
from rich.table import Table

__all__ = ["Row", "fmt_ms", "fmt_value", "markdown", "render"]

Compare = Literal["difference", "ratio"]
Unit = Literal["ms", "s", "req/s", "tasks/s", "MB", "x", "%"]
TargetOn = Literal["measured", "difference", "ratio"]


def fmt_ms(ms: float, sign: bool = False) -> str:
    """Milliseconds for humans: microseconds below 0.1 ms, three decimals below 10 ms, one above."""
    prefix = "+" if sign and ms >= 0 else ""
    if abs(ms) < 0.1:
        return f"{prefix}{ms * 1000:.2f} µs"
    if abs(ms) < 10:
        return f"{prefix}{ms:.3f} ms"
    return f"{prefix}{ms:.1f} ms"


def fmt_value(value: float, unit: Unit, sign: bool = False) -> str:
    """A value in its unit, for humans."""
    if unit == "ms":
        return fmt_ms(value, sign)
    prefix = "+" if sign and value >= 0 else ""
    if unit == "s":
        return f"{prefix}{value:.3f} s" if abs(value) < 10 else f"{prefix}{value:.1f} s"
    if unit in ("req/s", "tasks/s"):
        return f"{prefix}{value:,.0f} {unit}" if abs(value) >= 100 else f"{prefix}{value:.1f} {unit}"
    if unit == "MB":
        return f"{prefix}{value:.1f} MB"
    if unit == "%":
        return f"{prefix}{value:.2f} %"
    return f"{prefix}{value:,.2f}x"


@dataclass(frozen=True)
class Row:
    """One figure of the table: ``measured`` (in ``unit``) next to ``floor`` (same unit), with a target."""

    id: str
    figure: str
    measured: float
    unit: Unit = "ms"
    floor_name: str | None = None
    floor: float | None = None
    compare: Compare | None = None
    target: float | None = None
    target_on: TargetOn = "measured"
    target_op: Literal["<=", ">="] = "<="
    n: int = 1  # samples behind the figure; 0 means no data (no verdict)
    skipped: str | None = None  # why there is no figure (a backend that is absent)

    @property
    def difference(self) -> float | None:
        """Measured minus floor."""
        return None if self.floor is None else self.measured - self.floor

    @property
    def ratio(self) -> float | None:
        """Measured over floor."""
        return None if not self.floor else self.measured / self.floor

    @property
    def verdict(self) -> str | None:
        """``meets`` / ``misses`` against the target; None without one."""
        if self.target is None:
            return None
        if self.skipped is not None:
            return "skipped"
        if self.n == 0:
            return "no data"
        value = {"measured": self.measured, "difference": self.difference, "ratio": self.ratio}[self.target_on]
        if value is None:
            return "no data"
        ok = value <= self.target if self.target_op == "<=" else value >= self.target
        return "meets" if ok else "misses"

    def target_text(self) -> str:
        """The target as printed."""
        if self.target is None:
            return "—"
        op = "≤" if self.target_op == "<=" else "≥"
        if self.target_on == "difference":
            return f"{op} {fmt_value(self.target, self.unit, sign=True)} over floor"
        if self.target_on == "ratio":
            return f"{op} {self.target:g}x floor"
        return f"{op} {fmt_value(self.target, self.unit)}"

    def compare_text(self) -> str:
        """The difference or ratio column as printed."""
        if self.compare == "difference" and self.difference is not None:
            return fmt_value(self.difference, self.unit, sign=True)
        if self.compare == "ratio" and self.ratio is not None:
            r = self.ratio
            return f"{r:.3f}x" if r < 0.1 else f"{r:.2f}x" if r < 10 else f"{r:,.0f}x" if r >= 100 else f"{r:.1f}x"
        return "—"

    def to_json(self) -> dict[str, Any]:
        """JSON form, derived values included."""
        return {**asdict(self), "difference": self.difference, "ratio": self.ratio, "verdict": self.verdict}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Row:
        """The row ``to_json`` wrote (derived values are recomputed)."""
        return cls(**{k: v for k, v in data.items() if k not in ("difference", "ratio", "verdict")})

    def cells(self) -> tuple[str, str, str, str, str, str]:
        """The table's six columns as plain text."""
        if self.skipped is not None:
            return (self.figure, "skipped", self.skipped, "—", self.target_text(),
                    "skipped" if self.target is not None else "—")
        floor = "—" if self.floor is None else f"{fmt_value(self.floor, self.unit)} {self.floor_name}"
        measured = fmt_value(self.measured, self.unit) if self.n else "no data"
        return self.figure, measured, floor, self.compare_text(), self.target_text(), self.verdict or "—"


def render(console: Console, machine: dict[str, Any], rows: list[Row], notes: list[str]) -> None:
    """Print the machine facts, the one table, then short notes (floors, run time, leftovers)."""
    kind = "quick" if machine.get("quick") else "full"
    console.print(f"[bold]agent-deploy-harness benchmarks[/bold]  ({kind} run)")
    console.print(f"python {machine['python']} ({machine['implementation']}) · {machine['cpu_count']} CPUs "
                  f"({machine['cpus_usable']} usable) · {machine['cpu_model'] or 'cpu model unknown'}")
    load = " ".join(f"{x:g}" for x in machine.get("loadavg", []))
    load_end = " ".join(f"{x:g}" for x in machine.get("loadavg_end", []))
    console.print(f"{machine['platform']} · memory enforcement: {machine.get('memory_enforcement', '?')} · "
                  f"load avg {load or 'n/a'} at start" + (f", {load_end} at end" if load_end else ""))
    table = Table(show_lines=False)
    table.add_column("figure")
    table.add_column("measured", justify="right")
    table.add_column("floor (same run)", justify="right")
    table.add_column("ratio / diff.", justify="right")
    table.add_column("target", justify="right")
    table.add_column("verdict")
    for r in rows:
        *cells, verdict = r.cells()
        colour = {"meets": "green", "misses": "red"}.get(verdict, "yellow")
        table.add_row(*cells, verdict if verdict == "—" else f"[{colour}]{verdict}[/{colour}]")
    console.print(table)
    for note in notes:
        console.print(note, highlight=False)


def markdown(rows: list[Row]) -> str:
    """The table as Markdown (what docs/performance.md shows): ``python -m benchmarks.report RUN.json``."""
    lines = ["| figure | measured | floor (same run) | ratio / diff. | target | verdict |", "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    import json
    import sys
    from pathlib import Path

    if len(sys.argv) != 2:
        sys.exit("usage: python -m benchmarks.report RUN.json   (prints the run's table as Markdown)")
    print(markdown([Row.from_json(r) for r in json.loads(Path(sys.argv[1]).read_text())["rows"]]))
