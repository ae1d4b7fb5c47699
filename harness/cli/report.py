"""``harness report INPUT... [--merge] [--out PATH]``: a report from record stores and report files.

Inputs are record stores (``*.sqlite``, written by ``records_dir=`` / ``--records-dir``), directories of them,
or JSON reports (``harness run --json``, ``harness load --out``, the plugin's ``--harness-report``). Every
figure is computed again from the records (summaries stream through the tally, so a million-record store
is read in batches), except what records do not say: provisioned and idle capacity, the replica timeline,
which come from the summary a deployment stored when it closed.

``--merge`` makes one deployment per pattern from all inputs: the records of several engine hosts (one
``harness serve`` per machine behind Locust's workers) become the report one host would have written had it
served every call; fixed costs add up.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from emulators.errors import ConfigError
from emulators.records import Record, Summary, record_from_json
from emulators.store import iter_records, read_meta
from emulators.tally import Tally

from ..reports import DeploymentRun, build_report, load_report, summary_from_json, write_report
from ..reports.terminal import summary_table

__all__ = ["Source", "merge_sources", "read_sources", "report_command"]


@dataclass
class Source:
    """One deployment's records, wherever they were kept."""

    name: str
    pattern: str
    profile: Mapping[str, Any]
    stored: Summary | None  # the summary the deployment wrote when it closed (None: it did not close)
    records: Iterable[Record]
    time_scale: float | None = None

    def summary(self, records: Iterable[Record] | None = None) -> Summary:
        """The summary of these records (``records``: already read), with the stored summary's fixed costs."""
        tally = Tally().add_all(self.records if records is None else records)
        s = self.stored
        if s is None:
            return tally.summary(pattern=self.pattern, profile=str(self.profile.get("name", "")))
        return replace(tally.summary(pattern=s.pattern, profile=s.profile, fixed_cost_usd=s.fixed_cost_usd,
                                     busy_cost_usd=s.busy_cost_usd,
                                     idle_cost_usd=s.idle_cost_usd, peak_replicas=s.peak_replicas,
                                     replica_seconds=s.replica_seconds, replica_timeline=s.replica_timeline),
                       clock_late_max_s=s.clock_late_max_s)


def _store(path: Path) -> Source:
    try:
        meta = read_meta(path)
    except Exception as exc:  # sqlite3.DatabaseError and friends: not a store, or a damaged one
        raise ConfigError(f"{str(path)!r} is not a readable record store ({exc}); pass a .sqlite file written "
                          f"with --records-dir / records_dir=, or a JSON report") from None
    stored = summary_from_json(meta["summary"]) if "summary" in meta else None
    return Source(str(path), str(meta.get("pattern", "")), meta.get("profile") or {"name": meta.get("profile")},
                  stored, _Replay(path), meta.get("time_scale"))


class _Replay:
    """The records of a store file, read again each time they are iterated (never all in memory)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __iter__(self) -> Iterator[Record]:
        return iter_records(self.path)


def _report(path: Path) -> list[Source]:
    data = load_report(path)
    out = []
    for dep in data.get("deployments", ()):
        records = [record_from_json(r) for r in dep.get("records", ())]
        out.append(Source(f"{path}#{dep.get('pattern')}", str(dep.get("pattern", "")), dep.get("profile") or {},
                          summary_from_json(dep["summary"]) if "summary" in dep else None, records,
                          dep.get("time_scale")))
    return out


def read_sources(inputs: Iterable[Path]) -> list[Source]:
    """Every deployment in ``inputs`` (store files, directories of them and of reports, JSON reports)."""
    out: list[Source] = []
    for p in inputs:
        if p.is_dir():
            found = sorted(p.glob("*.sqlite")) + sorted(p.glob("*.json"))
            if not found:
                raise ConfigError(f"{str(p)!r} holds no record store (*.sqlite) and no report (*.json)")
            out += read_sources(found)
        elif p.suffix == ".json":
            out += _report(p)
        else:
            out.append(_store(p))
    return out


def merge_sources(sources: list[Source]) -> list[Source]:
    """One source per pattern: records chained, fixed costs added."""
    by: dict[str, list[Source]] = {}
    for s in sources:
        by.setdefault(s.pattern, []).append(s)
    merged = []
    for pattern, group in by.items():
        if len(group) == 1:
            merged.append(group[0])
            continue
        stored = [g.stored for g in group if g.stored is not None]
        base = stored[0] if stored else None
        if base is not None:
            base = replace(base, fixed_cost_usd=sum(s.fixed_cost_usd for s in stored),
                           idle_cost_usd=sum(s.idle_cost_usd for s in stored),
                           peak_replicas=sum(s.peak_replicas for s in stored),
                           replica_seconds=sum(s.replica_seconds for s in stored), replica_timeline=(),
                           profile=", ".join(dict.fromkeys(s.profile for s in stored)),
                           busy_cost_usd=sum(s.busy_cost_usd for s in stored),
                           clock_late_max_s=max(s.clock_late_max_s for s in stored))
        merged.append(Source(" + ".join(g.name for g in group), pattern, group[0].profile, base,
                             _Chain([g.records for g in group]), group[0].time_scale))
    return merged


class _Chain:
    def __init__(self, parts: list[Iterable[Record]]) -> None:
        self.parts = parts

    def __iter__(self) -> Iterator[Record]:
        for part in self.parts:
            yield from part


@click.command("report")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--merge", is_flag=True, help="One deployment per pattern from every input (several engine hosts).")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the report (.json, .md, .html).")
@click.option("--no-records", is_flag=True, help="Summaries only in the JSON (a million-record run stays small).")
def report_command(inputs: tuple[Path, ...], merge: bool, out: Path | None, no_records: bool) -> None:
    """Report on record stores (--records-dir) and JSON reports; --merge joins several hosts' runs."""
    console = Console()
    try:
        sources = read_sources(inputs)
        if merge:
            sources = merge_sources(sources)
        runs = []
        for s in sources:
            # Records the JSON keeps are read once, and summarized from that list; otherwise streamed.
            records: list[Record] = [] if no_records or out is None else list(s.records)
            runs.append(DeploymentRun(s.summary(records or None), records, s.profile, s.time_scale))
        console.print(summary_table([r.summary for r in runs]))
        if out is not None:
            report = build_report(runs, source="harness report",
                                  extra={"inputs": [str(p) for p in inputs], "merged": merge})
            if no_records:
                for dep, run in zip(report["deployments"], runs, strict=True):
                    dep["records_omitted"] = run.summary.calls + run.summary.warmup_pings
            if not merge and len({s.pattern for s in sources}) < len(sources):
                # A pattern in several inputs: its line in "summaries" covers all of them, from the records.
                report["summaries"] = {s.pattern: s.summary().to_json() for s in merge_sources(sources)}
            write_report(report, out)
            console.print(f"report written to {out}")
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
