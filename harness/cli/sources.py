"""``--from PATH`` for ``harness run``, ``harness profiles`` and ``harness readiness``: a file's functions.

``run --from`` runs every function the file declares (or the one ``--function`` names) through the
ordinary ``run_patterns``, one run table per function: on its declared pattern by default, or on the
patterns ``--patterns`` names (its declared limits apply on its own pattern; elsewhere that pattern's
profile with the limits that carry over, ``sources.apply``, each printed with the line it was taken from,
and the others as not applied). What was not mapped is printed first, never dropped. ``profiles --from``
shows, per function, the limits in force and where each came from (the user's key and file:line, or the
profile's default). ``readiness --from`` tests each function with its declared limits and ends with the
changes to make in the file (``harness.sources.advice``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from rich.console import Console
from rich.table import Table

from emulators.distributions import Distribution
from emulators.errors import ConfigError
from emulators.profiles import load_profile
from emulators.records import Summary

from ..readiness import ReadinessOptions, ReadinessResult
from ..sources import Mapped, Source, load_source
from ..sources.advice import config_changes
from ..sources.apply import pattern_arguments
from .run import RunOptions, run_patterns

__all__ = ["advice_text", "attach_advice", "print_mapping", "readiness_targets", "run_source", "source_profiles"]

# The limits shown for every function, per pattern (its overridden fields are added).
_SHOWN = {
    "serverless": ("timeout_s", "memory_mb", "gateway_timeout_s", "max_concurrency", "provisioned_concurrency"),
    "container": ("timeout_s", "memory_mb", "vcpus", "min_replicas", "max_replicas", "replica_concurrency",
                  "target_concurrency"),
    "daemon": ("timeout_s", "task_deadline_s", "memory_mb", "workers", "visibility_timeout_s", "max_receives"),
    "edge": ("cpu_limit_ms", "memory_mb", "subrequest_limit", "timeout_s"),
}


def _functions(src: Source, name: str | None) -> list[Mapped]:
    return [src.get(name)] if name is not None else list(src.functions)


def print_mapping(src: Source, functions: list[Mapped], console: Console) -> None:
    """One line per function (pattern, profile, what was taken), then every not-mapped key."""
    console.print(f"[bold]{src.path}[/bold] ({src.format}): {len(src.functions)} function(s)/service(s)")
    for m in functions:
        limits = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in m.overrides.items()
                           if k in _SHOWN.get(m.pattern, ()))
        console.print(f"  {m.name}: {m.pattern} on {m.profile}" + (f" ({limits})" if limits else ""))
        for t in m.taken:
            if t.field == "billing":  # priced as another platform than the profile's name says (a Lambda consumer)
                console.print(f"    billed {t.mapped} ({t.where}): {t.note}", highlight=False, soft_wrap=True)
    for w in src.warnings():
        console.print(f"  [yellow]{w}[/yellow]", highlight=False, soft_wrap=True)


def _suffixed(path: Path | None, name: str, several: bool) -> Path | None:
    if path is None or not several:
        return path
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in name)
    return path.with_name(f"{path.stem}-{safe}{path.suffix}")


async def run_source(opts: RunOptions, console: Console) -> list[Summary]:
    """Run each function of ``opts.source``; reports get the function's name in their file name when several."""
    assert opts.source is not None
    src = load_source(opts.source)
    functions = _functions(src, opts.function)
    print_mapping(src, functions, console)
    several = len(functions) > 1
    out: list[Summary] = []
    for m in functions:
        agent = opts.agent or m.agent
        if not agent:
            raise ConfigError(f"{src.path}: {m.name!r} names no code the harness can run; pass the agent: "
                              f"harness run path/file.py:agent --from {src.path} --function {m.name}")
        patterns = list(opts.patterns) or [m.pattern]
        profiles = dict(opts.profiles)
        overrides = {}
        for p in patterns:
            args = pattern_arguments(m, p, opts.profiles.get(p))
            if args["profile"] is not None:
                profiles[p] = str(args["profile"])
            overrides[p] = args["overrides"]
            if args["elsewhere"] is not None:  # another pattern: say what of the file's limits runs there
                for line in args["elsewhere"].lines():
                    console.print(f"  {m.name} {line}", highlight=False, soft_wrap=True)
        sub = dataclasses.replace(
            opts, agent=agent, patterns=patterns, profiles=profiles, pattern_overrides=overrides,
            env={**m.env, **opts.env}, adapter=m.adapter if opts.adapter == "auto" else opts.adapter,
            function_name=m.name, title=f"{m.name} ({src.path.name}, platform time)",
            json_path=_suffixed(opts.json_path, m.name, several),
            report_paths=tuple(p for p in (_suffixed(r, m.name, several) for r in opts.report_paths) if p))
        out += await run_patterns(sub, console)
    return out


def source_profiles(path: Path, function: str | None, console: Console) -> None:
    """Per function: the limits in force and where each came from, then what was not mapped."""
    src = load_source(path)
    functions = _functions(src, function)
    for m in functions:
        base = load_profile(m.profile, m.pattern)
        prof = base.replace(**m.overrides)
        by_field = {t.field: t for t in m.taken}
        t = Table(title=f"{m.name}: {m.pattern} on {m.profile} (from {src.path.name})", title_justify="left")
        t.add_column("field", no_wrap=True)
        t.add_column("value", justify="right", no_wrap=True)
        t.add_column("from")
        shown = list(_SHOWN.get(m.pattern, ())) + [k for k in m.overrides if k not in _SHOWN.get(m.pattern, ())]
        for name in shown:
            value = getattr(prof, name)
            text = "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
            if isinstance(value, Distribution):
                text = f"{value.dist}(" + ", ".join(f"{k}={v:g}" for k, v in value.params) + ")"
            taken = by_field.get(name)
            if taken is not None:
                origin = f"{taken.key} = {taken.value!r} ({taken.where})" + (f"; {taken.note}" if taken.note else "")
            elif name in m.overrides:
                origin = f"set by the file's {m.format} settings (e.g. its events)"
            else:
                origin = f"profile {m.profile} default"
            t.add_row(name, text, origin)
        t.add_row("agent", m.agent or "-", str(by_field["agent"].where) if "agent" in by_field else "not found")
        if m.env:
            t.add_row("env", ", ".join(sorted(m.env)), "")
        Console(width=max(140, console.width)).print(t)
    for w in src.warnings():
        console.print(f"[yellow]{w}[/yellow]", highlight=False, soft_wrap=True)


def readiness_targets(path: Path, function: str | None,
                      opts: ReadinessOptions) -> list[tuple[Mapped, ReadinessOptions]]:
    """One readiness run per function: its agent and env, its declared limits on its own pattern (always run)."""
    src = load_source(path)
    out = []
    for m in _functions(src, function):
        agent = opts.agent or m.agent
        if not agent:
            raise ConfigError(f"{src.path}: {m.name!r} names no code the harness can run; pass the agent: "
                              f"harness readiness path/file.py:agent --from {src.path} --function {m.name}")
        base = load_profile(m.profile, m.pattern)
        # the file's timeout as deployed: its own, else the platform's default (readiness would test the maximum)
        declared = {"timeout_s": base.timeout_s, **m.overrides}
        patterns = tuple(dict.fromkeys((m.pattern, *opts.patterns)))
        profiles = {m.pattern: m.profile, **opts.profiles}
        out.append((m, dataclasses.replace(opts, agent=agent, patterns=patterns, profiles=profiles,
                                           pattern_overrides={m.pattern: declared}, env={**m.env, **opts.env})))
    return out


def attach_advice(m: Mapped, result: ReadinessResult, report: dict[str, object]) -> list[str]:
    """The changes to the file that the function's own pattern calls for, also put in the report."""
    run = next((r for r in result.runs if r.pattern == m.pattern), None)
    task = result.task_profile
    changes: list[str] = []
    if run is not None and run.error is None:
        changes = config_changes(m, run.profile, run.baseline, task.duration_ms if task else None,
                                 task.cpu_ms if task else None, task.peak_memory_mb if task else None)
    elif run is not None:
        changes = [f"the {m.pattern} run failed before any call: {run.error}"]
    section = report.get("readiness")
    if isinstance(section, dict):
        section["config_changes"] = {"file": str(m.source), "function": m.name, "pattern": m.pattern,
                                     "changes": changes, "not_mapped": m.warnings()}
    return changes


def advice_text(m: Mapped, changes: list[str]) -> str:
    """The advice as text: what to change in the file, or that its limits fit."""
    head = f"[bold]Your deployment file ({m.source.name}, {m.name} on {m.pattern}):[/bold]"
    if not changes:
        return f"{head}\n  - the declared limits fit what the calls used (20 % headroom or more)"
    return head + "".join(f"\n  - {c}" for c in changes)
