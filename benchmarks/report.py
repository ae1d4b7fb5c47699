"""Turn measurements into rows (a JSON model first), then render the one table with ``rich``.

Each row is one figure: what was measured, the floor it is compared with (measured in the same run), the
difference or ratio to that floor, the target, and a verdict. Rows without a target are context and
carry no verdict. Nothing here asserts: a missed target is reported, never raised.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from rich.console import Console
from rich.table import Table

__all__ = ["Row", "fmt_ms", "render"]

Compare = Literal["difference", "ratio"]


def fmt_ms(ms: float, sign: bool = False) -> str:
    """Milliseconds for humans: microseconds below 0.1 ms, three decimals below 10 ms, one above."""
    prefix = "+" if sign and ms >= 0 else ""
    if abs(ms) < 0.1:
        return f"{prefix}{ms * 1000:.2f} µs"
    if abs(ms) < 10:
        return f"{prefix}{ms:.3f} ms"
    return f"{prefix}{ms:.1f} ms"


@dataclass(frozen=True)
class Row:
    """One figure of the table; ``target_ms`` bounds ``measured_ms`` or, for differences, the difference."""

    id: str
    figure: str
    measured_ms: float
    floor_name: str | None = None
    floor_ms: float | None = None
    compare: Compare | None = None
    target_ms: float | None = None
    target_on: Literal["measured", "difference"] = "measured"
    n: int = 1  # samples behind the figure; 0 means no data (no verdict)

    @property
    def difference_ms(self) -> float | None:
        """Measured minus floor."""
        return None if self.floor_ms is None else self.measured_ms - self.floor_ms

    @property
    def ratio(self) -> float | None:
        """Measured over floor."""
        return None if not self.floor_ms else self.measured_ms / self.floor_ms

    @property
    def verdict(self) -> str | None:
        """``meets`` / ``misses`` against the target; None without one."""
        if self.target_ms is None:
            return None
        if self.n == 0:
            return "no data"
        value = self.difference_ms if self.target_on == "difference" else self.measured_ms
        assert value is not None
        return "meets" if value <= self.target_ms else "misses"

    def target_text(self) -> str:
        """The target as printed."""
        if self.target_ms is None:
            return "—"
        if self.target_on == "difference":
            return f"≤ {fmt_ms(self.target_ms, sign=True)} over floor"
        return f"≤ {fmt_ms(self.target_ms)}"

    def compare_text(self) -> str:
        """The difference or ratio column as printed."""
        if self.compare == "difference" and self.difference_ms is not None:
            return fmt_ms(self.difference_ms, sign=True)
        if self.compare == "ratio" and self.ratio is not None:
            return f"{self.ratio:.1f}x"
        return "—"

    def to_json(self) -> dict[str, Any]:
        """JSON form, derived values included."""
        return {**asdict(self), "difference_ms": self.difference_ms, "ratio": self.ratio,
                "verdict": self.verdict}


def render(console: Console, machine: dict[str, Any], rows: list[Row], notes: list[str]) -> None:
    """Print the machine facts, the one table, then short notes (floors, run time, leftovers)."""
    kind = "quick" if machine.get("quick") else "full"
    console.print(f"[bold]agent-deploy-harness benchmarks[/bold]  ({kind} run)")
    console.print(f"python {machine['python']} ({machine['implementation']}) · {machine['cpu_count']} CPUs "
                  f"({machine['cpus_usable']} usable) · {machine['cpu_model'] or 'cpu model unknown'}")
    load = " ".join(f"{x:g}" for x in machine.get("loadavg", []))
    console.print(f"{machine['platform']} · memory enforcement: {machine['memory_enforcement']} · "
                  f"load avg {load or 'n/a'}")
    table = Table(show_lines=False)
    table.add_column("figure")
    table.add_column("measured", justify="right")
    table.add_column("floor (same run)", justify="right")
    table.add_column("ratio / difference", justify="right")
    table.add_column("target", justify="right")
    table.add_column("verdict")
    for r in rows:
        floor = "—" if r.floor_ms is None else f"{fmt_ms(r.floor_ms)} {r.floor_name}"
        verdict = r.verdict
        colour = {"meets": "green", "misses": "red"}.get(verdict or "", "yellow")
        shown = "—" if verdict is None else f"[{colour}]{verdict}[/{colour}]"
        measured = fmt_ms(r.measured_ms) if r.n else "no data"
        table.add_row(r.figure, measured, floor, r.compare_text(), r.target_text(), shown)
    console.print(table)
    for note in notes:
        console.print(note, highlight=False)
