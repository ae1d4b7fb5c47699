"""The recommendation: the cheapest pattern and profile that meets the limits and the budget, the
runner-up, the reasons, and what would change the choice.

Candidates are every shipped profile of the patterns that ran (plus the profiles tested). A candidate is
out when: the task's duration on it (CPU rescaled to its CPU share) exceeds its longest time limit, its CPU
or memory limit; its pattern failed "state management" (unless every pattern did: then it is the agent's
bug, reported, and not a reason to pick one pattern over another); its month at the traffic exceeds the
budget; or it has no prices (it would look free). Ties go to the profile that was tested.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from emulators.profiles import Profile, list_profiles, load_profile

from .checks import Item
from .cost import GRID_PER_DAY, TaskProfile, monthly_compute, monthly_llm, priced, task_duration_ms
from .traffic import TrafficSpec

__all__ = ["Candidate", "Recommendation", "candidates", "recommend"]


@dataclass(frozen=True)
class Candidate:
    """One pattern + profile, priced at the traffic, and why it is out (empty: eligible)."""

    pattern: str
    profile: str
    monthly_compute_usd: float
    monthly_llm_usd: float
    out: tuple[str, ...] = ()
    tested: bool = False
    limit_s: float | None = None

    @property
    def monthly_usd(self) -> float:
        """Compute + LLM a month."""
        return self.monthly_compute_usd + self.monthly_llm_usd

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"pattern": self.pattern, "profile": self.profile, "monthly_compute_usd": self.monthly_compute_usd,
                "monthly_llm_usd": self.monthly_llm_usd, "monthly_usd": self.monthly_usd, "out": list(self.out),
                "tested": self.tested, "limit_s": self.limit_s}


@dataclass(frozen=True)
class Recommendation:
    """The choice, the runner-up, the reasons and what would change it."""

    choice: Candidate | None
    runner_up: Candidate | None
    reasons: tuple[str, ...] = ()
    would_change: tuple[str, ...] = ()
    candidates: tuple[Candidate, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"choice": self.choice.to_json() if self.choice else None,
                "runner_up": self.runner_up.to_json() if self.runner_up else None,
                "reasons": list(self.reasons), "would_change": list(self.would_change),
                "candidates": [c.to_json() for c in self.candidates]}


def _limit_s(p: Profile) -> float | None:
    if p.pattern == "daemon":
        return p.task_deadline_s  # None: daemons run without a per-task limit
    return p.max_timeout_s or p.timeout_s


def _why_out(task: TaskProfile, p: Profile) -> list[str]:
    out = []
    limit = _limit_s(p)
    d_s = task_duration_ms(task, p) / 1000.0
    if limit is not None and d_s > limit:
        out.append(f"tasks take {d_s:,.0f} s, over its {limit:g} s limit")
    if p.cpu_limit_ms and task.cpu_ms > p.cpu_limit_ms:
        out.append(f"tasks use {task.cpu_ms:,.0f} ms CPU, over its {p.cpu_limit_ms:g} ms CPU limit")
    cap = p.max_memory_mb or p.memory_mb
    if task.peak_memory_mb and task.peak_memory_mb > cap:
        out.append(f"tasks peak at {task.peak_memory_mb:,.0f} MB, over its {cap:g} MB")
    return out


def candidates(task: TaskProfile, tested: Mapping[str, Profile], items: Sequence[Item], traffic: TrafficSpec,
               budget: float | None) -> list[Candidate]:
    """Every candidate, cheapest first, with the reasons it is out."""
    state_failed = {i.pattern for i in items if i.name == "state management" and i.verdict == "fail"}
    agent_bug = state_failed >= set(tested) and bool(tested)
    # Measured beats computed: a pattern whose tested profile hit a limit is out with all its profiles
    # (a sibling with longer limits is named in "what would change", to be tested).
    limit_failed = {i.pattern: i.evidence for i in items if i.name == "time limits" and i.verdict == "fail"}
    profiles: dict[str, Profile] = {}
    for name in list_profiles():
        p = load_profile(name)
        if p.pattern in tested:
            profiles[name] = p
    for p in tested.values():
        profiles[p.name] = p  # the tested one, with its overrides, wins over the shipped file
    llm = monthly_llm(task, traffic)
    out: list[Candidate] = []
    for p in profiles.values():
        is_tested = tested.get(p.pattern) is p
        why = _why_out(task, p)
        if p.pattern in limit_failed:
            why.append(f"the {p.pattern} pattern hit a limit on {tested[p.pattern].name}")
        if p.pattern in state_failed and not agent_bug:
            why.append(f"the {p.pattern} pattern lost session state")
        if not priced(p):
            why.append("no prices known (platform-facts.md has none): not ranked")
        compute = monthly_compute(task, p, traffic)
        if budget is not None and compute + llm > budget:
            why.append(f"${compute + llm:,.2f}/month is over the ${budget:,.2f} budget")
        out.append(Candidate(p.pattern, p.name, compute, llm, tuple(why), is_tested, _limit_s(p)))
    return sorted(out, key=lambda c: (c.monthly_compute_usd, not c.tested, c.profile))


def _switches(task: TaskProfile, choice: Candidate, eligible: Sequence[Profile], traffic: TrafficSpec) -> list[str]:
    """Volumes where another eligible profile becomes the cheapest, from the projection grid."""
    lines = []
    prev: str | None = None
    for n in GRID_PER_DAY:
        t = traffic.with_rate(n)
        best = min(eligible, key=lambda p: monthly_compute(task, p, t)).name
        if prev is not None and best != prev:
            lines.append(f"at about {n:,.0f} tasks/day ({traffic.shape}) {best} becomes cheaper than {prev}")
        prev = best
    return lines


def recommend(task: TaskProfile | None, tested: Mapping[str, Profile], items: Sequence[Item], traffic: TrafficSpec,
              budget: float | None) -> Recommendation:
    """The recommendation from the measured task profile and the checklist."""
    if task is None:
        return Recommendation(None, None, ("no pattern finished the task: nothing to project",))
    cands = candidates(task, tested, items, traffic, budget)
    ok = [c for c in cands if not c.out]
    reasons: list[str] = []
    state_failed = {i.pattern for i in items if i.name == "state management" and i.verdict == "fail"}
    if tested and state_failed >= set(tested):
        reasons.append("state is lost on every pattern: keep session state in ctx.state before deploying anywhere")
    limit_failed = {i.pattern for i in items if i.name == "time limits" and i.verdict == "fail"}
    if not ok:
        reasons.append("no candidate meets the limits and the budget; see each candidate's reasons")
        return Recommendation(None, None, tuple(reasons), (), tuple(cands))
    choice = ok[0]
    runner = next((c for c in ok[1:] if c.pattern != choice.pattern), ok[1] if len(ok) > 1 else None)
    reasons.insert(0, f"{choice.pattern} on {choice.profile}: ${choice.monthly_compute_usd:,.2f}/month compute + "
                      f"${choice.monthly_llm_usd:,.2f}/month LLM at {traffic.text}, the cheapest that meets the limits"
                      + (" and the budget" if budget is not None else ""))
    outs = sorted({f"{c.profile}: {c.out[0]}" for c in cands if c.out and c.pattern != choice.pattern})
    reasons += [f"out: {o}" for o in outs[:6]]
    changes: list[str] = []
    if choice.limit_s is not None:
        changes.append(f"if tasks exceed {choice.limit_s:g} s, {choice.profile} is out")
    longest = [c for c in cands if c.pattern == "serverless" and c.limit_s]
    if longest and choice.pattern != "serverless":
        lim = max(c.limit_s or 0.0 for c in longest)
        changes.append(f"serverless needs tasks under {lim:g} s (the longest serverless limit)")
    for c in cands:
        sibling = load_profile(c.profile) if c.profile in list_profiles() else None
        if (c.pattern in limit_failed and sibling is not None and priced(sibling) and not _why_out(task, sibling)
                and c.profile != tested[c.pattern].name):
            changes.append(f"{c.profile} ({c.pattern}) allows longer tasks than the {c.pattern} profile tested: "
                           f"run readiness with --profile {c.pattern}={c.profile} to measure it")
    profs = {p.name: p for p in [load_profile(n) for n in list_profiles()] + list(tested.values())}
    eligible = [profs[c.profile] for c in ok if c.profile in profs]
    changes += _switches(task, choice, eligible, traffic)
    if budget is not None:
        changes.append(f"a budget under ${choice.monthly_usd:,.2f}/month leaves nothing at {traffic.text}")
    return Recommendation(choice, runner, tuple(reasons), tuple(changes), tuple(cands))
