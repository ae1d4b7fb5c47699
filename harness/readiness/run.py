"""Run the readiness battery and turn its records into the checklist, the projection and the recommendation."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from emulators import loops
from emulators.profiles import IMPLEMENTED_PATTERNS, Profile, load_profile
from emulators.records import summarize

from ..reports import DeploymentRun
from ..reports.redact import Redactor
from . import checks, cost, secrets
from .battery import BatteryOptions, PatternRun, run_battery
from .checks import Item
from .recommend import Recommendation, recommend
from .traffic import LLMTier, TrafficSpec, parse_tier

__all__ = ["ReadinessOptions", "ReadinessResult", "arun_readiness", "run_readiness"]

# Whose durations describe the task best: the least CPU throttling first.
_PREFERRED = ("daemon", "container", "serverless", "edge")


@dataclass(frozen=True)
class ReadinessOptions:
    """What ``harness readiness`` was asked: the agent and its task, the traffic, the budget, the LLM tier."""

    agent: str
    task: Any = field(default_factory=dict)
    traffic: TrafficSpec = field(default_factory=TrafficSpec)
    budget: float | None = None
    tier: LLMTier = field(default_factory=lambda: parse_tier(None))
    patterns: tuple[str, ...] = IMPLEMENTED_PATTERNS
    profiles: Mapping[str, str] = field(default_factory=dict)
    overrides: Mapping[str, Any] = field(default_factory=dict)
    pattern_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # a deployment file's limits
    time_scale: float | None = None  # None: the virtual clock
    calls: int = 3
    burst: int | None = None
    llm: str = "sim"
    llm_script: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass
class ReadinessResult:
    """The checklist, the per-task profile, the cost projection and the recommendation."""

    options: ReadinessOptions
    runs: list[PatternRun]
    items: list[Item]
    task_profile: cost.TaskProfile | None
    projection: dict[str, Any]
    recommendation: Recommendation
    secrets: dict[str, Any]

    def item(self, name: str, pattern: str) -> Item:
        """The verdict of one item on one pattern."""
        return next(i for i in self.items if i.name == name and i.pattern == pattern)

    def to_json(self) -> dict[str, Any]:
        """The report's ``readiness`` section (not yet redacted: ``attach`` does that)."""
        o = self.options
        return {
            "agent": o.agent, "task": o.task, "time_scale": o.time_scale,
            "traffic": {"text": o.traffic.text, "per_day": o.traffic.per_day, "shape": o.traffic.shape,
                        "peak_factor": o.traffic.peak_factor},
            "budget_usd": o.budget, "tier": {"name": o.tier.name, "rpm": o.tier.rpm, "tpm": o.tier.tpm,
                                             "source": o.tier.source},
            "patterns": {r.pattern: {"profile": r.profile.name, "overrides": r.overrides, "error": r.error}
                         for r in self.runs},
            "checklist": [i.to_json() for i in self.items],
            "task_profile": self.task_profile.to_json() if self.task_profile else None,
            "projection": self.projection,
            "recommendation": self.recommendation.to_json(),
            "secrets": self.secrets,
        }

    def deployment_runs(self) -> list[DeploymentRun]:
        """The battery's records per pattern, for the ordinary report sections."""
        out = []
        for r in self.runs:
            recs = r.all_records()
            if recs:
                out.append(DeploymentRun(summarize(recs, pattern=r.pattern, profile=r.profile.name), recs,
                                         r.profile.to_json(), self.options.time_scale, r.overrides,
                                         dict(self.options.env)))
        return out

    def attach(self, report: dict[str, Any]) -> dict[str, Any]:
        """``report`` with the redacted ``readiness`` section added."""
        report["readiness"] = Redactor(secrets_in(self.options.env)).value(self.to_json())
        return report


def secrets_in(env: Mapping[str, str]) -> set[str]:
    """Secret values of the deployments' env, to redact wherever they show up."""
    from ..reports.redact import secret_values

    return secret_values(env) if env else set()


def _task_profile(runs: Sequence[PatternRun]) -> cost.TaskProfile | None:
    by = {r.pattern: [x for x in r.baseline if x.ok] for r in runs}
    order = [p for p in _PREFERRED if by.get(p)]
    if not order:
        return None
    best = next((p for p in order if len(by[p]) == len(next(r for r in runs if r.pattern == p).baseline)), order[0])
    ok = by[best]
    run = next(r for r in runs if r.pattern == best)
    every_ok = [x for recs in by.values() for x in recs]
    inits = [x.init_ms for r in runs for x in r.all_records() if x.cold_start and x.ok]
    n = len(ok)
    return cost.TaskProfile(
        duration_ms=sum(x.duration_ms for x in ok) / n, cpu_ms=sum(x.cpu_ms for x in ok) / n,
        peak_memory_mb=max(x.peak_memory_mb for x in every_ok), init_ms=max(inits, default=0.0),
        llm_usd=sum(x.cost.llm_usd for x in ok) / n, llm_calls=sum(x.llm_calls for x in ok) / n,
        tokens=sum(x.input_tokens + x.output_tokens for x in ok) / n, cpu_factor=run.profile.cpu_factor(),
        measured_on=f"{best} ({run.profile.name})")


def _secrets(opts: ReadinessOptions, runs: Sequence[PatternRun]) -> tuple[dict[str, Any], str, str, list[str]]:
    files = secrets.agent_files(opts.agent)
    found = secrets.scan_files(files)
    outputs = secrets.scan_outputs([x for r in runs for x in r.baseline + r.state.control])
    reads = [(str(files[0]), line, name) for line, name in secrets.env_reads(files[0])] if files else []
    data: dict[str, Any] = {
        "scanner": "detect-secrets" if found is not None else None,
        "files": [str(f) for f in files],
        "findings": [{"file": f.file, "line": f.line, "kind": f.kind} for f in found or ()],
        "outputs": [{"invocation_id": r.invocation_id, "pattern": r.pattern, "kind": k} for r, k in outputs or ()],
        "env_reads": [{"file": f, "line": ln, "name": n} for f, ln, n in reads],
    }
    details = [f"{f.file}:{f.line}: {f.kind}" for f in found or ()]
    details += [f"task output of {r.pattern} call {r.invocation_id[:8]}: {k}" for r, k in outputs or ()]
    details += [f"{f}:{ln}: reads {n} from the environment (good: keep it in the platform's secret store)"
                for f, ln, n in reads]
    if found is None:
        return data, "warn", "detect-secrets is not installed: pip install 'agent-deploy-harness[readiness]'", details
    if not files:
        details.insert(0, "the agent is not a .py file path: its source was not scanned")
    n = len(data["findings"]) + len(data["outputs"])
    if n:
        where = data["findings"][0] if data["findings"] else None
        first = f"{where['file']}:{where['line']} ({where['kind']})" if where else "a task output"
        return data, "fail", f"{n} potential secret(s) found, first at {first}", details
    return data, "pass", f"no secret in {len(files)} file(s) or the task outputs (detect-secrets)", details


def _projection(task: cost.TaskProfile | None, runs: Sequence[PatternRun], rec: Recommendation,
                traffic: TrafficSpec) -> dict[str, Any]:
    if task is None:
        return {}
    shown: dict[str, Profile] = {r.profile.name: r.profile for r in runs if cost.priced(r.profile)}
    for c in (rec.choice, rec.runner_up):
        if c is not None and c.profile not in shown:
            tested = next((r.profile for r in runs if r.profile.name == c.profile), None)
            shown[c.profile] = tested or load_profile(c.profile)
    profiles = list(shown.values())
    out: dict[str, Any] = {"grid_per_day": list(cost.GRID_PER_DAY),
                           "patterns": {p.name: p.pattern for p in profiles}, "crossovers": []}
    for shape in ("steady", "bursty"):
        spec = TrafficSpec(traffic.per_s, shape, traffic.peak_factor if shape == "bursty" and traffic.peak_factor > 1
                           else (10.0 if shape == "bursty" else 1.0), traffic.text)
        out[shape] = {k: [list(pt) for pt in v] for k, v in cost.projection(task, profiles, spec).items()}
        for a, b in itertools.combinations(profiles, 2):
            if a.pattern != b.pattern:
                out["crossovers"] += cost.crossovers(task, a, b, spec)
    out["llm"] = [[n, cost.monthly_llm(task, traffic.with_rate(n))] for n in cost.GRID_PER_DAY]
    out["at_traffic"] = {p.name: {"steady": cost.monthly_compute(task, p, TrafficSpec(traffic.per_s, "steady", 1.0)),
                                  "bursty": cost.monthly_compute(task, p, TrafficSpec(
                                      traffic.per_s, "bursty", max(traffic.peak_factor, 10.0)
                                      if traffic.shape == "steady" else traffic.peak_factor))}
                         for p in profiles}
    out["llm_at_traffic"] = cost.monthly_llm(task, traffic)
    return out


async def arun_readiness(opts: ReadinessOptions) -> ReadinessResult:
    """Run the battery on every pattern and judge it."""
    bopts = BatteryOptions(agent=opts.agent, task=opts.task, patterns=tuple(opts.patterns), profiles=opts.profiles,
                           overrides=opts.overrides, pattern_overrides=opts.pattern_overrides,
                           time_scale=opts.time_scale, calls=opts.calls,
                           peak_per_s=opts.traffic.peak_per_s, burst=opts.burst, llm=opts.llm,
                           llm_script=opts.llm_script, tier=opts.tier, env=opts.env)
    runs = await run_battery(bopts)
    return judge(opts, runs)


def judge(opts: ReadinessOptions, runs: list[PatternRun]) -> ReadinessResult:
    """The checklist, projection and recommendation from the battery's records."""
    task = _task_profile(runs)
    natural = task.duration_ms if task else None
    sec, sec_verdict, sec_evidence, sec_details = _secrets(opts, runs)
    items: list[Item] = []
    for r in runs:
        ok = [x for x in r.baseline if x.ok]
        base_ms = sorted(x.latency_ms for x in ok)[len(ok) // 2] if ok else 0.0
        base_usd = sum(x.cost.total_usd for x in ok) / len(ok) if ok else 0.0
        compute = cost.monthly_compute(task, r.profile, opts.traffic) if task else 0.0
        llm = cost.monthly_llm(task, opts.traffic) if task else 0.0
        items += [
            checks.check_time_limits(r, natural),
            checks.check_state(r, opts.traffic),
            checks.check_error_recovery(r, base_ms, base_usd),
            checks.check_cost(r, base_usd, compute, llm, opts.traffic, opts.budget),
            checks.check_observability(r),
            checks.check_rate_limits(r, opts.traffic, opts.tier),
            checks.Item("secret management", r.pattern, r.profile.name, sec_verdict,  # type: ignore[arg-type]
                        sec_evidence, tuple(sec_details)),
            checks.check_scaling(r),
        ]
    tested = {r.pattern: r.profile for r in runs if r.error is None}
    rec = recommend(task, tested, items, opts.traffic, opts.budget)
    return ReadinessResult(opts, runs, items, task, _projection(task, runs, rec, opts.traffic), rec, sec)


def run_readiness(opts: ReadinessOptions) -> ReadinessResult:
    """The sync entry point (from a thread without a running event loop)."""
    return loops.run(arun_readiness(opts))
