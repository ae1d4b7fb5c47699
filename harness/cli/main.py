"""``harness`` commands. Errors in input exit 2 with the message; Ctrl-C stops cleanly and exits 130."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from emulators import loops
from emulators.errors import HarnessError
from emulators.profiles import PATTERNS, list_profiles, load_profile
from emulators.runtime.agent import ADAPTERS

from ..config import IMPLEMENTED, project_defaults
from .run import RunOptions, run_patterns
from .scale import TIME_SCALE, scale_of

__all__ = ["main"]


class _InputError(click.ClickException):
    """Bad input (agent, profile, field): exit 2 like a usage error, with the message alone."""

    exit_code = 2


def _parse_value(text: str) -> Any:
    """A ``--set`` value: TOML syntax (numbers, booleans, strings, inline tables), else the plain string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _parse_sets(items: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE, e.g. --set timeout_s=10", param_hint="--set")
        out[key.strip()] = _parse_value(value.strip())
    return out


def _parse_patterns(text: str) -> list[str]:
    names = list(IMPLEMENTED) if text == "all" else [p.strip() for p in text.split(",") if p.strip()]
    for name in names:
        if name not in PATTERNS:
            raise click.BadParameter(
                f"unknown pattern {name!r}; expected one of: {', '.join(PATTERNS)} (or 'all')",
                param_hint="--patterns")
    return names


def _parse_profiles(items: tuple[str, ...], patterns: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        pattern, sep, name = item.partition("=")
        if sep:
            out[pattern.strip()] = name.strip()
        else:
            for p in patterns:
                out[p] = item
    return out


def _parse_task(task: str | None, task_file: Path | None) -> Any:
    if task is not None and task_file is not None:
        raise click.UsageError("give --task or --task-file, not both")
    text = task_file.read_text() if task_file is not None else task
    if text is None:
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"the task is not valid JSON: {exc}", param_hint="--task") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="agent-deploy-harness")
def cli() -> None:
    """Run one AI agent under production deployment patterns and compare failures, latency and cost."""


_FROM = click.option("--from", "source", type=click.Path(exists=True, path_type=Path), default=None,
                     help="A deployment file (template.yaml, serverless.yml, wrangler.toml, vercel.json, Kubernetes "
                          "manifests or a folder of them, fly.toml, Cloud Run service.yaml): its functions, limits "
                          "and env.")
_FUNCTION = click.option("--function", default=None, metavar="NAME", help="With --from: only this function/service.")


@cli.command()
@click.argument("agent", required=False)
@_FROM
@_FUNCTION
@click.option("--patterns", default=None, help="Comma-separated patterns, or 'all'. [default: serverless; with "
                                               "--from: each function's own]")
@click.option("--profile", "profiles", multiple=True, metavar="[PATTERN=]NAME",
              help="Profile name or .toml path, for all patterns or one (repeatable).")
@click.option("--requests", "-n", type=click.IntRange(min=1), default=None, help="Calls per pattern. [default: 20]")
@click.option("--concurrency", "-c", type=click.IntRange(min=1), default=None, help="Calls in flight. [default: 1]")
@click.option("--time-scale", type=TIME_SCALE, default=None,
              help="'virtual' (emulated waits cost no wall time) or wall seconds per platform second. "
                   "[default: virtual]")
@click.option("--task", default=None, help="The task as JSON. [default: {}]")
@click.option("--task-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Read the task JSON from a file.")
@click.option("--session", type=click.Choice(["none", "shared", "per-call"]), default="none",
              help="Session ids: none, one shared session, or a new one per call.")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE", help="Override a profile field (repeatable).")
@click.option("--adapter", type=click.Choice(list(ADAPTERS)), default="auto",
              help="How to call the agent: agent(task, ctx), Lambda handler(event, context), an ASGI app (asgi), "
                   "or a Lambda handler behind API Gateway (apigw-v1 REST / apigw-v2 HTTP API).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the summaries and every record as JSON to this file.")
@click.option("--report", "report_paths", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the report here, in the format its suffix says: .json, .md or .html "
                   "(self-contained, with charts). Repeatable.")
@click.option("--llm", default="sim", metavar="sim|off|URL",
              help="The LLM endpoint instances talk to: the built-in simulator, none, or a metering proxy "
                   "to a real OpenAI/Anthropic-compatible base URL (key from the environment).")
@click.option("--llm-script", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A TOML script of scripted LLM answers (see fixtures/llm/).")
@click.option("--recycle-every", type=click.IntRange(min=0), default=0, metavar="N",
              help="Recycle every instance after each N calls, as the pattern's platform does (serverless: idle "
                   "past the expiry; container: rolling restart; daemon/edge: workers/isolates killed). 0: never.")
@click.option("--memory", default=None, metavar="URL",
              help="ctx.memory's store: sqlite:///path or postgresql://... [default: a SQLite file per deployment]")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def run(agent: str | None, source: Path | None, function: str | None, patterns: str | None,
        profiles: tuple[str, ...], requests: int | None,
        concurrency: int | None, time_scale: float | str | None, task: str | None, task_file: Path | None,
        session: str, sets: tuple[str, ...], adapter: str, json_path: Path | None, report_paths: tuple[Path, ...],
        llm: str, llm_script: Path | None, recycle_every: int, memory: str | None, quiet: bool) -> None:
    """Run AGENT ('module:callable' or 'path/file.py:callable') under each pattern and summarize.

    With --from, AGENT is optional: every function of the deployment file runs with its declared limits.
    """
    if agent is None and source is None:
        raise click.UsageError("give AGENT ('module:callable' or 'path/file.py:callable') or --from a deployment file")
    for path in report_paths:
        if path.suffix.lower() not in (".json", ".md", ".html"):
            raise click.BadParameter(f"{str(path)!r}: the suffix must say the format: .json, .md or .html",
                                     param_hint="--report")
    defaults = project_defaults()
    chosen = [] if source is not None and patterns is None else _parse_patterns(
        patterns or ",".join(defaults.get("patterns", ["serverless"])))
    prof_defaults = defaults.get("profile", {})
    profile_map = {**(prof_defaults if isinstance(prof_defaults, dict) else {}), **_parse_profiles(profiles, chosen)}
    opts = RunOptions(
        agent=agent or "", source=source, function=function,
        patterns=chosen,
        profiles=profile_map,
        requests=requests or int(defaults.get("requests", 20)),
        concurrency=concurrency or int(defaults.get("concurrency", 1)),
        time_scale=scale_of(time_scale, defaults),
        task=_parse_task(task, task_file),
        session=session,
        overrides=_parse_sets(sets),
        adapter=adapter,
        state=defaults.get("state"),
        json_path=json_path,
        report_paths=report_paths,
        llm=llm,
        llm_script=llm_script,
        quiet=quiet,
        recycle_every=recycle_every,
        memory=memory,
    )
    console = Console(stderr=False)
    try:
        if source is not None:
            from .sources import run_source

            loops.run(run_source(opts, console))
        else:
            loops.run(run_patterns(opts, console))
    except HarnessError as exc:
        raise _InputError(str(exc)) from None
    except KeyboardInterrupt:
        # loops.run has already cancelled the run, and each deployment's close reaped its processes.
        click.echo("\ninterrupted: every instance was stopped", err=True)
        sys.exit(130)


@cli.command()
@click.option("--fidelity", is_flag=True,
              help="Print the fidelity table (every limit and price with its source key) as Markdown: "
                   "the text of docs/fidelity.md.")
@_FROM
@_FUNCTION
def profiles(fidelity: bool, source: Path | None, function: str | None) -> None:
    """List the shipped profiles, their main limits and how many of their fields cite a source
    (--from: the limits a deployment file maps to)."""
    from emulators.profiles import _HERE
    from emulators.profiles.fidelity import read_fidelity, shared_tables, shipped_fidelity

    if source is not None:
        from .sources import source_profiles

        try:
            return source_profiles(source, function, Console())
        except HarnessError as exc:
            raise _InputError(str(exc)) from None
    if fidelity:
        from ..reports.fidelity import fidelity_markdown

        click.echo(fidelity_markdown(shipped_fidelity(), shared_tables()), nl=False)
        return
    t = Table(title="Shipped profiles", title_justify="left",
              caption="fidelity: fields citing platform-facts.md / stand-ins marked ESTIMATE / all fields "
                      "(harness profiles --fidelity: each field with its source)", caption_justify="left")
    t.add_column("name", no_wrap=True)
    t.add_column("pattern", no_wrap=True)
    for col in ("timeout s", "memory MB"):
        t.add_column(col, justify="right", no_wrap=True)
    t.add_column("scaling", no_wrap=True)
    t.add_column("cold start ms", justify="right", no_wrap=True)
    t.add_column("fidelity", no_wrap=True)
    for name in list_profiles():
        p = load_profile(name, pattern=_pattern_of(name))
        t.add_row(name, p.pattern, f"{p.timeout_s:g}", f"{p.memory_mb:g}", _scaling(p),
                  f"{p.cold_start_overhead_ms.mean():.0f}", read_fidelity(_HERE / f"{name}.toml").summary())
    Console(width=max(140, Console().width)).print(t)


def _scaling(p: Any) -> str:
    """What bounds a deployment's capacity, in each pattern's own terms."""
    if p.pattern == "container":
        return f"{p.min_replicas}-{p.max_replicas} replicas x {p.replica_concurrency}"
    if p.pattern == "daemon":
        return f"{p.workers} workers on {(p.queue or 'memory://').split('://')[0]}"
    if p.pattern == "edge":
        cpu = f"{p.cpu_limit_ms:g} ms CPU" if p.cpu_limit_ms else "no CPU limit"
        sub = f", {p.subrequest_limit} subrequests" if p.subrequest_limit else ""
        return cpu + sub
    return f"{p.max_concurrency} concurrent"


from .llm import llm_command  # noqa: E402 - registered after the group exists
from .serve import serve_command  # noqa: E402

cli.add_command(llm_command)
cli.add_command(serve_command)

from .compare import compare_command  # noqa: E402 - registered after the group exists

cli.add_command(compare_command)

from .worker import worker_command  # noqa: E402 - registered after the group exists

cli.add_command(worker_command)

from .readiness import readiness_command  # noqa: E402 - registered after the group exists

cli.add_command(readiness_command)

from .load import load_command  # noqa: E402 - registered after the group exists; imports no Locust

cli.add_command(load_command)

from .report import report_command  # noqa: E402 - registered after the group exists

cli.add_command(report_command)

from .clean import clean_command  # noqa: E402 - registered after the group exists (it imports docker lazily)

cli.add_command(clean_command)


def _pattern_of(name: str) -> str:
    from emulators.profiles import _HERE

    data = tomllib.loads((_HERE / f"{name}.toml").read_text())
    return str(data.get("pattern", "serverless"))


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="harness", standalone_mode=True)
