"""``harness load``: a Locust load test of an agent under the patterns, headless (reports) or with the web UI.

Headless, it writes Locust's CSV and HTML and the harness JSON report (plus its Markdown) to ``--out``;
``harness compare OUT/report.json --baseline ...`` gates CI on it. Locust is not imported here: it runs in
a child process (its import monkey-patches the whole process with gevent). Bad input exits 2 before
anything starts; Ctrl-C (or SIGTERM, SIGHUP) stops the run, writes what it has, reaps every process and exits
128 + the signal's number (130 for Ctrl-C).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from emulators.errors import HarnessError

__all__ = ["load_command"]


class _InputError(click.ClickException):
    """Bad input (scenario, pattern, shape): exit 2 with the message, like the other commands."""

    exit_code = 2


@click.command("load", context_settings={"ignore_unknown_options": False})
@click.argument("agent", required=False)
@click.option("--patterns", default="all", show_default=True, help="Comma-separated patterns, or 'all'.")
@click.option("--shape", type=click.Choice(["steady", "burst", "diurnal", "ramp"]), default="steady",
              show_default=True, help="Traffic shape over --users and --run-time.")
@click.option("--users", "-u", type=click.IntRange(min=1), default=10, show_default=True, help="Peak users.")
@click.option("--spawn-rate", "-r", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Users started per second (steady shape). [default: all at once]")
@click.option("--run-time", "-t", default="60s", show_default=True, help="How long: 30s, 5m, 1h30m...")
@click.option("--time-scale", type=float, default=0.01, show_default=True,
              help="Wall seconds per platform second.")
@click.option("--scenario", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A scenario file (fixtures/scenarios/*.toml): task mix, think time, sessions, agent.")
@click.option("--profile", "profiles", multiple=True, metavar="[PATTERN=]NAME",
              help="Profile name or .toml path, for all patterns or one (repeatable).")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE", help="Override a profile field (repeatable).")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=Path("load-report"),
              show_default=True, help="Directory for locust_*.csv, locust.html, report.json, report.md.")
@click.option("--web", is_flag=True, help="Open Locust's web UI (with the Patterns tab) instead of a headless run.")
@click.option("--web-port", type=click.IntRange(1, 65535), default=8089, show_default=True)
@click.option("--processes", type=click.IntRange(min=-1), default=None,
              help="Locust worker processes on this machine (-1: one per CPU).")
@click.option("--harness-url", default=None, metavar="PATTERN=URL,...",
              help="Attach to running gateways (harness serve) instead of deploying.")
@click.option("--memory", default=None, metavar="URL",
              help="ctx.memory's store: sqlite:///path or postgresql://... [default: a SQLite file per deployment]")
@click.option("--locustfile", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Your own locustfile. [default: the shipped one, four pattern users]")
def load_command(agent: str | None, patterns: str, shape: str, users: int, spawn_rate: float | None, run_time: str,
                 time_scale: float, scenario: Path | None, profiles: tuple[str, ...], sets: tuple[str, ...],
                 out: Path, web: bool, web_port: int, processes: int | None, harness_url: str | None,
                 memory: str | None, locustfile: Path | None) -> None:
    """Load-test AGENT (or the --scenario's agent) under each pattern with Locust."""
    from harness.load.runner import STOP_SIGNALS, LoadOptions, locust_argv, run_locust
    from harness.load.scenario import load_scenario

    from ..config import check_memory_url
    from .main import _parse_patterns, _parse_sets  # main registers this command

    chosen = _parse_patterns(patterns)
    _parse_sets(sets)  # FIELD=VALUE syntax errors before any process starts
    try:
        scen = load_scenario(scenario) if scenario is not None else None
        check_memory_url(memory)  # here, not in the engine host: bad input exits 2 before any process starts
    except HarnessError as exc:
        raise _InputError(str(exc)) from None
    if not agent and (scen is None or not scen.agent) and not harness_url:
        raise click.UsageError("give AGENT, a --scenario that names an agent, or --harness-url")
    if memory and harness_url:
        raise click.UsageError("--memory is for the deployments harness load starts; attached gateways "
                               "(--harness-url) use their own: harness serve --memory URL")
    if not _timespan_ok(run_time):
        raise click.BadParameter(f"{run_time!r} is not a time span like 30s, 5m or 1h30m", param_hint="--run-time")
    if time_scale <= 0:
        raise click.BadParameter("must be > 0", param_hint="--time-scale")
    opts = LoadOptions(agent=agent, patterns=",".join(chosen), shape=shape, users=users, spawn_rate=spawn_rate,
                       run_time=run_time, time_scale=time_scale, scenario=scenario, profiles=profiles, sets=sets,
                       out=out, web=web, web_port=web_port, processes=processes, harness_url=harness_url,
                       memory=memory, locustfile=locustfile)
    out.mkdir(parents=True, exist_ok=True)
    if web:
        click.echo(f"Locust web UI: http://127.0.0.1:{web_port} (the Patterns tab has the harness view)")
    started = time.time()
    code = run_locust(locust_argv(opts))
    stopped_by = {128 + int(s): s.name for s in STOP_SIGNALS}.get(code)
    if stopped_by is not None:
        # Not a report.json an earlier run left in --out: one this run wrote.
        fresh = opts.report_json.is_file() and opts.report_json.stat().st_mtime >= started
        wrote = f", {opts.report_json} written" if fresh else ""
        click.echo(f"\ninterrupted ({stopped_by}): the load test was stopped{wrote} and every process reaped",
                   err=True)
        sys.exit(code)
    if not web and opts.report_json.is_file():
        _print_summary(opts.report_json)
        click.echo(f"reports: {out}/locust_stats.csv, {out}/locust.html, {opts.report_json}, {out}/report.md")
    sys.exit(code)


def _timespan_ok(text: str) -> bool:
    import re

    return bool(re.fullmatch(r"(\d+h)?(\d+m)?(\d+s)?|\d+", text.strip())) and bool(text.strip())


def _print_summary(path: Path) -> None:
    from rich.console import Console

    from ..reports import load_report, summary_from_json
    from ..reports.terminal import summary_table

    report = load_report(path)
    summaries = [summary_from_json(s) for s in report["summaries"].values()]
    Console(width=max(120, Console().width)).print(summary_table(summaries, title="Load test (platform time)"))
