"""``harness readiness AGENT [--traffic SPEC] [--budget $/month]``: the production checklist as experiments.

Runs a short battery against every pattern, prints the checklist (verdict and evidence per item and
pattern) as a table, then the recommendation; ``--json`` / ``--html`` write the report with its
``readiness`` section. Bad input exits 2; Ctrl-C reaps every process and exits 130. The exit status does
not depend on the verdicts: a failed item is a finding, not an error of the command.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from emulators import loops
from emulators.errors import ConfigError, HarnessError

from .scale import TIME_SCALE, scale_of

__all__ = ["readiness_command"]


class _InputError(click.ClickException):
    """Bad input: exit 2 with the message, like the other commands."""

    exit_code = 2


def _patterns(text: str) -> tuple[str, ...]:
    from emulators.profiles import IMPLEMENTED_PATTERNS, PATTERNS

    if text == "all":
        return IMPLEMENTED_PATTERNS
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    for n in names:
        if n not in PATTERNS:
            raise click.BadParameter(f"unknown pattern {n!r}; expected one of: {', '.join(PATTERNS)} (or 'all')",
                                     param_hint="--patterns")
    return names


def _profiles(items: tuple[str, ...], patterns: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        pattern, sep, name = item.partition("=")
        if sep:
            if pattern.strip() not in patterns:
                raise click.BadParameter(f"{item!r} names pattern {pattern.strip()!r}, which is not being run",
                                         param_hint="--profile")
            out[pattern.strip()] = name.strip()
        else:
            from emulators.profiles import profile_pattern

            out[profile_pattern(item)] = item
    return out


def _task(text: str | None) -> Any:
    if text is None:
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"the task is not valid JSON: {exc}", param_hint="--task") from None


@click.command("readiness")
@click.argument("agent", required=False)
@click.option("--from", "source", type=click.Path(exists=True, path_type=Path), default=None,
              help="A deployment file (template.yaml, serverless.yml, wrangler.toml, a folder of Kubernetes "
                   "manifests, ...): each function is tested "
                   "with its declared limits, and the advice names the values to change in the file.")
@click.option("--function", default=None, metavar="NAME", help="With --from: only this function/service.")
@click.option("--traffic", default=None, metavar="SPEC",
              help="Expected traffic: RATE[,SHAPE], e.g. '1000/day', '50/min,bursty', '2M/month,bursty:20'. "
                   "[default: 1000/day]")
@click.option("--budget", default=None, metavar="$/MONTH", help="Monthly budget in USD (compute + LLM), e.g. '$200'.")
@click.option("--task", default=None, help="The task as JSON. [default: {}]")
@click.option("--patterns", default="all", help="Comma-separated patterns, or 'all'. [default: all]")
@click.option("--profile", "profiles", multiple=True, metavar="[PATTERN=]NAME",
              help="Profile to test a pattern on (repeatable); other profiles are projected from the measurements.")
@click.option("--llm-tier", default=None, metavar="TIER",
              help="LLM rate limits to check against: openai-tier1, anthropic-tier1 (default) to "
                   "anthropic-tier4, or 'rpm=N,tpm=N'.")
@click.option("--llm-script", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The agent's LLM script (see fixtures/llm/); faults and limits are added to it.")
@click.option("--time-scale", type=TIME_SCALE, default=None,
              help="'virtual' (emulated waits cost no wall time) or wall seconds per platform second. "
                   "[default: virtual]")
@click.option("--calls", type=click.IntRange(min=1, max=50), default=3, show_default=True,
              help="Solo calls per pattern for the duration and cost measurements.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the JSON report (with its readiness section) to this file.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the HTML report (with its readiness section and crossover chart) to this file.")
def readiness_command(agent: str | None, source: Path | None, function: str | None, traffic: str | None,
                      budget: str | None, task: str | None, patterns: str, profiles: tuple[str, ...],
                      llm_tier: str | None, llm_script: Path | None, time_scale: float | str | None, calls: int,
                      json_path: Path | None, html_path: Path | None) -> None:
    """Run the production checklist for AGENT on every pattern and recommend one.

    With --from, AGENT is optional: each function of the deployment file is tested with its declared
    limits, and the advice names the values to change in the file.
    """
    from ..config import build_config
    from ..readiness import ReadinessOptions, arun_readiness, parse_budget, parse_tier, parse_traffic
    from ..readiness.table import checklist_table, recommendation_text
    from ..reports import build_report, write_report

    if agent is None and source is None:
        raise click.UsageError("give AGENT ('module:callable' or 'path/file.py:callable') or --from a deployment file")
    chosen = _patterns(patterns)
    scale = None if time_scale is None else scale_of(time_scale)
    console = Console(width=max(140, Console().width))
    try:
        opts = ReadinessOptions(agent=agent or "", task=_task(task), traffic=parse_traffic(traffic),
                                budget=parse_budget(budget), tier=parse_tier(llm_tier), patterns=chosen,
                                profiles=_profiles(profiles, chosen), time_scale=scale, calls=calls,
                                llm_script=None if llm_script is None else str(llm_script))
        targets: list[tuple[Any, ReadinessOptions]] = [(None, opts)]
        if source is not None:
            from .sources import advice_text, attach_advice, readiness_targets

            targets = readiness_targets(source, function, opts)
        for mapped, o in targets:
            build_config(o.agent, o.patterns[0], o.profiles.get(o.patterns[0]), scale)  # a bad agent fails fast
            result = loops.run(arun_readiness(o))
            report = result.attach(build_report(result.deployment_runs(), source="harness readiness", agent=o.agent))
            changes = attach_advice(mapped, result, report) if mapped is not None else None
            console.print(checklist_table(report["readiness"]))
            console.print(recommendation_text(report["readiness"]))
            if mapped is not None and changes is not None:
                console.print(advice_text(mapped, changes), highlight=False, soft_wrap=True)
            for path, fmt in ((json_path, "json"), (html_path, "html")):
                if path is not None:
                    out = path if mapped is None or len(targets) == 1 else path.with_name(
                        f"{path.stem}-{mapped.name.replace('/', '-')}{path.suffix}")
                    write_report(report, out, fmt)
                    console.print(f"{fmt.upper()} report written to {out}")
    except ConfigError as exc:
        raise _InputError(str(exc)) from None
    except HarnessError as exc:
        raise _InputError(str(exc)) from None
    except KeyboardInterrupt:
        click.echo("\ninterrupted: every instance was stopped", err=True)
        sys.exit(130)
