"""``harness run``: drive N calls with C in flight through each pattern, show progress, then summarize."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from emulators.records import Summary

from ..api import AsyncDeployment, adeploy
from ..recycle import recycle
from ..reports import DeploymentRun, build_report, write_report
from ..reports.terminal import failures_table, regions_table, summary_table

__all__ = ["RunOptions", "run_patterns"]


@dataclass
class RunOptions:
    """What ``harness run`` was asked to do."""

    agent: str
    patterns: Sequence[str]
    requests: int = 20
    concurrency: int = 1
    time_scale: float | None = None  # None: the virtual clock
    task: Any = field(default_factory=dict)
    session: str = "none"
    profiles: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    adapter: str = "auto"
    state: str | None = None
    json_path: Path | None = None
    report_paths: tuple[Path, ...] = ()
    llm: str = "sim"
    llm_script: Path | None = None
    quiet: bool = False
    recycle_every: int = 0  # recycle every instance after each N calls (0: never), by the pattern's mechanism
    memory: str | None = None  # ctx.memory's store URL (None: a SQLite file per deployment)
    # --from: a deployment file (harness/cli/sources.py runs each of its functions through run_patterns)
    source: Path | None = None
    function: str | None = None
    pattern_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # the file's limits, per pattern
    env: dict[str, str] = field(default_factory=dict)
    function_name: str | None = None
    title: str = "Summary (platform time)"


def _session(mode: str, shared: str) -> str | None:
    if mode == "shared":
        return shared
    if mode == "per-call":
        return uuid.uuid4().hex
    return None


async def _drive(d: AsyncDeployment, opts: RunOptions, progress: Progress | None, bar: Any) -> None:
    """The calls, C in flight; with ``recycle_every`` in rounds of N calls with a recycle between rounds."""
    shared = uuid.uuid4().hex
    counts = {"ok": 0, "failed": 0}
    size = opts.recycle_every or opts.requests
    for start in range(0, opts.requests, size):
        if start:
            await recycle(d, "recycled by harness run --recycle-every")
        await _round(d, opts, min(size, opts.requests - start), shared, counts, progress, bar)


async def _round(d: AsyncDeployment, opts: RunOptions, n: int, shared: str, counts: dict[str, int],
                 progress: Progress | None, bar: Any) -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def worker() -> None:
        while True:
            try:
                queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            r = await d.invoke(opts.task, _session(opts.session, shared))
            counts["ok" if r.ok else "failed"] += 1
            if progress is not None:
                progress.update(bar, advance=1, status=f"ok {counts['ok']}  failed {counts['failed']}")

    await asyncio.gather(*(worker() for _ in range(min(opts.concurrency, n))))


async def run_patterns(opts: RunOptions, console: Console) -> list[Summary]:
    """Run every pattern in turn; print the summary table; write JSON if asked."""
    deployments: list[AsyncDeployment] = [
        adeploy(opts.agent, pattern, opts.profiles.get(pattern), opts.time_scale, adapter=opts.adapter,
                state=opts.state, llm=opts.llm, llm_script=opts.llm_script, memory=opts.memory, env=opts.env,
                function_name=opts.function_name, **{**opts.pattern_overrides.get(pattern, {}), **opts.overrides})
        for pattern in opts.patterns
    ]
    runs: list[DeploymentRun] = []
    progress = None if opts.quiet else Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(), console=console, transient=False)
    try:
        if progress is not None:
            progress.start()
        for d in deployments:
            async with d:
                bar = None
                if progress is not None:
                    label = f"{opts.function_name}: " if opts.function_name else ""
                    bar = progress.add_task(f"{label}{d.pattern} ({d.profile.name})", total=opts.requests,
                                            status="")
                await _drive(d, opts, progress, bar)
                runs.append(DeploymentRun(d.summary(), d.records(), d.profile.to_json(), opts.time_scale,
                                          {**opts.pattern_overrides.get(d.pattern, {}), **opts.overrides},
                                          env=opts.env))
    finally:
        if progress is not None:
            progress.stop()
        for d in deployments:
            await asyncio.shield(d.aclose())
    summaries = [r.summary for r in runs]
    console.print(summary_table(summaries, title=opts.title))
    regions = regions_table(summaries)
    if regions is not None:
        console.print(regions)
    failures = failures_table([rec for r in runs for rec in r.records])
    if failures is not None:
        console.print(failures)
    report = build_report(runs, agent=opts.agent) if opts.json_path or opts.report_paths else None
    if opts.json_path is not None and report is not None:
        # The versioned, redacted report model (see harness/reports); its renderer is JSON whatever the suffix.
        write_report(report, opts.json_path, "json")
        console.print(f"records written to {opts.json_path}")
    for path in opts.report_paths:
        assert report is not None
        console.print(f"report written to {write_report(report, path)}")
    return summaries
