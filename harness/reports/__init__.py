"""Reports: one versioned JSON model built from records first; renderers read only that model.

Shape (``version`` 2; see docs/reports.md)::

    {"schema": "agent-deploy-harness/report", "version": 2, "created_at": <unix s>,
     "run": {"source", "harness_version", "python", "platform", "machine": {...}, "agent",
             "time_scale", "seed", "profiles": {pattern: profile name}, "redacted": true},
     "summaries": {pattern: Summary},          # every deployment of a pattern merged: what compare reads
     "deployments": [{"pattern", "profile_name", "time_scale", "seed", "overrides", "summary", "profile",
                      "records": [Record, ...]}],
     "tests": [{"nodeid", "pattern", "outcome", "message", "calls", "outcomes", "latency_ms", "cost_usd"}]}

The model is redacted (``redact.Redactor``) as it is built, so no renderer can leak a secret. Version 1
reports (``harness run --json`` before this schema) load too: their ``summaries`` are derived on load.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulators.errors import ConfigError
from emulators.records import Record, Summary, record_from_json, summarize

from .redact import Redactor, secret_values

__all__ = [
    "REPORT_SCHEMA",
    "REPORT_VERSION",
    "DeploymentRun",
    "build_report",
    "load_report",
    "record_from_json",
    "render",
    "summary_from_json",
    "write_report",
]

REPORT_SCHEMA = "agent-deploy-harness/report"
REPORT_VERSION = 2
_READABLE_VERSIONS = (1, 2)


@dataclass(frozen=True)
class DeploymentRun:
    """What one finished deployment contributes to a report."""

    summary: Summary
    records: Sequence[Record]
    profile: Mapping[str, Any]
    time_scale: float | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)  # only to learn secret values to redact


RunLike = DeploymentRun | tuple[Summary, Sequence[Record], Mapping[str, Any]]


def _as_run(run: RunLike) -> DeploymentRun:
    if isinstance(run, DeploymentRun):
        return run
    summary, records, profile = run
    return DeploymentRun(summary, records, profile)


def _machine() -> dict[str, Any]:
    # No hostname or user name: reports get attached to CI artifacts and shared.
    return {"system": platform.system(), "release": platform.release(), "arch": platform.machine(),
            "cpu_count": os.cpu_count(), "platform": platform.platform()}


def _merged_summaries(runs: Sequence[DeploymentRun]) -> dict[str, Summary]:
    """One summary per pattern: a pattern deployed several times (per module, per override) is merged."""
    by_pattern: dict[str, list[DeploymentRun]] = {}
    for r in runs:
        by_pattern.setdefault(r.summary.pattern, []).append(r)
    out: dict[str, Summary] = {}
    for pattern, group in by_pattern.items():
        if len(group) == 1:
            out[pattern] = group[0].summary
            continue
        names = ", ".join(dict.fromkeys(g.summary.profile for g in group))
        out[pattern] = summarize([rec for g in group for rec in g.records], pattern=pattern, profile=names,
                                 fixed_cost_usd=sum(g.summary.fixed_cost_usd for g in group))
    return out


def _only(values: Iterable[Any]) -> Any:
    """The value if all agree, else None (a run-level field that differs per deployment is per deployment)."""
    distinct = list(dict.fromkeys(values))
    return distinct[0] if len(distinct) == 1 else None


def build_report(runs: Sequence[RunLike], *, source: str = "harness run", agent: str | None = None,
                 tests: Sequence[Mapping[str, Any]] = (), secrets: Iterable[str] = (),
                 extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON report of ``runs`` (one per deployment), redacted; ``tests`` are the plugin's per-test rows."""
    from harness import __version__

    deps = [_as_run(r) for r in runs]
    summaries = _merged_summaries(deps)
    run_meta: dict[str, Any] = {
        "source": source,
        "harness_version": __version__,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": _machine(),
        "agent": agent,
        "time_scale": _only(d.time_scale for d in deps),
        # "virtual": time_scale null because every deployment ran on the virtual clock (not because they differ)
        "clock": "virtual" if deps and all(d.time_scale is None for d in deps) else "scaled",
        "seed": _only(d.profile.get("seed") for d in deps),
        "profiles": {p: s.profile for p, s in summaries.items()},
        "redacted": True,
        **(extra or {}),
    }
    report = {
        "schema": REPORT_SCHEMA,
        "version": REPORT_VERSION,
        "created_at": time.time(),
        # Kept at the top level as in version 1, which `harness run --json` users already read.
        "python": run_meta["python"],
        "platform": run_meta["platform"],
        "run": run_meta,
        "summaries": {p: s.to_json() for p, s in summaries.items()},
        "deployments": [
            {"pattern": d.summary.pattern, "profile_name": d.summary.profile, "time_scale": d.time_scale,
             "seed": d.profile.get("seed"), "overrides": dict(d.overrides), "summary": d.summary.to_json(),
             "profile": dict(d.profile), "records": [r.to_json() for r in d.records]}
            for d in deps
        ],
        "tests": [dict(t) for t in tests],
    }
    known = set(secrets).union(*(secret_values(d.env) for d in deps))
    redacted: dict[str, Any] = Redactor(known).value(report)
    return redacted


def summary_from_json(d: Mapping[str, Any]) -> Summary:
    """A Summary back from its JSON form; fields this version does not know are ignored."""
    known = Summary.__dataclass_fields__
    return Summary(**{k: v for k, v in d.items() if k in known})


def load_report(path: str | Path) -> dict[str, Any]:
    """Read a report file; raises ConfigError saying what is wrong (missing, not JSON, unknown version)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"report {str(p)!r} does not exist; write one with --harness-report or "
                          f"`harness run --json`") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"report {str(p)!r} is not valid JSON ({exc}); pass the .json report, "
                          f"not the HTML or Markdown one") from None
    if not isinstance(data, dict) or data.get("version") not in _READABLE_VERSIONS:
        version = data.get("version") if isinstance(data, dict) else None
        raise ConfigError(f"report {str(p)!r} has version {version!r}; this harness reads versions "
                          f"{', '.join(map(str, _READABLE_VERSIONS))}")
    if "summaries" not in data:  # version 1: derive the per-pattern summaries the way build_report does
        runs = [DeploymentRun(summary_from_json(dep["summary"]), [record_from_json(r) for r in dep.get("records", ())],
                              dep.get("profile", {})) for dep in data.get("deployments", ())]
        data["summaries"] = {p: s.to_json() for p, s in _merged_summaries(runs).items()}
        data.setdefault("run", {})
        data.setdefault("tests", [])
    return data


def render(report: Mapping[str, Any], fmt: str) -> str:
    """The report as ``json``, ``markdown`` or ``html`` text."""
    if fmt == "json":
        return json.dumps(report, indent=1, default=str)
    if fmt == "markdown":
        from .markdown import render_markdown

        return render_markdown(report)
    if fmt == "html":
        from .html import render_html

        return render_html(report)
    raise ConfigError(f"unknown report format {fmt!r}; expected one of: json, markdown, html")


_SUFFIXES = {".json": "json", ".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html"}


def write_report(report: Mapping[str, Any], path: str | Path, fmt: str | None = None) -> Path:
    """Write ``report`` to ``path`` in ``fmt`` (by default from the suffix: .json, .md, .html)."""
    p = Path(path)
    chosen = fmt or _SUFFIXES.get(p.suffix.lower())
    if chosen is None:
        raise ConfigError(f"cannot tell the report format of {str(p)!r} from its suffix; "
                          f"use one of: {', '.join(_SUFFIXES)}")
    text = render(report, chosen)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p
