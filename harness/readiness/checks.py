"""The checklist: a verdict (pass / warn / fail) and its evidence per item and pattern, from the records.

Each check is a pure function of what the battery measured (``battery.PatternRun``) and the run's inputs,
so the rules are unit-testable without processes. Thresholds: headroom under 20 % of a limit is a warning;
a burst p95 over 1.5x the solo p50 is a warning, over 3x a failure, beyond a slack of one platform second.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from emulators.records import Record, percentile

from . import cost
from .battery import PatternRun
from .traffic import LLMTier, TrafficSpec

__all__ = ["ITEMS", "Item", "Verdict", "check_cost", "check_error_recovery", "check_observability",
           "check_rate_limits", "check_scaling", "check_state", "check_time_limits"]

Verdict = Literal["pass", "warn", "fail"]
ITEMS = ("time limits", "state management", "error recovery", "cost", "observability", "rate limits",
         "secret management", "scaling")
_LIMIT_OUTCOMES = ("timeout", "gateway_timeout", "cpu_limit", "oom", "init_error", "subrequest_limit",
                   "payload_too_large")
WARN_HEADROOM = 0.2


@dataclass(frozen=True)
class Item:
    """One checklist item on one pattern: the verdict, a one-line evidence, details and the numbers."""

    name: str
    pattern: str
    profile: str
    verdict: Verdict
    evidence: str
    details: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        d = asdict(self)
        d["details"] = list(self.details)
        return d


def _item(run: PatternRun, name: str, verdict: Verdict, evidence: str, details: Sequence[str] = (),
          **data: Any) -> Item:
    return Item(name, run.pattern, run.profile.name, verdict, evidence, tuple(details), data)


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0][:240] if text and text.strip() else ""


def _ms(v: float) -> str:
    return f"{v / 1000:,.1f} s" if v >= 10000 else f"{v:,.0f} ms"


def _failed(records: Sequence[Record]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in records:
        if not r.ok:
            out[r.outcome] = out.get(r.outcome, 0) + 1
    return out


def _exec_limit_s(run: PatternRun) -> float | None:
    p = run.profile
    # A daemon's timeout_s bounds a sync wait only; its tasks run without a limit unless task_deadline_s is set.
    return p.task_deadline_s if run.pattern == "daemon" else p.timeout_s


def check_time_limits(run: PatternRun, natural_ms: float | None) -> Item:
    """Measured durations (and CPU, memory) vs the profile's limits, with headroom; limit outcomes fail."""
    p, recs = run.profile, run.baseline
    limit_s = _exec_limit_s(run)
    hit = [r for r in recs if r.outcome in _LIMIT_OUTCOMES]
    if hit:
        r = hit[0]
        need = f"; the task needs about {_ms(natural_ms)} (measured where it finished)" if natural_ms else ""
        most = f", the most {p.name} allows" if p.max_timeout_s else ""
        return _item(run, "time limits", "fail",
                     f"{len(hit)}/{len(recs)} calls hit a limit: {r.outcome} after "
                     f"{_ms(max(r.duration_ms, r.latency_ms))} "
                     f"(limit {limit_s:g} s{most}){need}",
                     [_first_line(r.error)], limit_s=limit_s, natural_ms=natural_ms, outcomes=_failed(recs))
    ok = [r for r in recs if r.ok]
    if not ok:
        first = recs[0] if recs else None
        return _item(run, "time limits", "warn", f"no call finished ({first.outcome if first else 'none ran'}): "
                     "durations not measured", [_first_line(first.error if first else run.error)])
    dur = [r.duration_ms for r in ok]
    p95, worst = percentile(dur, 95), max(dur)
    rooms: dict[str, float] = {}
    summary = f"duration p50 {_ms(percentile(dur, 50))}, p95 {_ms(p95)}, max {_ms(worst)}"
    if limit_s is not None:
        rooms["time"] = 1 - worst / (limit_s * 1000.0)
        details = [f"{summary} of {limit_s:g} s ({rooms['time']:.0%} headroom)"]
    else:
        details = [f"{summary}; no per-task time limit on {p.name} (task_deadline_s unset)"]
    if p.cpu_limit_ms:
        rooms["cpu"] = 1 - max(r.cpu_ms for r in ok) / p.cpu_limit_ms
        details.append(f"CPU max {max(r.cpu_ms for r in ok):,.1f} ms of {p.cpu_limit_ms:g} ms "
                       f"({rooms['cpu']:.0%} headroom)")
    mem = max(r.peak_memory_mb for r in ok)
    if mem:
        rooms["memory"] = 1 - mem / p.memory_mb
        details.append(f"memory peak {mem:,.0f} MB of {p.memory_mb:g} MB ({rooms['memory']:.0%} headroom)")
    verdict: Verdict = "warn" if rooms and min(rooms.values()) < WARN_HEADROOM else "pass"
    gw = p.gateway_timeout_s
    if gw and worst > gw * 1000.0:
        verdict = "warn"
        details.append(f"over the {gw:g} s gateway limit: a sync HTTP call would get 504; submit and poll instead")
    tight = min(rooms, key=lambda k: rooms[k]) if rooms else None
    limit_text = f"the {limit_s:g} s limit" if limit_s is not None else "no time limit"
    least = f"; least headroom {rooms[tight]:.0%} ({tight})" if tight else ""
    return _item(run, "time limits", verdict, f"max {_ms(worst)} of {limit_text}{least}",
                 details, limit_s=limit_s, gateway_s=gw, duration_p95_ms=p95, duration_max_ms=worst,
                 headroom=rooms)


def _out(r: Record) -> str:
    return repr(r.output) if r.ok else f"<{r.outcome}>"


def _long_term(run: PatternRun) -> str | None:
    """How the agent keeps long-term memory, from its records: ``external`` (ctx.memory requests),
    ``in-process`` (it embeds texts but never writes a store), or None (it embeds nothing)."""
    recs = [*run.baseline, *run.state.control, *run.state.recycled]
    if any(r.memory_ops for r in recs):
        return "external"
    return "in-process" if any(r.embedding_tokens for r in recs) else None


_IN_PROCESS = ("long-term memory lost: the agent embeds texts ({tokens:,.0f} embedding tokens a call) but writes "
               "no external store, so its vectors live in the instance (a list, a FAISS index, an InMemoryStore) "
               "and go with it; keep them in ctx.memory (or your vector database)")


def _memory_lines(run: PatternRun, traffic: TrafficSpec | None) -> tuple[str, list[str], dict[str, Any]]:
    """The evidence clause, detail lines and data of an agent using ctx.memory."""
    st = run.state
    writers = sorted({r.instance_id for r in st.control if r.instance_id})
    readers = sorted({r.instance_id for r in st.recycled if r.instance_id} - set(writers))
    clause = (f"; long-term memory ({run.memory_mode}) written in {', '.join(writers) or '?'} was found from "
              f"{', '.join(readers) or 'the same instance'} after recycling")
    calls = [*run.baseline, *st.control, *st.recycled]
    ok = [r for r in calls if r.ok]
    tokens = sum(r.embedding_tokens for r in ok) / len(ok) if ok else 0.0
    rows = run.memory_rows / len(calls) if calls else 0.0
    data: dict[str, Any] = {"memory_mode": run.memory_mode, "memory_rows": run.memory_rows}
    lines = [f"long-term memory: {run.memory_mode}, {run.memory_rows} row(s) after {len(calls)} call(s); "
             f"{tokens:,.0f} embedding tokens and {sum(r.memory_ops for r in ok) / max(1, len(ok)):.1f} store "
             f"requests a call"]
    if traffic is not None:
        m = cost.monthly_memory(tokens, rows, run.memory_dimensions or 256, traffic)
        lines.append(f"long-term memory at {traffic.text}: ${m.total_usd:,.2f}/month (embeddings "
                     f"${m.embedding_usd:,.2f}; {m.rows_after_month:,.0f} rows, {m.storage_gb:,.3f} GB stored "
                     f"${m.storage_usd:,.2f}, storage price an ESTIMATE)")
        data["memory_monthly_usd"] = m.total_usd
    return clause, lines, data


def check_state(run: PatternRun, traffic: TrafficSpec | None = None) -> Item:
    """Multi-turn session with instances recycled between turns: same answers as the control session?

    Also long-term memory: an agent using ctx.memory is judged on the same turns (what one instance wrote,
    another found after the recycle) with its monthly cost at ``traffic``; one that embeds texts without an
    external store is named as keeping long-term memory in process when its recycled turns go wrong.
    """
    st = run.state
    if not st.control or not st.recycled:
        return _item(run, "state management", "warn", "not run", [_first_line(run.error)])
    ltm = _long_term(run)
    tokens = sum(r.embedding_tokens for r in st.control) / len(st.control)
    if not all(r.ok for r in st.control + st.recycled):
        bad = next(r for r in st.control + st.recycled if not r.ok)
        if not all(r.ok for r in st.control):
            return _item(run, "state management", "warn", f"a turn failed ({bad.outcome}): state not judged",
                         [_first_line(bad.error)])
        # The same turns passed back to back: failing only on recycled instances is losing what they held.
        why = _IN_PROCESS.format(tokens=tokens) if ltm == "in-process" else \
            "in-process memory does not survive; use ctx.state (session) or ctx.memory (long-term)"
        return _item(run, "state management", "fail",
                     f"state lost: a turn failed only after recycling ({bad.outcome}); {why}",
                     [f"recycle: {st.mechanism}", _first_line(bad.error)], survived=False, long_term=ltm)
    stateful = _out(st.control[0]) != _out(st.control[-1])
    same = _out(st.control[-1]) == _out(st.recycled[-1])
    cold = sum(r.cold_start for r in st.recycled)
    instances = len({r.instance_id for r in st.recycled})
    details = [f"recycle: {st.mechanism}; {cold}/{len(st.recycled)} recycled turns cold, {instances} instance(s)",
               f"control turn {len(st.control)}: {_out(st.control[-1])[:160]}",
               f"recycled turn {len(st.recycled)}: {_out(st.recycled[-1])[:160]}"]
    if same:
        what = "the answers depend on earlier turns and" if stateful else "the answers do not depend on earlier turns;"
        clause, data = "", dict[str, Any]()
        if ltm == "external":
            clause, lines, data = _memory_lines(run, traffic)
            details += lines
        return _item(run, "state management", "pass",
                     f"state survived recycling: {what} the last turn matched the control session{clause}", details,
                     survived=True, stateful=stateful, long_term=ltm, **data)
    kept = "kept in the instance across back-to-back turns but " if stateful else ""
    why = _IN_PROCESS.format(tokens=tokens) if ltm == "in-process" else \
        "in-process memory does not survive; use ctx.state"
    return _item(run, "state management", "fail",
                 f"state lost: {kept}the last turn after recycling differs from the control session ({why})",
                 details, survived=False, stateful=stateful, long_term=ltm)


def check_error_recovery(run: PatternRun, baseline_ms: float, baseline_usd: float) -> Item:
    """Injected LLM 429/500 (and a failing tool call) and a crash mid-task: does the task still finish?"""
    details: list[str] = []
    verdict: Verdict = "pass"
    if not any(r.ok for r in run.baseline):
        return _item(run, "error recovery", "warn", "not judged: the task does not finish here even without faults",
                     [_first_line(run.baseline[0].error if run.baseline else run.error)])
    if run.faults_injected and run.faults:
        r = run.faults[0]
        extra_ms, extra_usd = r.latency_ms - baseline_ms, r.cost.total_usd - baseline_usd
        line = (f"{' + '.join(run.faults_injected)}: {r.outcome}, {r.llm_errors} LLM error(s) retried, "
                f"+{_ms(max(0.0, extra_ms))}, +${max(0.0, extra_usd):.6f}")
        details.append(line if r.ok else f"{line}: {_first_line(r.error)}")
        verdict = "pass" if r.ok else "fail"
    else:
        details.append("LLM faults not injected: the agent made no LLM calls through the harness endpoint")
    c = run.crash
    if c.first is None:
        details.append("crash not run")
    elif not c.injected:
        details.append(f"crash not injected: the task ended ({c.first.outcome}) before it could be interrupted")
    elif c.first.ok:
        how = f"redelivered, finished on attempt {c.first.attempts}" if c.first.attempts > 1 else "finished anyway"
        details.append(f"crash mid-task: {how}, +{_ms(max(0.0, c.first.latency_ms - baseline_ms))}")
    elif c.retry is not None and c.retry.ok:
        extra = c.first.latency_ms + c.retry.latency_ms - baseline_ms
        usd = c.first.cost.total_usd + c.retry.cost.total_usd - baseline_usd
        details.append(f"crash mid-task: the call failed ({c.first.outcome}); the platform does not retry a sync "
                       f"call: a client retry finished it, +{_ms(max(0.0, extra))}, +${max(0.0, usd):.6f}")
        verdict = "warn" if verdict == "pass" else verdict
    else:
        last = c.retry or c.first
        details.append(f"crash mid-task: not recovered ({last.outcome}): {_first_line(last.error)}")
        verdict = "fail"
    evidence = {"pass": "recovered from every injected fault", "warn": "recovered, with help from the caller",
                "fail": "did not recover from an injected fault"}[verdict]
    return _item(run, "error recovery", verdict, evidence, details)


def check_cost(run: PatternRun, per_task_usd: float, monthly_compute: float, monthly_llm: float,
               traffic: TrafficSpec, budget: float | None) -> Item:
    """Cost per task (compute + LLM) and the month at the expected traffic, against the budget."""
    total = monthly_compute + monthly_llm
    details = [f"per task {per_task_usd:.6f} USD measured (compute + requests + LLM)",
               f"{traffic.per_day:,.0f} tasks/day ({traffic.shape}): ${monthly_compute:,.2f}/month compute + "
               f"${monthly_llm:,.2f}/month LLM"]
    if budget is None:
        verdict: Verdict = "pass"
        evidence = f"${total:,.2f}/month at {traffic.text} (no budget given)"
    else:
        verdict = "fail" if total > budget else "warn" if total > 0.8 * budget else "pass"
        evidence = f"${total:,.2f}/month at {traffic.text} vs budget ${budget:,.2f}"
    return _item(run, "cost", verdict, evidence, details, per_task_usd=per_task_usd,
                 monthly_compute_usd=monthly_compute, monthly_llm_usd=monthly_llm, budget_usd=budget)


_LLM_LINE = re.compile(r"(?i)\b(llm|openai|anthropic|completion|chat|model|tokens?|prompt)\b")
_TOOL_LINE = re.compile(r"(?i)\btool")
_ERROR_LINE = re.compile(r"(?i)\b(error|exception|traceback|failed|retry|retrying|warning)\b")


def check_observability(run: PatternRun) -> Item:
    """Trace ids on every record (the harness's own), and a heuristic look at the agent's log lines."""
    recs = run.all_records()
    missing = sum(1 for r in recs if not r.trace_id)
    lines = [ln for ln in run.logs.splitlines() if ln.strip()]
    llm = sum(1 for ln in lines if _LLM_LINE.search(ln))
    tool = sum(1 for ln in lines if _TOOL_LINE.search(ln))
    err = sum(1 for ln in lines if _ERROR_LINE.search(ln))
    made_llm = any(r.llm_calls for r in recs)
    had_errors = any(not r.ok for r in recs) or any(r.llm_errors for r in recs)
    details = [f"trace ids: {len(recs) - missing}/{len(recs)} records",
               f"agent log lines: {len(lines)} ({llm} mention the LLM, {tool} tools, {err} errors/retries); "
               "heuristic: keyword search of the instances' stdout/stderr"]
    gaps = []
    if made_llm and not llm:
        gaps.append("no log line mentions the LLM calls it made")
    if had_errors and not err:
        gaps.append("no log line mentions the errors it met")
    if missing:
        verdict: Verdict = "fail"
        evidence = f"{missing} record(s) without a trace id"
    elif not lines:
        verdict, evidence = "warn", "traced by the harness; the agent itself logs nothing"
    elif gaps:
        verdict, evidence = "warn", "traced by the harness; the agent's logs miss: " + "; ".join(gaps)
    else:
        verdict, evidence = "pass", "traced by the harness; the agent logs its LLM calls and errors"
    return _item(run, "observability", verdict, evidence, details, log_lines=len(lines), llm_lines=llm,
                 tool_lines=tool, error_lines=err)


def check_rate_limits(run: PatternRun, traffic: TrafficSpec, tier: LLMTier) -> Item:
    """Measured LLM calls and tokens per task x the peak traffic rate, against the tier's RPM/TPM."""
    ok = [r for r in run.baseline if r.ok]
    calls = sum(r.llm_calls for r in ok) / len(ok) if ok else 0.0
    tokens = sum(r.input_tokens + r.output_tokens for r in ok) / len(ok) if ok else 0.0
    rpm, tpm = calls * traffic.peak_per_s * 60, tokens * traffic.peak_per_s * 60
    refused = sum(r.llm_errors for r in run.burst)
    details = [f"{calls:g} LLM calls and {tokens:,.0f} tokens per task x {traffic.peak_per_s * 60:,.2f} tasks/min "
               f"at peak = {rpm:,.1f} RPM, {tpm:,.0f} TPM; tier {tier.name}: {tier.rpm or '-'} RPM, "
               f"{tier.tpm or '-'} TPM",
               f"burst of {len(run.burst)} with the tier's limits in the simulator: {refused} LLM call(s) refused "
               f"and retried"]
    if not calls:
        return _item(run, "rate limits", "pass", "the agent made no LLM calls", details, rpm=0.0, tpm=0.0)
    shares = [need / lim for need, lim in ((rpm, tier.rpm), (tpm, tier.tpm)) if lim]
    worst = max(shares, default=0.0)
    verdict: Verdict = "fail" if worst > 1 else "warn" if worst > 0.8 or refused else "pass"
    return _item(run, "rate limits", verdict, f"{rpm:,.1f} RPM / {tpm:,.0f} TPM at peak: {worst:.0%} of {tier.name}",
                 details, rpm=rpm, tpm=tpm, share=worst, refused_in_burst=refused)


def check_scaling(run: PatternRun) -> Item:
    """A burst at the traffic's peak concurrency: does p95 hold against the solo calls, without refusals?"""
    solo = [r.latency_ms for r in run.baseline if r.ok]
    burst = run.burst
    if not burst or not solo:
        return _item(run, "scaling", "warn", "not judged: no successful solo call or no burst",
                     [_first_line(run.error)])
    ok = [r.latency_ms for r in burst if r.ok]
    failed = _failed(burst)
    base_p95 = percentile(solo, 50)  # the median solo call: the first one also waited for startup
    p95 = percentile(ok, 95) if ok else 0.0
    slack = 1000.0  # worse by less than a platform second is not a scaling problem
    cold = sum(r.cold_start for r in burst)
    lag = [r.latency_ms - r.duration_ms for r in burst if r.ok]
    details = [f"burst of {len(burst)} at once: p95 {_ms(p95)} vs solo p50 {_ms(base_p95)}; "
               f"{cold} cold start(s); {run.burst_peak} instance(s)/replica(s) at peak",
               f"waiting (latency - run time) max {_ms(max(lag, default=0.0))}"]
    if failed:
        details.append("failures: " + ", ".join(f"{k} {v}" for k, v in failed.items()))
    ratio = p95 / base_p95 if base_p95 else 1.0
    over = p95 - base_p95 > slack
    if failed and set(failed) - set(_failed(run.baseline)):
        verdict: Verdict = "fail"
        evidence = f"{sum(failed.values())}/{len(burst)} calls failed in the burst ({', '.join(failed)})"
    elif ratio > 3 and over:
        verdict, evidence = "fail", f"p95 {ratio:.1f}x the solo p50 under a burst of {len(burst)}"
    elif ratio > 1.5 and over:
        verdict, evidence = "warn", f"p95 {ratio:.1f}x the solo p50 under a burst of {len(burst)}"
    else:
        verdict, evidence = "pass", (f"p95 held under a burst of {len(burst)}: {_ms(p95)} vs solo p50 "
                                     f"{_ms(base_p95)} (+{_ms(max(0.0, p95 - base_p95))})")
    return _item(run, "scaling", verdict, evidence, details, burst=len(burst), p95_ms=p95, solo_p95_ms=base_p95,
                 cold_starts=cold, peak_instances=run.burst_peak)
