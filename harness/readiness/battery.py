"""The experiments: a short battery per pattern, run concurrently, measured only through records.

Per pattern (one pattern after the other) three deployments run (``gateway=False``: the battery calls the
engine directly):

1. main: the task a few times at the profile's longest allowed time limit (``max_timeout_s`` where the
   platform lets you raise it: a user would), then the state experiment, then a crash injected mid-task;
2. faults: the same task against an LLM script whose first requests answer 429 then 500 (and, for agents
   that loop over tools, ask for a tool that fails);
3. burst: a burst of concurrent tasks with the LLM limited to the chosen tier.

State experiment: a control session of ``TURNS`` turns back to back, then a second session with the
instances recycled before every turn, by the pattern's own mechanism: serverless waits past
``idle_expiry_s``; container does a rolling restart (a deploy); daemon workers and edge isolates are
killed from outside (a worker restart, an isolate eviction: the emulator recycles neither by itself).
State survived if the last turns of both sessions answered the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import tempfile
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulators.errors import HarnessError
from emulators.profiles import Profile, load_profile
from emulators.records import Record

from ..api import AsyncDeployment, adeploy
from ..recycle import recycle
from .traffic import LLMTier

__all__ = ["BatteryOptions", "CrashRun", "PatternRun", "StateRun", "run_battery"]

TURNS = 2
RECYCLE = {
    "serverless": "waited past the idle expiry ({idle:g} s) before each turn",
    "container": "rolling restart (every replica replaced) before each turn",
    "daemon": "every worker process killed and restarted by its supervisor before each turn",
    "edge": "every isolate evicted (killed) before each turn",
}


@dataclass(frozen=True)
class BatteryOptions:
    """What to run: the agent, its task, the patterns and profiles, the clock, the LLM."""

    agent: str
    task: Any = field(default_factory=dict)
    patterns: tuple[str, ...] = ("serverless", "container", "daemon", "edge")
    profiles: Mapping[str, str] = field(default_factory=dict)
    overrides: Mapping[str, Any] = field(default_factory=dict)
    # per pattern, applied before ``overrides``: a deployment file's declared limits (harness/sources)
    pattern_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    time_scale: float | None = None  # None: the virtual clock
    calls: int = 3
    peak_per_s: float = 1000 / 86400 * 10  # tasks per second at the traffic's peak (sizes the burst)
    burst: int | None = None  # calls in the burst; None: from the peak rate and the measured latency
    llm: str = "sim"
    llm_script: str | None = None
    tier: LLMTier | None = None
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass
class StateRun:
    """The state experiment's outputs: control turns back to back, then turns on recycled instances."""

    control: list[Record] = field(default_factory=list)
    recycled: list[Record] = field(default_factory=list)
    mechanism: str = ""


@dataclass
class CrashRun:
    """A crash injected mid-task: the call, the client's retry (sync patterns), and whether it landed."""

    injected: bool = False
    first: Record | None = None
    retry: Record | None = None


@dataclass
class PatternRun:
    """Everything the battery measured on one pattern (records only: the single source of truth)."""

    pattern: str
    profile: Profile
    baseline: list[Record] = field(default_factory=list)
    state: StateRun = field(default_factory=StateRun)
    faults: list[Record] = field(default_factory=list)
    faults_injected: tuple[str, ...] = ()
    crash: CrashRun = field(default_factory=CrashRun)
    burst: list[Record] = field(default_factory=list)
    burst_peak: int = 0  # container: peak replicas; daemon: workers
    logs: str = ""
    error: str | None = None  # the deployment could not run at all (a ConfigError, say)
    overrides: dict[str, Any] = field(default_factory=dict)
    # ctx.memory's store in the main deployment: its mode, rows after the state experiment, its vector size
    memory_mode: str | None = None
    memory_rows: int = 0
    memory_dimensions: int = 0

    def all_records(self) -> list[Record]:
        """Every record the battery produced here."""
        c = [r for r in (self.crash.first, self.crash.retry) if r is not None]
        return [*self.baseline, *self.state.control, *self.state.recycled, *self.faults, *c, *self.burst]


def _limit_overrides(profile: Profile, user: Mapping[str, Any]) -> dict[str, Any]:
    # Test at the longest limit the platform allows: the default (Lambda's 3 s) is a setting, not a limit.
    out = dict(user)
    if profile.max_timeout_s is not None and "timeout_s" not in user:
        out["timeout_s"] = profile.max_timeout_s
    return out


def _turn(task: Any, i: int) -> Any:
    return {**task, "message": f"readiness turn {i}"} if isinstance(task, dict) else task


def script_with(base: str | None, rules: str = "", tier: LLMTier | None = None, where: Path | None = None) -> str:
    """An LLM script file: ``rules`` ahead of the user's script (first match wins), the tier's limits if it has none."""
    text = Path(base).read_text(encoding="utf-8") if base else ""
    if tier is not None and "limits" not in tomllib.loads(text):
        lim = [f"rpm = {tier.rpm}"] if tier.rpm else []
        lim += [f"tpm = {tier.tpm}"] if tier.tpm else []
        text += "\n[limits]\n" + "\n".join(lim) + "\n"
    directory = where or Path(tempfile.mkdtemp(prefix="harness-readiness-"))
    path = directory / f"script-{time.monotonic_ns()}.toml"
    path.write_text(rules + "\n" + text, encoding="utf-8")
    return str(path)


_FAULT_RULES = """
[[rules]]
name = "readiness: rate limited"
times = 1
error = 429
message = "Rate limit reached (injected by harness readiness)"

[[rules]]
name = "readiness: server error"
times = 1
error = 500
message = "Internal server error (injected by harness readiness)"
"""
_TOOL_RULE = """
[[rules]]
name = "readiness: failing tool"
times = 1
tool_calls = [{ name = "readiness_failing_tool", arguments = { broken = true } }]
"""


def _deploy(opts: BatteryOptions, pattern: str, overrides: Mapping[str, Any], script: str | None) -> AsyncDeployment:
    return adeploy(opts.agent, pattern, opts.profiles.get(pattern), opts.time_scale, gateway=False, llm=opts.llm,
                   llm_script=script, env=dict(opts.env), **overrides)


async def _state(d: AsyncDeployment, run: PatternRun, opts: BatteryOptions) -> None:
    run.state.mechanism = RECYCLE[run.pattern].format(idle=run.profile.idle_expiry_s)
    for i in range(TURNS):
        run.state.control.append(await d.invoke(_turn(opts.task, i), "readiness-control"))
    for i in range(TURNS):
        await recycle(d, "recycled by harness readiness")
        run.state.recycled.append(await d.invoke(_turn(opts.task, i), "readiness-recycled"))


async def _crash(d: AsyncDeployment, run: PatternRun, opts: BatteryOptions) -> None:
    call = asyncio.ensure_future(d.invoke(opts.task, None))
    while not call.done():
        busy = [i for i in d._emulator.pool.instances if i.inflight > 0 and i.alive]
        if busy:
            for inst in busy:
                await inst.kill("crash injected by harness readiness")
            run.crash.injected = True
            break
        await asyncio.sleep(0.0005)
    run.crash.first = await call
    if run.crash.first.ok and run.crash.first.attempts == 1:
        run.crash.injected = False  # the kill landed after the task had already answered
    if not run.crash.first.ok and run.pattern != "daemon":
        # Sync platforms do not retry a crashed call: the client does, once, as an SDK would.
        run.crash.retry = await d.invoke(opts.task, None)


async def _logs(d: AsyncDeployment) -> str:
    parts = []
    for path in sorted(d.run_dir.glob("*.log")):
        with contextlib.suppress(OSError):
            parts.append(path.read_text(errors="replace")[-20000:])
    return "\n".join(parts)


async def _pattern(opts: BatteryOptions, pattern: str, workdir: Path) -> PatternRun:
    try:
        profile = load_profile(opts.profiles.get(pattern), pattern)
        overrides = _limit_overrides(profile, {**opts.pattern_overrides.get(pattern, {}), **opts.overrides})
        profile = profile.replace(**overrides)
    except HarnessError as exc:
        return PatternRun(pattern, load_profile(None, pattern), error=str(exc))
    run = PatternRun(pattern, profile, overrides=overrides)
    try:
        d = _deploy(opts, pattern, overrides, opts.llm_script)
        async with d:
            for _ in range(opts.calls):
                run.baseline.append(await d.invoke(opts.task, None))
            if any(r.ok for r in run.baseline):  # a task that never finishes here has no state or recovery to judge
                await _state(d, run, opts)
                store = d.memory_store
                run.memory_mode, run.memory_rows, run.memory_dimensions = store.mode, store.count(), store.dimensions
                await _crash(d, run, opts)
            run.logs = await _logs(d)
        ok = [r for r in run.baseline if r.ok]
        calls = sum(r.llm_calls for r in ok) / len(ok) if ok else 0.0
        if calls > 0 and opts.llm == "sim":
            injected = ("LLM 429", "LLM 500") + (("failing tool call",) if calls >= 2 else ())
            rules = _FAULT_RULES + (_TOOL_RULE if calls >= 2 else "")
            async with _deploy(opts, pattern, overrides, script_with(opts.llm_script, rules, where=workdir)) as d:
                run.faults.append(await d.invoke(opts.task, None))
                run.logs += "\n" + await _logs(d)
            run.faults_injected = injected
        limited = opts.tier is not None and opts.llm == "sim"
        script = script_with(opts.llm_script, "", opts.tier, workdir) if limited else opts.llm_script
        async with _deploy(opts, pattern, overrides, script) as d:
            lat = [r.latency_ms for r in run.baseline]
            n = opts.burst or burst_size(opts.peak_per_s, (sum(lat) / len(lat) if lat else 0.0) / 1000.0)
            run.burst = list(await asyncio.gather(*(d.invoke(opts.task, None) for _ in range(n))))
            s = d.summary()
            run.burst_peak = s.peak_replicas or len({r.instance_id for r in run.burst if r.instance_id})
    except HarnessError as exc:
        run.error = str(exc)
    return run


def burst_size(per_s_peak: float, latency_s: float, low: int = 4, high: int = 12) -> int:
    """Calls in the burst: the traffic's peak concurrency (Little's law), kept between ``low`` and ``high``."""
    return max(low, min(high, math.ceil(per_s_peak * latency_s)))


async def run_battery(opts: BatteryOptions, guard_s: float = 300.0) -> list[PatternRun]:
    """Run the battery on each pattern in turn; a pattern that does not finish within ``guard_s`` wall seconds
    is reported as an error instead of hanging the run.

    Patterns run one after the other: run concurrently, deployments starting and closing at once
    occasionally never finished an instance start or a daemon close here (an engine race, reported).
    """
    runs: list[PatternRun] = []
    with tempfile.TemporaryDirectory(prefix="harness-readiness-") as tmp:
        for p in opts.patterns:
            try:
                runs.append(await asyncio.wait_for(_pattern(opts, p, Path(tmp)), guard_s))
            except TimeoutError:
                runs.append(PatternRun(p, load_profile(opts.profiles.get(p), p),
                                       error=f"the {p} battery did not finish within {guard_s:g} s of wall time"))
    return runs
