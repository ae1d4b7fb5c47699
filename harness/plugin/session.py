"""End of session: per-test rows, the report (built once, redacted), the files, the baseline gate, the text.

Everything shown or written comes from one report dict, after ``pytest_harness_modify_report`` ran, so
the terminal table, the JSON, the HTML, the Markdown and the comparison agree.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from emulators.errors import ConfigError

from .deployments import Registry, TestUse
from .options import Settings

__all__ = ["SessionResult", "finish_session", "row_for_test"]


def _why(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message).strip().splitlines()[0] if crash.message else ""
    if isinstance(report.longrepr, tuple):  # a skip: (file, line, reason)
        return str(report.longrepr[2])
    text = str(report.longrepr or "").strip()
    return text.splitlines()[-1] if text else ""


def row_for_test(item: pytest.Item, report: pytest.TestReport, uses: Sequence[TestUse],
                 attempted: Sequence[str]) -> dict[str, Any]:
    """What a test did on the harness: its pattern(s), outcome, calls, worst latency, cost, and why it failed.

    The pattern named for a failure is the one that failed: the pattern of its first failed call, or, if
    a deployment could not start, the last one the test asked for.
    """
    records = [r for u in uses for r in u.records() if r.trigger == "invoke"]
    patterns = list(dict.fromkeys([*attempted, *(u.pattern for u in uses)]))
    failed = [r for r in records if not r.ok]
    why = _why(report) if not report.passed else ""
    culprit = None
    if report.failed and failed:
        first = failed[0]
        culprit = first.pattern
        first_error = (first.error or "").strip().splitlines()[0] if first.error else ""
        why = f"{why} [{first.pattern}: {first.outcome}{': ' + first_error if first_error else ''}]".strip()
    elif report.failed and report.when == "setup" and attempted:
        culprit = attempted[-1]
    outcomes: dict[str, int] = {}
    for r in records:
        outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
    return {
        "nodeid": item.nodeid, "pattern": culprit or ",".join(patterns) or None, "outcome": report.outcome,
        "when": report.when, "message": why[:500], "calls": len(records), "outcomes": outcomes,
        "latency_ms": max((r.latency_ms for r in records), default=0.0),
        "cost_usd": sum(r.cost.total_usd for u in uses for r in u.records()),
    }


def render(renderable: Any, width: int, color: bool) -> str:
    """A rich renderable as text for pytest's terminal writer."""
    from rich.console import Console

    buf = io.StringIO()
    Console(file=buf, width=width, force_terminal=color, color_system="standard" if color else None,
            no_color=not color, highlight=False).print(renderable)
    return buf.getvalue().rstrip("\n")


@dataclass
class SessionResult:
    """What the session's end produced."""

    report: dict[str, Any] | None = None
    comparison: Any = None  # reports.compare.Comparison
    written: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        """True if any harness deployment ran (or something needs saying)."""
        return bool(self.report and (self.report["deployments"] or self.report["tests"])) or bool(self.problems)

    @property
    def failed_gate(self) -> bool:
        """True if the baseline comparison or an SLO failed."""
        return self.comparison is not None and not self.comparison.ok

    def lines(self, width: int, color: bool) -> list[str]:
        """The terminal summary, line by line."""
        from ..reports.terminal import patterns_table

        out: list[str] = []
        if self.report and self.report["summaries"]:
            out += render(patterns_table(self.report["summaries"]), width, color).splitlines()
        failed = [t for t in (self.report or {}).get("tests", ()) if t["outcome"] == "failed"]
        if failed:
            out.append("Failed tests by pattern:")
            out += [f"  {t['nodeid']} failed on {t['pattern'] or '?'}: {t['message']}" for t in failed]
        if self.comparison is not None:
            out += render(self.comparison.table(), width, color).splitlines()
            out += [f"  {c.message}" for c in self.comparison.checks if not c.passed]
            out += [f"  note: pattern {p} is in the baseline but did not run" for p in self.comparison.missing]
            n = len(self.comparison.regressions)
            out.append(f"harness: {n} check(s) failed against --harness-fail-on; the session fails" if n
                       else "harness: every --harness-fail-on check passed")
        out += [f"harness: {p}" for p in self.problems]
        out += [f"harness: report written to {p}" for p in self.written]
        return out


def finish_session(config: pytest.Config, settings: Settings, registry: Registry) -> SessionResult:
    """Close every deployment still up, then build, adjust, compare and write the report."""
    from ..reports import build_report, load_report, write_report
    from ..reports.compare import compare
    from ..reports.html import render_html
    from ..reports.markdown import render_markdown
    from ..reports.redact import Redactor

    registry.close()
    result = SessionResult(problems=list(registry.failures))
    secrets = registry.secret_env_values()
    report = build_report(registry.finished, source="pytest", agent=settings.agent, tests=registry.tests,
                          secrets=secrets, extra={"pytest": pytest.__version__, "scope": settings.scope,
                                                  "patterns": list(settings.patterns)})
    config.hook.pytest_harness_modify_report(config=config, report=report)
    report = Redactor(secrets).value(report)  # again: a hook may have added text
    result.report = report
    if not (report["deployments"] or report["tests"]):
        return result
    comparison_text = None
    if settings.fail_on:
        try:
            baseline = load_report(settings.baseline)["summaries"] if settings.baseline is not None else None
            result.comparison = compare(report["summaries"], baseline, list(settings.fail_on))
        except ConfigError as exc:
            result.problems.append(f"baseline comparison not done: {exc}")
        else:
            cmp = result.comparison
            report["comparison"] = {"baseline": None if settings.baseline is None else str(settings.baseline),
                                    "ok": cmp.ok, "checks": [c.message for c in cmp.checks]}
            comparison_text = cmp.markdown()
    for path, fmt in ((settings.report, "json"), (settings.html, "html"), (settings.markdown, "markdown")):
        if path is None:
            continue
        if fmt == "json":
            write_report(report, path, "json")
        else:
            text = render_html(report, comparison_text) if fmt == "html" else render_markdown(report, comparison_text)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        result.written.append(path)
    return result
