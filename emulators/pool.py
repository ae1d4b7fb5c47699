"""The fleet every pattern shares: starts instances, keeps them, retires them, reaps them all at the end.

A pattern is a policy over this pool (when to start and stop instances, where to route, what to bill);
the pool owns the processes: one zygote per deployment, an instance cgroup each, a run directory with
their logs, and the guarantee that ``close()`` leaves no process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .clock import Clock
from .errors import InstanceStartError
from .profiles import Profile
from .runtime import limits
from .runtime.agent import AgentRef, uses_ctx_llm
from .runtime.docker import DockerSpawner
from .runtime.instance import Instance, InstanceFailure, StartInfo
from .runtime.spawner import Spawner

__all__ = ["Pool"]

_PREPARE_TIMEOUT_S = 10.0  # wall seconds for a fork to join its cgroup and say "prepared" (it takes ~5 ms)
_PREPARE_ATTEMPTS = 3
_VIRTUAL_SCALE = 1e-9  # what the instance's timer takes for time_scale on the virtual clock (see PlatformTimer)


class Pool:
    """Instances of one deployment."""

    def __init__(self, *, agent: AgentRef, adapter: str, profile: Profile, clock: Clock, pattern: str,
                 run_id: str, function_name: str | None = None, env: dict[str, str] | None = None,
                 keep_logs: bool = False, llm: str = "sim", llm_script: str | Path | None = None,
                 on_checkpoint: Callable[[str, str, Any], None] | None = None, runtime: str = "process",
                 image: str | None = None, records_dir: str | Path | None = None, app_path: str = "/invoke") -> None:
        self.agent = agent
        self.adapter = adapter
        self.app_path = app_path  # an HTTP-app agent: where a plain task is POSTed
        self.profile = profile
        self.clock = clock
        self.pattern = pattern
        self.run_id = run_id
        self.function_name = function_name or agent.name
        self.env = dict(env or {})
        self.keep_logs = keep_logs
        self.records_dir = records_dir  # where the deployment's record store is kept (None: a temporary one)
        self.llm_mode = llm
        self.llm_script = llm_script
        self.llm: Any = None  # the LLMEndpoint every instance's LLM calls go through (None: off)
        self.llm_url: str | None = None
        self.tracer: Any = None  # the deployment's emulators.tracing.Tracer (set by the facade); None: no traces
        self.rng = random.Random(profile.seed)
        self.run_dir = Path(tempfile.mkdtemp(prefix=f"harness-{run_id}-"))
        self.runtime = runtime
        # An ASGI app on the container pattern is served by uvicorn in each replica and reached over HTTP
        # (forward.py), not through API Gateway events; the socket lives in the run directory.
        self.forwards_http = pattern == "container" and adapter == "asgi" and runtime == "process"
        # runtime="docker": one container per instance instead of a process forked from the zygote
        self._docker = DockerSpawner(run_id, self.run_dir, self.env, profile=profile, agent=agent, image=image) \
            if runtime == "docker" else None
        self._cgroups = limits.cgroup_parent(run_id) if self._docker is None else None
        zygote_env = dict(self.env)
        if self._cgroups is not None:
            zygote_env["HARNESS_CGROUP_PARENT"] = str(self._cgroups[0])
        self.spawner: Spawner = self._docker or Spawner(run_id, self.run_dir, zygote_env)
        self.instances: list[Instance] = []
        # Where ctx.checkpoint() writes go (the pattern points it at its state store).
        self.on_checkpoint = on_checkpoint
        # Whether instances make ctx.llm's client at init (the agent's code uses it): read once, statically.
        self.llm_client_at_init = uses_ctx_llm(agent)
        self._ids = itertools.count(1)
        self._closed = False
        self._spare: asyncio.Task[Instance] | None = None

    @property
    def memory_enforcement(self) -> str:
        """How memory caps are enforced here: ``cgroup`` (kernel) or ``poll`` (RSS poller)."""
        return "cgroup" if self._cgroups is not None else "poll"

    async def open(self) -> None:
        """Start the LLM endpoint and the zygote, and pre-fork the first spare instance."""
        with self.clock.busy():  # starting servers and the zygote is real time
            await self._open()

    async def _open(self) -> None:
        if self.llm_mode != "off":
            from .llm import LLMEndpoint  # the endpoint pulls in starlette/uvicorn: only when used

            upstream = self.llm_mode if self.llm_mode.startswith(("http://", "https://")) else None
            self.llm = LLMEndpoint(clock=self.clock, script=self.llm_script, seed=self.profile.seed,
                                   on_call=self._llm_call, on_wait=self._llm_wait, upstream=upstream)
            self.llm_url = await self.llm.start()
        await self.spawner.start()
        self._spare = asyncio.create_task(self._prepare(), name=f"spare-{self.run_id}")

    def _instance(self, caller: str | None) -> Instance | None:
        return next((i for i in self.instances if i.id == caller), None) if caller else None

    def _llm_wait(self, caller: str | None, invocation_id: str | None, event: str, platform_s: float) -> None:
        inst = self._instance(caller)
        if inst is not None:
            inst.llm_wait(invocation_id, event, platform_s)

    def _llm_call(self, call: Any) -> None:
        inst = self._instance(call.caller)
        if inst is not None:
            inst.llm_call(call)

    async def _prepare(self) -> Instance:
        """Fork an instance into its capped cgroup, to be cold-started later (off the call's critical path).

        A fork that has not reported "prepared" within ``_PREPARE_TIMEOUT_S`` is killed and forked again:
        under heavy concurrency (several deployments starting and killing instances in one process) a
        spare was seen to stay unprepared, and a deployment must not hang on it.
        """
        for attempt in range(1, _PREPARE_ATTEMPTS + 1):
            try:
                return await self._prepare_once()
            except TimeoutError:
                if attempt == _PREPARE_ATTEMPTS:
                    raise InstanceStartError(
                        f"an instance did not come up within {_PREPARE_TIMEOUT_S:g} s, {attempt} times; "
                        f"the machine may be out of processes or memory") from None
        raise AssertionError("unreachable")

    async def _prepare_once(self) -> Instance:
        instance_id = f"i-{next(self._ids):04d}"
        cfg = self._config(instance_id)
        cap = self._docker.prepare(instance_id, cfg) if self._docker is not None else \
            limits.make_memory_cap(self._cgroups, instance_id, self.profile.memory_mb)
        cfg["cgroup"] = str(cap.cgroup) if cap.cgroup else None
        inst = Instance(self.spawner, instance_id, cfg, cap, clock=self.clock, on_checkpoint=self.on_checkpoint)
        try:
            await asyncio.wait_for(inst.prepare(), _PREPARE_TIMEOUT_S)
        except BaseException:
            await inst.kill()
            cap.remove()
            raise
        return inst

    def _config(self, instance_id: str) -> dict[str, Any]:
        p = self.profile
        env = {
            **self.env,
            "HARNESS_RUN_ID": self.run_id,
            "HARNESS_INSTANCE_ID": instance_id,
            "HARNESS_PATTERN": self.pattern,
            "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(int(p.memory_mb)),
        }
        if self.llm_url is not None:
            # Per-instance base URLs: the endpoint knows which instance (and so which call) each request
            # belongs to, whatever SDK the agent uses. The keys are the harness's own, never a real one.
            env.update({
                "OPENAI_BASE_URL": f"{self.llm_url}/i/{instance_id}/v1",
                "OPENAI_API_KEY": f"harness-{self.run_id}",
                "ANTHROPIC_BASE_URL": f"{self.llm_url}/i/{instance_id}",
                "ANTHROPIC_API_KEY": f"harness-{self.run_id}",
            })
        return {
            "instance_id": instance_id,
            "agent": self.agent.to_json(),
            "adapter": self.adapter,
            "app_path": self.app_path,
            "pattern": self.pattern,
            "function_name": self.function_name,
            "memory_mb": p.memory_mb,
            # The virtual clock wakes blocked waits itself; a wait in progress then counts at its full length.
            "time_scale": self.clock.time_scale or _VIRTUAL_SCALE,
            "virtual": self.clock.virtual,
            "cpu_factor": p.cpu_factor(),
            "init_cpu_factor": p.cpu_factor(init=True),
            "instance_concurrency": (p.instance_concurrency if self.pattern == "serverless"
                                     else p.replica_concurrency if self.pattern == "container" else 1),
            "response_limit_bytes": p.response_limit_bytes,
            # the LLM waits of the running invocation, published for ctx.remaining_time_ms() (llmtime.py)
            "llm_time_path": str(self.run_dir / f"{instance_id}.llmtime") if self.llm_url else None,
            "llm_client_at_init": self.llm_client_at_init,
            "log_path": str(self.run_dir / f"{instance_id}.log"),
            "app_socket": str(self.run_dir / f"{instance_id}.sock") if self.forwards_http else None,
            "cgroup": None,
            "env": env,
        }

    async def start_instance(self) -> tuple[Instance, StartInfo | InstanceFailure]:
        """Cold-start one instance; on failure it is already gone and not in the pool.

        It takes the pre-forked spare (forking and joining a memory cgroup cost ~1-12 ms here, which is
        the harness's cost, not the platform's) and leaves the next spare forking in the background.
        """
        if self._closed:
            raise InstanceStartError("the deployment is closing; no new instance starts")
        spare = self._spare if self._spare is not None else asyncio.create_task(self._prepare())
        self._spare = asyncio.create_task(self._prepare(), name=f"spare-{self.run_id}")
        with self.clock.busy():  # a cold start waiting on the fork is real work in flight
            inst = await spare
        self.instances.append(inst)
        try:
            info = await inst.start(self.profile.init_timeout_s, self.profile.cold_start_overhead_ms.sample(self.rng))
        except BaseException:
            await self.retire(inst)
            raise
        if isinstance(info, InstanceFailure):
            await self.retire(inst)
        elif self._docker is not None:
            with self.clock.busy():  # a call to the Docker engine: real time, not to be jumped over
                await self._docker.started(inst.id)  # a full-speed init is over: the CPU quota applies now
        return inst, info

    async def retire(self, inst: Instance) -> None:
        """Stop an instance and forget it."""
        with contextlib.suppress(ValueError):
            self.instances.remove(inst)
        await inst.stop()

    async def discard_dead(self, inst: Instance) -> None:
        """Forget an instance that died (killed for a limit, crashed)."""
        if not inst.alive:
            await self.retire(inst)

    async def close(self) -> None:
        """Stop every instance and the zygote; remove cgroups and (unless kept) the run directory."""
        if self._closed:
            return
        self._closed = True
        spare, self._spare = self._spare, None
        if spare is not None:
            spare.cancel()
            with contextlib.suppress(BaseException):
                inst = await spare
                await inst.kill()
        try:
            await asyncio.gather(*(i.kill() for i in list(self.instances)), return_exceptions=True)
            self.instances.clear()
        finally:
            await self.spawner.close()
            if self.llm is not None:
                await self.llm.stop()
            limits.remove_cgroup_parent(self._cgroups)
            if not self.keep_logs:
                shutil.rmtree(self.run_dir, ignore_errors=True)
