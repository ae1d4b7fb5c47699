"""``harness compare NEW.json --baseline OLD.json --fail-on ...``: the CI regression gate.

Prints the deltas per pattern and metric, then each failed check. Exit status: 0 when every check passed,
1 on a regression or a broken SLO, 2 for bad input (a missing or unreadable report, a bad rule; the
message quotes the accepted grammar).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from emulators.errors import ConfigError

from ..reports import load_report
from ..reports.compare import DEFAULT_FAIL_ON, compare, parse_fail_on

__all__ = ["compare_command"]


class _InputError(click.ClickException):
    """Bad input: exit 2 with the message, like the other commands."""

    exit_code = 2


@click.command("compare")
@click.argument("new", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--baseline", "-b", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The JSON report to compare against (omit to check absolute SLOs only).")
@click.option("--fail-on", "fail_on", default=None, metavar="RULES",
              help=f"Thresholds and SLOs, e.g. 'p95:+20%,cost:+10%,failures:+0' or 'p95<2s,failures=0'. "
                   f"[default with --baseline: {DEFAULT_FAIL_ON}]")
@click.option("--markdown", "markdown_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the comparison as Markdown (e.g. to $GITHUB_STEP_SUMMARY); appended.")
def compare_command(new: Path, baseline: Path | None, fail_on: str | None, markdown_path: Path | None) -> None:
    """Compare report NEW with a baseline report; exit 1 on a regression past a threshold."""
    try:
        if fail_on is None and baseline is None:
            raise ConfigError("nothing to check: give --baseline OLD.json, or absolute SLOs with --fail-on "
                              "(e.g. 'p95<2s,cost_per_1k<$0.50,failures=0')")
        rules = parse_fail_on(fail_on if fail_on is not None else DEFAULT_FAIL_ON)
        current = load_report(new)["summaries"]
        base = load_report(baseline)["summaries"] if baseline is not None else None
        result = compare(current, base, rules)
    except ConfigError as exc:
        raise _InputError(str(exc)) from None
    console = Console()
    console.print(result.table())
    for p in result.missing:
        console.print(f"note: pattern {p} is in the baseline but not in {new}")
    for check in result.checks:
        console.print(check.message, style=None if check.passed else "bold red", highlight=False, soft_wrap=True)
    if markdown_path is not None:
        with markdown_path.open("a", encoding="utf-8") as f:
            f.write("### Baseline comparison\n\n" + result.markdown())
    if not result.ok:
        console.print(f"{len(result.regressions)} check(s) failed", style="bold red")
        sys.exit(1)
    console.print("every check passed")
