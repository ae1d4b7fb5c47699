"""Readiness in the user's own terms: which value of their deployment file to change, from what, to what.

From the readiness run of the function's own pattern (its declared limits) and the task profile measured
where the task finished: memory (a call killed for memory, or a peak with less than 20 % headroom),
time (a call that hit its timeout, or less than 20 % headroom), the gateway's limit in front of it, and
the edge CPU limit. Each line names the user's key, its current and proposed values, and the file:line
(``raise MemorySize from 128 to 1024 in template.yaml:14``), or where to add a key the file does not set.
The 20 % headroom and the 1.5x margin on a measured duration are the harness's choices, not platform facts.
"""

from __future__ import annotations

import math
from typing import Any

from emulators.profiles import Profile

from .model import Knob, Mapped, Where

__all__ = ["config_changes"]

HEADROOM = 0.2  # keep a fifth of a limit free (harness choice)
MARGIN = 1.5  # a proposed time limit is the measured duration x 1.5 (harness choice)


def _pow2_at_least(x: float, low: float, high: float | None) -> float:
    v = max(low, float(2 ** math.ceil(math.log2(max(x, 1.0)))))
    return min(v, high) if high else v


def _knob(m: Mapped, field: str, fallback_label: str) -> Knob:
    return m.knobs.get(field) or Knob(field, fallback_label, Where(m.source, 0))


def _line(action: str, knob: Knob, now: float, new: float, why: str) -> str:
    if knob.current is None:
        place = f"{knob.where}" if knob.where.line else knob.where.file.name
        return (f"set {knob.label}: {knob.show(new)} in {place} (not set now: the {knob.show(now)} default "
                f"applies); {why}")
    return f"{action} {knob.label} from {knob.show(now)} to {knob.show(new)} in {knob.where}; {why}"


def config_changes(m: Mapped, profile: Profile, records: list[Any], natural_ms: float | None,
                   natural_cpu_ms: float | None, natural_peak_mb: float | None = None) -> list[str]:
    """The changes to ``m``'s file that the readiness records call for (empty: the declared limits fit).

    ``records``: the calls on the function's own pattern and limits; ``natural_*``: the task as measured
    where it finished (readiness's task profile), to size a limit the calls here could not finish under.
    """
    ok = [r for r in records if r.ok]
    out: list[str] = []
    mem_labels = {"sam": "MemorySize", "serverless": "memorySize", "vercel": "memory", "k8s": "resources.limits.memory",
                  "cloudrun": "resources.limits.memory", "fly": "vm.memory", "wrangler": "memory"}
    oom = [r for r in records if r.outcome == "oom"]
    peak = max((r.peak_memory_mb for r in ok), default=0.0)
    if oom or (peak and peak > profile.memory_mb * (1 - HEADROOM)):
        seen = max(peak, natural_peak_mb or 0.0)
        need = max(seen / (1 - HEADROOM), profile.memory_mb * 2 if oom else 0.0)
        new = _pow2_at_least(need, profile.min_memory_mb or 128.0, profile.max_memory_mb)
        why = (f"{len(oom)} call(s) were killed for memory at {profile.memory_mb:g} MB" if oom else
               f"calls peaked at {peak:,.0f} MB of {profile.memory_mb:g} MB")
        if oom and natural_peak_mb:
            why += f"; the task peaks at {natural_peak_mb:,.0f} MB where it finished"
        if new > profile.memory_mb:
            out.append(_line("raise", _knob(m, "memory_mb", mem_labels.get(m.format, "memory_mb")),
                             profile.memory_mb, new, why))
        else:
            out.append(f"memory: {why}, and {profile.memory_mb:g} MB is the most {profile.name} allows; "
                       f"reduce what a call holds")
    limit = profile.task_deadline_s if m.pattern == "daemon" else profile.timeout_s
    timeouts = [r for r in records if r.outcome == "timeout"]
    worst = max((r.duration_ms for r in ok), default=0.0)
    need_ms = natural_ms if timeouts and natural_ms else worst
    if limit and (timeouts or worst > limit * 1000.0 * (1 - HEADROOM)):
        ceiling = profile.max_timeout_s
        new = math.ceil(need_ms / 1000.0 * MARGIN) if need_ms else limit * 2
        why = (f"{len(timeouts)} call(s) timed out at {limit:g} s" if timeouts else
               f"calls took up to {worst / 1000.0:,.1f} s of {limit:g} s")
        if natural_ms and timeouts:
            why += f"; the task needs about {natural_ms / 1000.0:,.1f} s where it finished"
        label = {"sam": "Timeout", "serverless": "timeout", "vercel": "maxDuration",
                 "cloudrun": "timeoutSeconds"}.get(m.format, "timeout_s")
        if "timeout_s" not in m.knobs and m.format in ("k8s", "fly", "wrangler"):
            out.append(f"{why}: the {limit:g} s limit is the {profile.name} profile's, not a key of {m.source.name} "
                       f"(your ingress or proxy sets it): allow about {new:g} s there, or --set timeout_s={new:g}")
        elif ceiling and new > ceiling:
            out.append(f"{label} cannot go past {ceiling:g} s on {profile.name}: {why}; run it as a queue consumer "
                       f"(the daemon pattern: harness readiness shows its verdicts) or split the task")
        else:
            out.append(_line("raise", _knob(m, "timeout_s", label), limit, float(new), why))
    gw = profile.gateway_timeout_s
    task_s = (natural_ms or worst) / 1000.0
    if gw and task_s > gw:
        http = next((t for t in m.taken if t.field == "gateway_timeout_s"), None)
        where = f" ({http.key}, {http.where})" if http else ""
        out.append(f"tasks take {task_s:,.1f} s, over the {gw:g} s gateway limit in front of {m.name}{where}: "
                   f"a synchronous HTTP call gets 504; submit the task and poll (POST /tasks), or invoke directly")
    cpu_hit = [r for r in records if r.outcome == "cpu_limit"]
    cpu = max((r.cpu_ms for r in ok), default=natural_cpu_ms or 0.0)
    if profile.cpu_limit_ms and (cpu_hit or cpu > profile.cpu_limit_ms * (1 - HEADROOM)):
        need = max(cpu, natural_cpu_ms or 0.0) / (1 - HEADROOM)
        new = float(math.ceil(need / 10.0) * 10) if need else profile.cpu_limit_ms * 2
        why = (f"{len(cpu_hit)} call(s) hit the {profile.cpu_limit_ms:g} ms CPU limit" if cpu_hit
               else f"calls used up to {cpu:,.1f} ms of {profile.cpu_limit_ms:g} ms CPU")
        if new > 300000:
            out.append(f"limits.cpu_ms cannot go past 300,000 ms (C2): {why}; move the task off the edge")
        else:
            out.append(_line("raise", _knob(m, "cpu_limit_ms", "limits.cpu_ms"), profile.cpu_limit_ms, new, why))
    return out
