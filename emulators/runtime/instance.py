"""The control process's handle on one instance process: start it, invoke it, enforce its limits, end it.

Time limits are enforced here, from outside the agent: a watcher mirrors the instance's platform time
(wall time, its emulated waits as the instance announces them, and its CPU counters from /proc) and
SIGKILLs the process when a limit passes, as Lambda does. Memory is capped by a cgroup (the kernel kills)
or, where none can be made, by polling RSS. How the process ended decides the outcome: killed by us for
time -> ``timeout``; OOM -> ``oom``; anything else -> ``crash``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..clock import Clock, TimerHandle
from ..errors import InstanceStartError
from . import limits
from .limits import MemoryCap
from .llmtime import LLMTimeWriter
from .ptime import PlatformTimer
from .spawner import Spawner, describe_status
from .wire import FrameProtocol, encode

__all__ = ["Instance", "InstanceFailure", "StartInfo"]

_POLL_S = 0.01  # RSS poll period where no cgroup enforces the memory cap
_CPU_POLL_MIN_S = 0.001  # shortest re-check of a CPU-time limit (bounds the overshoot to ~1 ms per core)
_CORES = max(1, os.cpu_count() or 1)  # CPU time accrues at most this fast per wall second


@dataclass
class StartInfo:
    """What a cold start cost: platform init ms (overhead + import) and its real wall ms in the instance."""

    init_ms: float
    wall_ms: float
    adapter: str
    cpu_ms: float = 0.0  # CPU the process used during init (the agent's import), measured from outside
    llm_cpu_ms: float = 0.0  # of it, setting up ctx.llm's client (the openai SDK's import), measured inside


@dataclass
class InstanceFailure:
    """How an instance failed a start or a call: an outcome kind and a message."""

    outcome: str
    error: str
    platform_ms: float = 0.0  # platform time the failed phase ran
    wall_ms: float = 0.0


@dataclass
class _Phase:
    """One watched phase (init or a call): its mirrored timer and the future of its ending frame."""

    timer: PlatformTimer
    limit_s: float | None
    future: asyncio.Future[dict[str, Any]]
    checked: bool = False
    llm_calls: list[Any] = field(default_factory=list)  # LLMCall records attributed to this phase
    llm_began: float | None = None  # wall start of the current group of overlapping LLM waits
    llm_began_p: float = 0.0  # its platform time (clock.now())
    llm_active: int = 0  # LLM waits in progress (an agent may make calls in parallel)
    llm_group: int = 0  # waits begun in the current group
    llm_group_len: float = 0.0  # platform end of the group as announced (its latest announced end)
    llm_group_end: float = 0.0  # platform end of the group as it happened so far
    llm_wall_s: float = 0.0  # wall and platform seconds of the LLM latency waits in this phase
    llm_platform_s: float = 0.0
    llm_real_s: float = 0.0  # real seconds spent on calls a real upstream answered (proxy mode)
    waiter: asyncio.Future[None] | None = None  # wakes the watcher: a frame came or a check is due
    events: list[Any] = field(default_factory=list)
    on_event: Callable[[Any], None] | None = None
    on_limit: Callable[[], None] | None = None  # set: the limit notifies once instead of killing
    then_limit_s: float | None = None  # the limit after that notice (None: none; a gateway's notice: the timeout)
    sent_at: float = field(default_factory=time.monotonic)
    cpu_limit_s: float | None = None  # CPU seconds of the process this phase may use (edge), None: no limit
    cpu_start: float = 0.0  # the process's CPU seconds when the phase began
    cpu_used_s: float = 0.0  # CPU seconds used, as last measured
    subrequests: int = 0  # LLM calls + ctx.http requests made in this phase (edge budgets)
    wall_at: float = field(default_factory=time.time)  # wall clock (UNIX s) the phase began (for traces)
    http: list[list[Any]] = field(default_factory=list)  # ctx.http requests: [method, host, begin, end, status]
    held: bool = False  # virtual clock: this phase holds a busy token (it runs real code)
    wake: TimerHandle | None = None  # virtual clock: the pending wake of a blocking wait
    started_p: float = 0.0  # platform time the phase began
    remaining_s: float = 0.0  # platform seconds left to the time limit, as the watcher last computed them
    ended: bool = False


class Instance:
    """One running instance process."""

    def __init__(self, spawner: Spawner, instance_id: str, cfg: dict[str, Any], cap: MemoryCap,
                 *, clock: Clock, on_checkpoint: Callable[[str, str, Any], None] | None = None) -> None:
        self.spawner = spawner
        self.id = instance_id
        self.cfg = cfg
        self.cap = cap
        self.clock = clock
        self.cpu_factor: float = cfg["cpu_factor"]
        self.pid = 0
        self.inflight = 0
        self.provisioned = False
        self.last_used = clock.now()  # platform time it last finished a call (idle expiry)
        self.alive = False
        self.ready = False  # init finished and the process is alive: it may take calls
        self.log_path = Path(cfg["log_path"])
        path = cfg.get("llm_time_path")
        self._llm_time = LLMTimeWriter(path) if path else None
        self._on_checkpoint = on_checkpoint
        self._writer: FrameProtocol | None = None  # the channel: frames in (to _dispatch) and out
        self._pump: asyncio.Task[None] | None = None
        self._phases: dict[str, _Phase] = {}
        self._kill_reason: str | None = None
        self._death: InstanceFailure | None = None
        self.final_peak_mb = 0.0
        self._polled_peak_mb = 0.0  # highest RSS the poller saw (no cgroup)
        self._queued: limits.QueuedClock | None = None
        # The main thread's run-queue clock as the instance read it at the end of its last call: the next call's
        # mirror starts from it rather than reading /proc/<pid>/schedstat (~8 us under load, every call). The
        # instance sleeps in between, and a sleeping thread does not queue; only the few µs after its reading
        # (sending the result) could, and would count a few µs more slack against the limit.
        self._rest_queued: float | None = None
        # Likewise the process's CPU counter as read at the end of the last CPU-limited call (edge): the next
        # call's budget counts from it rather than from a read of its own (two /proc reads a call where the
        # instance has no cgroup v2). CPU the process used in between (its few µs after answering) counts
        # against the next call, as a Worker's work after its response counts against its request.
        self._rest_cpu: float | None = None
        self._cpu_clock: limits.CpuClock | None = None
        self._cpu_probe: limits.CpuProbe | None = None  # virtual clock: is the process on a CPU? (LLM waits)
        self.boot: tuple[float, float] | None = None  # wall clock (UNIX s) its init began and ended (for traces)

    # ---- lifecycle -------------------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Fork the process and let it settle into its cgroup, ready for ``start`` (a pre-forked spare)."""
        phase = self._new_phase("prepare", None, factor=1.0)
        pid, sock = await self.spawner.spawn(self.id, self.cfg)
        self.pid = pid
        self.alive = True
        _, self._writer = await asyncio.get_running_loop().create_unix_connection(
            lambda: FrameProtocol(self._dispatch_safely), sock=sock)
        self._pump = asyncio.create_task(self._read_frames(), name=f"instance-{self.id}")
        msg = await self._watch("prepare", phase)
        if msg.get("op") != "prepared":
            raise InstanceStartError(
                f"instance {self.id} died before it was ready to start: {self._failure_from(msg, phase).error}")

    async def start(self, init_timeout_s: float | None, overhead_ms: float) -> StartInfo | InstanceFailure:
        """Cold-start a prepared instance: the platform overhead, then the agent's real import."""
        phase = self._new_phase("init", init_timeout_s, factor=self.cfg["init_cpu_factor"])
        phase.cpu_start = self._cpu() if self.pid else 0.0  # StartInfo.cpu_ms counts from here
        phase.cpu_limit_s = self.cfg.get("init_cpu_limit_s")  # a backstop for a runaway global scope (edge)
        assert self._writer is not None
        self._writer.write(encode({"op": "start", "cfg": {"overhead_ms": overhead_ms}}))
        msg = await self._watch("init", phase)
        if msg.get("op") == "ready":
            self.ready = self.alive
            self.boot = (phase.wall_at, time.time())
            self.last_used = self.clock.now()  # idle time counts from the end of init
            return StartInfo(init_ms=msg["init_ms"], wall_ms=msg["wall_ms"], adapter=msg["adapter"],
                             cpu_ms=(self._cpu() - phase.cpu_start) * 1000.0, llm_cpu_ms=msg.get("llm_cpu_ms", 0.0))
        if msg.get("op") == "init_error":
            await self.kill()
            tail = self.log_tail()
            hint = self.spawner.init_hint(f"{msg['error']}\n{msg.get('traceback', '')}")
            error = f"init failed: {msg['error']}" + (f"\n({hint})" if hint else "")
            error = f"{error}\n{msg.get('traceback', '')}".rstrip()
            if tail:
                error += f"\n--- instance log (last lines) ---\n{tail}"
            return InstanceFailure("init_error", error, msg.get("init_ms", 0.0), msg.get("wall_ms", 0.0))
        failure = self._failure_from(msg, phase)
        if failure.outcome == "crash":
            failure = InstanceFailure("init_error", f"the instance died during init: {failure.error}",
                                      failure.platform_ms, failure.wall_ms)
        elif failure.outcome == "timeout":
            failure = InstanceFailure(
                "init_error", f"init exceeded the {init_timeout_s:g} s init limit", failure.platform_ms,
                failure.wall_ms)
        elif failure.outcome == "cpu_limit":
            failure = InstanceFailure(
                "init_error", f"the global scope used over {phase.cpu_used_s * 1000:.0f} ms of CPU at startup and "
                f"was stopped; move work out of module level", failure.platform_ms, failure.wall_ms)
        return failure

    async def stop(self) -> None:
        """End the instance (it is recycled or the deployment closes)."""
        if self.alive and self._writer is not None:
            with contextlib.suppress(OSError, RuntimeError):
                self._writer.write(encode({"op": "exit"}))
        await self.kill(reason=None)

    async def kill(self, reason: str | None = None) -> None:
        """SIGKILL the process and wait until its ending is processed."""
        if reason is not None and self._kill_reason is None:
            self._kill_reason = reason
        if self.pid and self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        with self.clock.busy():  # the process's ending is real time: a waiting caller must not jump over it
            await self._await_pump()

    async def _await_pump(self) -> None:
        if self._pump is not None:
            # asyncio.wait, not wait_for(shield()): a cancel of the task waiting here always propagates (on
            # 3.11, wait_for returns the result when the pump ends as the cancel lands, and the cancel is lost:
            # it left a serverless sweep looping through close), and the pump is never cancelled by it.
            done, _ = await asyncio.wait({self._pump}, timeout=10.0)
            if not done:
                # The channel did not close although the process was killed (a spare that never said
                # "prepared" was seen like this): end the pump ourselves rather than wait forever.
                self._pump.cancel()
                await asyncio.wait({self._pump})

    async def wait_closed(self) -> None:
        """Return once the process has ended and its ending was processed (a supervisor's watch)."""
        if self._pump is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._pump)

    @property
    def exit_reason(self) -> str | None:
        """How the process ended (``crash``, ``oom``, ``timeout``), None while it runs.

        A deliberate ``stop()`` also reads ``crash``: only the caller knows it asked for the ending.
        """
        return self._death.outcome if self._death is not None else None

    @property
    def exit_detail(self) -> str:
        """How the process ended, in words (its exit status or signal); empty while it runs."""
        return self._death.error if self._death is not None else ""

    def log_tail(self, lines: int = 15) -> str:
        """The last lines the instance wrote to stdout/stderr."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # ---- invocations -----------------------------------------------------------------------------------

    async def call(self, inv_id: str, msg: dict[str, Any], task_json: bytes, timeout_s: float,
                   on_event: Callable[[Any], None] | None = None, *,
                   on_limit: Callable[[], None] | None = None, notify_at_s: float | None = None,
                   cpu_limit_s: float | None = None) -> tuple[dict[str, Any], list[Any]]:
        """Run one invocation; returns the instance's result frame (or a synthesized failure) and its events.

        Past ``timeout_s`` platform seconds the instance is killed (``timeout``), unless ``on_limit`` is
        given: then it is called once and the call runs on (a container's ingress gives up on a slow
        request; the server is not killed for it). With ``notify_at_s`` too, ``on_limit`` is called once
        that many platform seconds have passed (an API gateway's timeout, shorter than the function's) and
        ``timeout_s`` still kills. Past ``cpu_limit_s`` CPU seconds of the process (an edge
        isolate's budget: CPU, not wall time) it is killed (``cpu_limit``); the result's ``cpu_ms`` is then
        the process's CPU during the call, measured from outside. ``subrequests`` counts the LLM calls
        (``count_subrequest``) and ``ctx.http`` requests the call made.
        """
        if not self.alive:
            # It died after the caller chose it (a pattern may await between choosing and calling): no
            # ending frame will ever come for a new phase, so answer with how it ended.
            death = self._death or InstanceFailure("crash", "the instance is not running")
            return {"op": "result", "outcome": death.outcome, "error": death.error, "duration_ms": 0.0,
                    "wall_ms": 0.0, "cpu_ms": 0.0, "peak_memory_mb": self.final_peak_mb, "llm": [],
                    "llm_platform_s": 0.0}, []
        rest, self._rest_queued = self._rest_queued, None
        phase = self._new_phase(inv_id, timeout_s, factor=self.cpu_factor,
                                start_queued=rest if not self._phases else None)  # it slept only if nothing ran
        phase.on_event = on_event
        if notify_at_s is None:
            phase.on_limit = on_limit
        elif on_limit is not None and notify_at_s < timeout_s:  # else the kill comes first: no notice
            phase.on_limit, phase.limit_s, phase.then_limit_s = on_limit, max(0.0, notify_at_s), timeout_s
        self._limit_cpu(phase, cpu_limit_s)
        if self._llm_time is not None:
            self._llm_time.reset()
        self.inflight += 1
        try:
            assert self._writer is not None
            self._writer.write(encode({**msg, "op": "invoke", "id": inv_id, "timeout_s": timeout_s},
                                      raw=("task", task_json)))
            result = await self._watch(inv_id, phase)
            if self.clock.virtual and result.get("op") == "result":
                await self._owe_stretch(phase, result)
        finally:
            self.inflight -= 1
            self.last_used = self.clock.now()
        if result.get("op") != "result":
            f = self._failure_from(result, phase)
            result = {"op": "result", "outcome": f.outcome, "error": f.error, "duration_ms": f.platform_ms,
                      "wall_ms": f.wall_ms, "cpu_ms": phase.cpu_used_s * 1000.0, "peak_memory_mb": self.final_peak_mb}
        else:
            self._rest_queued = result.pop("queued_s", None) if not self._phases else None
            # The instance counted its LLM waits as real time (it only saw a slow HTTP response); the
            # endpoint told us their platform length.
            result["duration_ms"] += (phase.llm_platform_s - phase.llm_wall_s) * 1000.0
            if not self.cap.kernel_enforced and result.get("peak_memory_mb", 0.0) > self.cap.limit_mb:
                # No cgroup: the poller may have missed a short spike; the instance's own peak did not.
                result.update(outcome="oom", error=self._oom_message(result["peak_memory_mb"]), output=None)
                await self.kill("oom")
            elif phase.cpu_limit_s is not None:
                result["cpu_ms"] = self._cpu_used(phase) * 1000.0
                self._rest_cpu = phase.cpu_start + phase.cpu_used_s if not self._phases and self.alive else None
                if phase.cpu_used_s > phase.cpu_limit_s and result.get("outcome") == "ok":
                    # It finished between two checks, but past the budget: the platform would have stopped it.
                    result.update(outcome="cpu_limit", error=self._cpu_message(phase), output=None)
                    await self.kill("cpu_limit")
        result["llm"] = phase.llm_calls
        result["llm_platform_s"] = phase.llm_platform_s + phase.llm_real_s
        result["subrequests"] = phase.subrequests
        result["trace"] = (phase.wall_at, time.time(), self.boot, phase.http)  # spans are built from these
        return result, phase.events

    # ---- forwarded HTTP requests (an ASGI app on container) -------------------------------------------------

    def open_request(self, key: str) -> None:
        """A forwarded HTTP request is in flight here: LLM requests the app makes meanwhile belong to it.

        The app's requests carry no invocation id (an app calls its SDK as it would in production), so they
        are attributed while this is the only request on the instance, as a plain handler's are; with
        several in flight they are not (``_llm_phase``). Nothing is watched: the forwarder enforces the
        ingress's limits and the memory cap.
        """
        self._new_phase(key, None, factor=1.0)

    def close_request(self, key: str) -> tuple[list[Any], float, float]:
        """The request ended: its LLM calls, and the platform and wall seconds it waited on the model."""
        phase = self._phases.get(key)
        if phase is None:
            return [], 0.0, 0.0
        self._end_phase(key, phase)
        return phase.llm_calls, phase.llm_platform_s + phase.llm_real_s, phase.llm_wall_s

    # ---- LLM endpoint notifications ----------------------------------------------------------------------

    def _llm_phase(self, invocation_id: str | None) -> _Phase | None:
        """The phase an LLM request belongs to: the one named by its header, else the only one running."""
        if invocation_id is not None and invocation_id in self._phases:
            return self._phases[invocation_id]
        running = [p for k, p in self._phases.items() if k != "prepare"]
        return running[0] if len(running) == 1 else None

    def llm_wait(self, invocation_id: str | None, event: str, platform_s: float) -> None:
        """The LLM endpoint began or ended an emulated latency wait for a request of this instance."""
        phase = self._llm_phase(invocation_id)
        if phase is None:
            return
        now, now_p = time.monotonic(), self.clock.now()
        # Overlapping waits (parallel calls, a backoff beside a call) form one group: the timer sees one
        # wait from the first begin to the last end, standing for the platform time the group spanned.
        if event == "begin":
            if phase.llm_active == 0 or phase.llm_began is None:
                phase.llm_began, phase.llm_group, phase.llm_group_end = now, 0, 0.0
                phase.llm_began_p = now_p
                phase.llm_group_len = platform_s
                phase.timer.begin_wait(platform_s)
            else:
                offset = now_p - phase.llm_began_p
                phase.llm_group_len = max(phase.llm_group_len, offset + platform_s)
                phase.timer.wait_len = phase.llm_group_len
            phase.llm_active += 1
            phase.llm_group += 1
            was_held = phase.held
            self._hold(phase)
            if was_held and not phase.held and self.pid:
                # The agent may be sending more requests at once: no jump while its process is on a CPU.
                if self._cpu_probe is None:
                    self._cpu_probe = limits.CpuProbe(self.pid)
                probe = self._cpu_probe
                self.clock.probe(lambda: not phase.held and not phase.ended and self.alive and probe.running())
        elif phase.llm_active > 0 and phase.llm_began is not None:
            phase.llm_active -= 1
            offset = min(now_p - phase.llm_began_p, phase.llm_group_len)
            phase.llm_group_end = max(phase.llm_group_end, offset)
            if phase.llm_active == 0:
                platform = platform_s if phase.llm_group == 1 else phase.llm_group_end
                phase.timer.end_wait(platform)
                phase.llm_wall_s += now - phase.llm_began
                phase.llm_platform_s += platform
                phase.llm_began = None
                self._hold(phase)
        if self._llm_time is not None:
            self._llm_time.publish(phase.llm_wall_s, phase.llm_platform_s, phase.llm_began, phase.llm_group_len)
        _wake(phase.waiter)

    def count_subrequest(self, invocation_id: str | None) -> int:
        """Count one subrequest (an LLM request as it arrives) for its invocation; returns the phase's total."""
        phase = self._llm_phase(invocation_id)
        if phase is None:
            return 0
        phase.subrequests += 1
        return phase.subrequests

    def llm_call(self, call: Any) -> None:
        """Attribute one answered LLM request to the phase that made it."""
        phase = self._llm_phase(getattr(call, "invocation_id", None))
        if phase is not None:
            phase.llm_calls.append(call)
            if getattr(call, "upstream", False):
                phase.llm_real_s += call.wall_s

    def _limit_cpu(self, phase: _Phase, limit_s: float | None) -> None:
        rest, self._rest_cpu = self._rest_cpu, None
        if limit_s is not None and self.pid:
            phase.cpu_limit_s = limit_s
            # The last call's closing reading, if nothing ran since (this phase is the only one).
            phase.cpu_start = rest if rest is not None and len(self._phases) == 1 else self._cpu()

    def cpu_seconds(self) -> float:
        """CPU seconds the process has used so far (0 once it has ended: its counters are gone)."""
        return self._cpu() if self.alive and self.pid else 0.0

    def _cpu_used(self, phase: _Phase) -> float:
        phase.cpu_used_s = max(0.0, self._cpu() - phase.cpu_start) if self.alive else phase.cpu_used_s
        return phase.cpu_used_s

    def _cpu_message(self, phase: _Phase) -> str:
        assert phase.cpu_limit_s is not None
        return (f"CPU time limit exceeded: the request used {phase.cpu_used_s * 1000:.1f} ms of CPU, over its "
                f"{phase.cpu_limit_s * 1000:g} ms budget; the isolate was stopped")

    def _oom_message(self, peak: float) -> str:
        return f"memory use reached {peak:.0f} MB, over the {self.cap.limit_mb:g} MB cap; the instance was discarded"

    # ---- internals -------------------------------------------------------------------------------------

    def _cpu(self) -> float:
        """CPU seconds the process has used (its cgroup's counter where it has one: see ``limits.CpuClock``)."""
        if self._cpu_clock is None:
            self._cpu_clock = limits.CpuClock(self.pid, self.cap)
        return self._cpu_clock()

    def _mirror_timer(self, factor: float, start_queued: float | None = None) -> PlatformTimer:
        pid = self.pid
        cpu: Callable[[], float] = self._cpu if factor != 1.0 and pid else _no_cpu
        if pid and self._queued is None and self.cfg.get("queue_correction", True):
            self._queued = limits.QueuedClock(pid)
        if self.clock.virtual:
            # Mirrored on the virtual clock: real time passes 1:1 on it, a wait's span is its platform length.
            return PlatformTimer(cpu_factor=factor, time_scale=1.0, cpu=cpu, queued=self._queued, wall=self.clock.now,
                                 start_queued=start_queued)
        return PlatformTimer(cpu_factor=factor, time_scale=self.clock.scale, cpu=cpu, queued=self._queued,
                             start_queued=start_queued)

    def _new_phase(self, key: str, limit_s: float | None, factor: float, start_queued: float | None = None) -> _Phase:
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        phase = _Phase(timer=self._mirror_timer(factor, start_queued), limit_s=limit_s, future=fut,
                       started_p=self.clock.now())
        self._phases[key] = phase
        self._hold(phase)
        return phase

    # ---- the virtual clock: is this phase running real code, or waiting on an emulated deadline? ----------

    def _hold(self, phase: _Phase) -> None:
        """Hold the clock while the phase runs real code; release it while it waits (a wait, an LLM wait)."""
        if not self.clock.virtual:
            return
        want = not phase.ended and phase.wake is None and phase.llm_active == 0
        if want and not phase.held:
            phase.held = True
            self.clock.hold()
        elif not want and phase.held:
            phase.held = False
            self.clock.release()

    def _block(self, phase: _Phase, seconds: float, key: str) -> None:
        """The instance blocks on a wait: wake it when its platform deadline comes."""
        if phase.wake is not None:
            phase.wake.cancel()

        def wake() -> None:
            phase.wake = None
            self._hold(phase)
            if self._writer is not None:
                self._writer.write(encode({"op": "wake", "id": key}))

        phase.wake = self.clock.call_later(seconds, wake)
        self._hold(phase)

    def _unblock(self, phase: _Phase) -> None:
        if phase.wake is not None:
            phase.wake.cancel()
            phase.wake = None
        self._hold(phase)

    async def _owe_stretch(self, phase: _Phase, result: dict[str, Any]) -> None:
        """CPU stretched by the profile's CPU factor took less real time than it stands for: the rest is owed.

        The call's own figures already count it; waiting it out on the virtual clock keeps the fleet's
        timeline (the replica busy, the next request queued) in step with them.
        """
        platform_s = result.get("duration_ms", 0.0) / 1000.0 + phase.llm_platform_s - phase.llm_wall_s
        owed = platform_s - (self.clock.now() - phase.started_p)
        if owed > 1e-4:
            await self.clock.sleep(owed)

    async def _watch(self, key: str, phase: _Phase) -> dict[str, Any]:
        """Wait for the phase's ending frame while enforcing its time limit (and the polled memory cap)."""
        try:
            while not phase.future.done():
                wait = self._next_check(phase)
                if wait is not None and wait <= 0:
                    # A process pinned at its memory cap burns (stretched) CPU in kernel reclaim before the
                    # OOM killer fires; what ended it is memory, not time.
                    oom = self._over_memory() or self.cap.at_limit()
                    if not oom and phase.cpu_limit_s is not None and self._cpu_used(phase) >= phase.cpu_limit_s:
                        await self.kill("cpu_limit")
                        break
                    if not oom and phase.on_limit is not None:
                        notify, phase.on_limit, phase.limit_s = phase.on_limit, None, phase.then_limit_s
                        notify()
                        continue
                    await self.kill("oom" if oom else "timeout")
                    break
                # One future and one timer per wait: this loop runs on every call's warm path.
                loop = asyncio.get_running_loop()
                waiter = phase.waiter = loop.create_future()
                timer = loop.call_later(wait, _wake, waiter) if wait is not None else None
                vtimer = self._virtual_limit(phase, waiter)
                try:
                    await waiter
                finally:
                    if timer is not None:
                        timer.cancel()
                    if vtimer is not None:
                        vtimer.cancel()
                    phase.waiter = None
            return await phase.future
        finally:
            self._end_phase(key, phase)

    def _end_phase(self, key: str, phase: _Phase) -> None:
        """The phase is over: forgotten, its pending wake cancelled, its hold on the virtual clock released."""
        self._phases.pop(key, None)
        phase.ended = True
        if phase.wake is not None:
            phase.wake.cancel()
            phase.wake = None
        self._hold(phase)

    def _virtual_limit(self, phase: _Phase, waiter: asyncio.Future[None]) -> TimerHandle | None:
        """On the virtual clock a time limit is also a platform deadline: a jump over a wait must stop at it.

        The remaining time is the one ``_next_time_check`` just computed for this turn of the watch.
        """
        if not self.clock.virtual or phase.limit_s is None or not phase.timer.waiting:
            return None
        return self.clock.call_later(max(0.0, phase.remaining_s), lambda: _wake(waiter))

    def _over_memory(self) -> bool:
        if self.cap.kernel_enforced:
            return False
        rss = limits.rss_mb(self.pid)
        self._polled_peak_mb = max(self._polled_peak_mb, rss)
        return rss > self.cap.limit_mb

    def _next_check(self, phase: _Phase) -> float | None:
        """Wall seconds until a limit (time, memory, CPU) could next be reached (<= 0: now); None for no limit."""
        first = not phase.checked
        wait = self._next_time_check(phase)
        if phase.cpu_limit_s is None:
            return wait
        # The first check comes as the phase begins: no CPU used yet, no counter to read (edge's every call).
        left = phase.cpu_limit_s - (0.0 if first else self._cpu_used(phase))
        # CPU time accrues at most one second per core per wall second: re-check when it could reach the limit.
        cpu_wait = 0.0 if left <= 0 else max(_CPU_POLL_MIN_S, left / _CORES)
        return cpu_wait if wait is None else min(wait, cpu_wait)

    def _next_time_check(self, phase: _Phase) -> float | None:
        """Wall seconds until the time limit could next be reached (<= 0: now); None for no limit."""
        if self._over_memory():
            return 0.0
        poll = None if self.cap.kernel_enforced else _POLL_S
        if phase.limit_s is None:
            return poll
        # The first check comes right after the phase began: nothing has elapsed, no /proc read needed.
        remaining = phase.remaining_s = phase.limit_s - (phase.timer.elapsed() if phase.checked else 0.0)
        phase.checked = True
        if remaining <= 1e-9:
            return 0.0
        # The fastest platform time can pass: scaled while waiting (up to the wait's announced end),
        # CPU-stretched otherwise.
        left = phase.timer.wait_left()
        scale = phase.timer.time_scale
        if phase.timer.waiting and left is None:
            wall = remaining * scale
        elif left:
            wall = min(remaining, left) * scale
        else:  # not waiting, or past the wait's announced end: only real (CPU-stretched) time counts
            wall = remaining / phase.timer.cpu_factor
        return wall if poll is None else min(wall, poll)

    async def _read_frames(self) -> None:
        """The instance's pump: frames are dispatched as they arrive; this ends with the channel."""
        assert self._writer is not None
        try:
            await self._writer.closed
        finally:
            await self._ended()

    def _dispatch_safely(self, msg: dict[str, Any]) -> None:
        try:
            self._dispatch(msg)
        except Exception:
            # A frame this side cannot handle ends the channel, as a broken frame does.
            assert self._writer is not None
            self._writer.close()
            raise

    def _dispatch(self, msg: dict[str, Any]) -> None:
        op = msg["op"]
        key = "init" if op in ("ready", "init_error") else "prepare" if op == "prepared" else msg.get("id", "")
        phase = self._phases.get(key)
        if phase is None:
            return
        if op == "wait":
            phase.timer.begin_wait(msg["s"])
            if "w" in msg:
                self._block(phase, msg["s"], msg["w"])
            _wake(phase.waiter)
        elif op == "waitend":
            phase.timer.end_wait(msg["s"])
            self._unblock(phase)
            _wake(phase.waiter)
        elif op == "emit":
            phase.events.append(msg["event"])
            if phase.on_event is not None:
                phase.on_event(msg["event"])
        elif op == "subreq":  # a ctx.http request of the running call (edge subrequest budget)
            phase.subrequests += 1
            phase.http.append([msg.get("method"), msg.get("host"), time.time(), None, None])
        elif op == "subresp":  # its answer: status and end, for its span (the n-th request of the call)
            if 0 < msg.get("n", 0) <= len(phase.http):
                phase.http[msg["n"] - 1][3:] = [time.time(), msg.get("status")]
        elif op == "checkpoint":
            if self._on_checkpoint is not None:
                self._on_checkpoint(key, msg["key"], msg["value"])
        elif not phase.future.done():
            phase.future.set_result(msg)
            _wake(phase.waiter)

    async def _ended(self) -> None:
        """The channel closed: learn how the process ended and fail whatever was in flight."""
        was_alive, self.alive, self.ready = self.alive, False, False
        if self._writer is not None:
            self._writer.close()
        status = -9
        if self.pid and was_alive:
            exit_fut = self.spawner.exit_future(self.pid)
            try:
                status = await asyncio.wait_for(asyncio.shield(exit_fut), 5.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                status = await exit_fut
            self.spawner.forget(self.pid)
        reason = self._kill_reason
        if reason is None and self.cap.oom_killed():
            reason = "oom"
        self._death = InstanceFailure(reason or "crash", describe_status(status))
        self.final_peak_mb = max(self.cap.peak_mb(), self._polled_peak_mb)
        for phase in list(self._phases.values()):
            if not phase.future.done():
                phase.future.set_result({"op": "died"})
                _wake(phase.waiter)
        if self._cpu_clock is not None:
            self._cpu_clock.close()
        if self._cpu_probe is not None:
            self._cpu_probe.close()
        self.cap.remove()
        if self._llm_time is not None:
            self._llm_time.close()
        if self._queued is not None:
            self._queued.close()

    def _failure_from(self, msg: dict[str, Any], phase: _Phase) -> InstanceFailure:
        death = self._death or InstanceFailure("crash", "the instance channel closed")
        platform_ms = phase.timer.elapsed() * 1000.0
        wall_ms = phase.timer.wall_elapsed() * 1000.0
        if death.outcome == "timeout" and phase.limit_s is not None:
            # The platform kills at the limit exactly; our kill lands a timer tick later in wall time.
            platform_ms = phase.limit_s * 1000.0
            error = f"Task timed out after {phase.limit_s:.2f} seconds"
        elif death.outcome == "cpu_limit" and phase.cpu_limit_s is not None:
            error = self._cpu_message(phase)
        elif death.outcome == "oom":
            peak = max(self.final_peak_mb, self.cap.limit_mb)
            error = f"memory limit of {self.cap.limit_mb:g} MB exceeded (used {peak:.0f} MB); instance {death.error}"
        else:
            tail = self.log_tail()
            error = f"the instance process {death.error}" + (
                f"\n--- instance log (last lines) ---\n{tail}" if tail else "")
        return InstanceFailure(death.outcome, error, platform_ms, wall_ms)


def _no_cpu() -> float:
    return 0.0


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)
