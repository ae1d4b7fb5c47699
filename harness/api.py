"""``harness.deploy`` / ``harness.adeploy``: one agent under one pattern, as a context manager.

The engine is asyncio (``AsyncDeployment``); ``Deployment`` is a thin sync facade that forwards every call
to the engine's loop running in a background thread (``_loop.LoopThread``): one implementation, never two
hand-copied twins. Both always reap every process they started, on exceptions and Ctrl-C too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from emulators.clock import Clock
from emulators.container import Container
from emulators.edge import Edge, EdgePool
from emulators.edge_geo import RegionalServerless, geography_for
from emulators.errors import ConfigError, DeploymentClosedError
from emulators.gateway import GatewayOptions, TaskRegistry, WebhookSender, async_retry_delays
from emulators.memory import DEFAULT_DIMENSIONS, DEFAULT_MODEL, MemoryStore, open_memory_store
from emulators.memory.client import ENV_DIMENSIONS, ENV_MODEL, ENV_URL
from emulators.pattern import Emulator
from emulators.pool import Pool
from emulators.profiles import Profile
from emulators.records import Record, Result, Summary
from emulators.serverless import Serverless
from emulators.state import open_state_store
from emulators.timeline import Timeline
from emulators.tracing import TraceOptions, Tracer

from ._loop import LoopThread
from .config import DeployConfig, build_config

__all__ = ["AsyncDeployment", "Deployment", "TaskStatus", "adeploy", "deploy"]

TaskState = Literal["queued", "running", "succeeded", "failed"]


@dataclass(frozen=True)
class TaskStatus:
    """Where a submitted task stands."""

    task_id: str
    state: TaskState
    result: Result | None = None


def _runtime(cfg: DeployConfig) -> dict[str, Any]:
    """The pool's instance runtime: processes (default) or one Docker container per instance."""
    from emulators.runtime.docker import parse_runtime

    kind, image = parse_runtime(cfg.runtime)
    return {"runtime": kind, "image": image} if kind != "process" else {}


def _emulator(cfg: DeployConfig) -> tuple[Emulator, MemoryStore]:
    run_id = uuid.uuid4().hex[:10]
    clock = Clock(cfg.time_scale)
    geo = geography_for(cfg.pattern, cfg.profile)  # checks the region names before anything starts
    pool_type = EdgePool if cfg.pattern == "edge" else Pool  # the edge runtime preloads its HTTP client
    pool = pool_type(agent=cfg.agent, adapter=cfg.adapter, profile=cfg.profile, clock=clock, pattern=cfg.pattern,
                run_id=run_id, function_name=cfg.function_name, env=dict(cfg.env), keep_logs=cfg.keep_logs,
                llm=cfg.llm, llm_script=cfg.llm_script, records_dir=cfg.records_dir, app_path=cfg.app_path,
                **_runtime(cfg))
    memory: MemoryStore | None = None
    try:
        memory = _memory(cfg, pool)
        state = open_state_store(cfg.state or cfg.profile.state, pool.run_dir)
    except BaseException:
        import shutil

        if memory is not None:
            memory.close()
        shutil.rmtree(pool.run_dir, ignore_errors=True)
        raise
    if cfg.pattern == "edge" and geo is not None:
        return Edge(pool, cfg.profile, clock, state, geo), memory
    if geo is not None:  # serverless placed in one region, to compare with the edge
        return RegionalServerless(pool, cfg.profile, clock, state, geography=geo), memory
    if cfg.pattern == "container":
        return Container(pool, cfg.profile, clock, state), memory
    if cfg.pattern == "daemon":
        from emulators.daemon import Daemon

        return Daemon(pool, cfg.profile, clock, state), memory
    return Serverless(pool, cfg.profile, clock, state), memory


def _memory(cfg: DeployConfig, pool: Pool) -> MemoryStore:
    """Open ctx.memory's store (tables made, mode picked) and point the instances at it (see emulators.memory)."""
    dims = cfg.env.get(ENV_DIMENSIONS)  # the user's env may choose the embedding size
    if dims is not None and not dims.isdigit():
        raise ConfigError(f"{ENV_DIMENSIONS}={dims!r} in env: expected a whole number of dimensions, e.g. 256")
    store = open_memory_store(cfg.memory, pool.run_dir, dimensions=int(dims) if dims else DEFAULT_DIMENSIONS)
    pool.env.setdefault(ENV_URL, store.share_url)
    pool.env.setdefault(ENV_DIMENSIONS, str(store.dimensions))
    pool.env.setdefault(ENV_MODEL, DEFAULT_MODEL)
    return store


def _tracer(cfg: DeployConfig, emulator: Emulator, opts: TraceOptions) -> Tracer:
    pool = emulator.pool
    return Tracer(resource={"service.name": pool.function_name, "service.namespace": "agent-deploy-harness",
                            "harness.pattern": cfg.pattern, "harness.profile": cfg.profile.name,
                            "harness.run_id": pool.run_id},
                  env=cfg.env, path=opts.path, otlp=opts.otlp)


class AsyncDeployment:
    """A running deployment, driven from asyncio."""

    def __init__(self, cfg: DeployConfig, gateway: GatewayOptions | None = None,
                 traces: str | Path | bool | None = None) -> None:
        self.config = cfg
        self.gateway_options = gateway if gateway is not None else GatewayOptions()
        trace_opts = TraceOptions.parse(traces)  # a bad value is a ConfigError before anything starts
        self._emulator, self.memory_store = _emulator(cfg)
        self._tracer = None if trace_opts is None else _tracer(cfg, self._emulator, trace_opts)
        self._emulator.pool.tracer = self._tracer
        opts = self.gateway_options
        clock = self.clock = self._emulator.pool.clock  # one timeline: the gateway and tasks share it
        # One machinery: the gateway's routes and submit/status/wait/stream below share this registry.
        self._webhooks = WebhookSender(opts.webhook_secret, clock, allow=opts.webhook_allow,
                                       attempts=opts.webhook_attempts, backoff_s=opts.webhook_backoff_s)
        delays = opts.async_retry_delays_s
        self._registry = TaskRegistry(
            self._emulator, clock, deliverer=self._webhooks,
            retry_delays_s=async_retry_delays(cfg.profile.name) if delays is None else delays,
            retention_s=opts.task_retention_s, max_finished=opts.max_finished_tasks)
        self._gateway: Any = None  # emulators.gateway.Gateway once serving
        self._closed = False
        self._started = False

    @property
    def pattern(self) -> str:
        """The pattern this deployment emulates."""
        return self.config.pattern

    @property
    def profile(self) -> Profile:
        """The profile in force (overrides applied)."""
        return self.config.profile

    @property
    def run_dir(self) -> Path:
        """Directory with the instances' logs (kept after close with ``keep_logs=True``)."""
        return self._emulator.pool.run_dir

    @property
    def records_path(self) -> Path:
        """The SQLite file every record is written to (kept with ``records_dir=``; see ``harness report``)."""
        return self._emulator.records.path

    @property
    def url(self) -> str:
        """Base URL of this deployment's HTTP gateway (``http://127.0.0.1:PORT``)."""
        if self._gateway is None or self._gateway.url is None:
            raise ConfigError("this deployment has no HTTP gateway: it was deployed with gateway=False, or is not "
                              "started or already closed; deploy with gateway=True (the default) to get a URL")
        return str(self._gateway.url)

    @property
    def timeline(self) -> Timeline | None:
        """The gateway's sampler of this deployment over time (``/_harness/timeline``); None without a gateway."""
        timeline: Timeline | None = None if self._gateway is None else self._gateway.app.timeline
        return timeline

    @property
    def webhook_secret(self) -> str:
        """The secret webhook signatures are made with (verify them with ``emulators.gateway.verify``)."""
        return self.gateway_options.webhook_secret

    async def start(self) -> AsyncDeployment:
        """Start the deployment (its runtime, provisioned instances, background loops, HTTP gateway)."""
        if not self._started:
            self._started = True
            try:
                async with self.clock.caller():  # provisioned or warm instances' start overhead is platform time
                    await self._emulator.start()
                if self.gateway_options.serve:
                    from emulators.gateway.server import Gateway  # uvicorn/starlette: only when serving HTTP

                    self._gateway = Gateway(self._emulator, self._registry, self.clock, self.gateway_options)
                    await self._gateway.start()
            except BaseException:
                await self.aclose()
                raise
        return self

    def _check_open(self) -> None:
        if self._closed:
            raise DeploymentClosedError("this deployment is closed; create a new one with harness.deploy()")

    async def invoke(self, task: Any, session_id: str | None = None) -> Record:
        """Run the agent on ``task`` synchronously, as the platform would; never raises for platform failures."""
        self._check_open()
        async with self.clock.caller():
            return await self._emulator.invoke(task, session_id)

    async def submit(self, task: Any, session_id: str | None = None, callback_url: str | None = None) -> str:
        """Start ``task`` in the background (as ``POST /tasks``) and return its id at once.

        ``callback_url`` gets the final task JSON as a signed webhook (loopback targets only unless
        allow-listed in ``GatewayOptions.webhook_allow``; ConfigError otherwise).
        """
        self._check_open()
        if callback_url is not None:
            self._webhooks.check(callback_url)
        return self._registry.submit(task, session_id, callback_url).task_id

    async def status(self, task_id: str) -> TaskStatus:
        """State of a submitted task, with its result once finished."""
        t = self._registry.get(task_id)
        return TaskStatus(task_id, t.state, t.result)

    async def wait(self, task_id: str, timeout_s: float | None = None) -> Record:
        """Wait (wall seconds) for a submitted task's result; TimeoutError past ``timeout_s``."""
        async with self.clock.caller():
            return await self._registry.get(task_id).wait(timeout_s)

    async def advance(self, platform_s: float) -> None:
        """Let ``platform_s`` platform seconds of idle time pass (idle expiry, scale-down, back-offs, ...).

        On the virtual clock it returns as soon as everything due in that span has run (a 10-minute idle
        expiry takes milliseconds); on a scaled clock it sleeps ``platform_s * time_scale`` wall seconds.
        """
        self._check_open()
        await self.clock.advance(platform_s)

    async def stream(self, task: Any, session_id: str | None = None) -> AsyncIterator[Any]:
        """Yield the agent's progress events as they come, then the final Record."""
        self._check_open()
        t = self._registry.submit(task, session_id, retries=False)
        events = t.follow()
        try:
            while True:
                # A caller only while it waits for the next item: between items its own code runs in real time.
                async with self.clock.caller():
                    try:
                        _, _, item = await events.__anext__()
                    except StopAsyncIteration:
                        return
                yield item
        finally:
            if t.runner is not None and not t.runner.done():
                t.runner.cancel()  # the caller left: a sync stream's call ends with its caller
            await events.aclose()

    def records(self, since: int = 0) -> list[Record]:
        """Every invocation so far, one Record each (read back from the store); ``since=n``: after the first n."""
        log = self._emulator.records
        return log.since(since) if since else list(log)

    def record_count(self) -> int:
        """How many records there are so far (without reading them)."""
        return len(self._emulator.records)

    def traces(self) -> list[dict[str, Any]]:
        """Every span of this deployment so far (one trace per record, trace id = ``Record.trace_id``)."""
        return [] if self._tracer is None else self._tracer.spans()

    async def restart(self) -> None:
        """Rolling restart (container): replace the replicas one at a time, failing no request."""
        self._check_open()
        restart = getattr(self._emulator, "restart", None)
        if restart is None:
            raise ConfigError(f"the {self.pattern} pattern has no rolling restart; it is a container feature")
        async with self.clock.caller():  # the drain and start periods are platform time
            await restart()

    def summary(self) -> Summary:
        """Counts per outcome, latency percentiles, cold starts and cost, from the records."""
        return dataclasses.replace(self._emulator.summary(), clock_late_max_s=self.clock.late_max_s)

    async def aclose(self) -> None:
        """Stop the gateway, the tasks, every instance and the runtime; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        async with self.clock.caller():  # a daemon's grace period for running tasks is platform time
            await self._aclose()

    async def _aclose(self) -> None:
        try:
            if self._gateway is not None:
                await self._gateway.stop()
            await self._registry.close()
            await self._webhooks.aclose()
        finally:
            try:
                self.memory_store.close()
                await self._emulator.close()
                if self._tracer is not None:  # the last spans are built and exported off the event loop
                    await asyncio.to_thread(self._tracer.close)
            finally:
                await asyncio.to_thread(self._close_records)

    def _close_records(self) -> None:
        """Commit the last records, with what ``harness report`` needs that records do not say."""
        log = self._emulator.records
        log.set_meta(summary=self.summary().to_json(), profile=self.profile.to_json(),
                     time_scale=self.config.time_scale)
        log.close()

    async def __aenter__(self) -> AsyncDeployment:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.shield(self.aclose())


def _gateway_options(gateway: bool | GatewayOptions) -> GatewayOptions:
    if isinstance(gateway, GatewayOptions):
        return gateway
    if not isinstance(gateway, bool):
        raise ConfigError(f"gateway must be True, False or a GatewayOptions, got {gateway!r}")
    return GatewayOptions(serve=gateway)


def adeploy(agent: str | Path | Callable[..., Any] | None = None, pattern: str | None = None,
            profile: str | Path | Profile | None = None, time_scale: float | None = None, *,
            gateway: bool | GatewayOptions = True, traces: str | Path | bool | None = None,
            **kwargs: Any) -> AsyncDeployment:
    """An AsyncDeployment; use ``async with harness.adeploy(...) as d``. Arguments as ``deploy``."""
    return AsyncDeployment(build_config(agent, pattern, profile, time_scale, **kwargs), _gateway_options(gateway),
                           traces)


class Deployment:
    """The sync facade: every method runs the AsyncDeployment's coroutine on a background event loop."""

    def __init__(self, cfg: DeployConfig, gateway: GatewayOptions | None = None,
                 traces: str | Path | bool | None = None) -> None:
        self._engine = LoopThread()
        self._closed = False
        try:
            self._async = self._engine.call(self._make, cfg, gateway, traces)
            self._engine.call(self._async.start)
        except BaseException:
            self._engine.stop()
            raise
        # Reap on interpreter exit even if the caller never closes (the context manager is the normal way).
        self._finalizer = weakref.finalize(self, Deployment._finalize, self._engine, self._async)

    @staticmethod
    async def _make(cfg: DeployConfig, gateway: GatewayOptions | None,
                    traces: str | Path | bool | None) -> AsyncDeployment:
        return AsyncDeployment(cfg, gateway, traces)

    @staticmethod
    def _finalize(engine: LoopThread, dep: AsyncDeployment) -> None:
        try:
            engine.call(dep.aclose)
        finally:
            engine.stop()

    @property
    def config(self) -> DeployConfig:
        """The frozen configuration."""
        return self._async.config

    @property
    def profile(self) -> Profile:
        """The profile in force (overrides applied)."""
        return self._async.profile

    @property
    def pattern(self) -> str:
        """The pattern this deployment emulates."""
        return self._async.pattern

    @property
    def run_dir(self) -> Path:
        """Directory with the instances' logs."""
        return self._async.run_dir

    @property
    def records_path(self) -> Path:
        """The SQLite file every record is written to (kept with ``records_dir=``; see ``harness report``)."""
        return self._async.records_path

    @property
    def url(self) -> str:
        """Base URL of this deployment's HTTP gateway."""
        return self._async.url

    @property
    def memory_store(self) -> MemoryStore:
        """The store ``ctx.memory`` writes to (``mode`` says which backend; ``count()`` what it holds)."""
        return self._async.memory_store

    @property
    def webhook_secret(self) -> str:
        """The secret webhook signatures are made with."""
        return self._async.webhook_secret

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._closed:
            raise DeploymentClosedError("this deployment is closed; create a new one with harness.deploy()")
        return self._engine.call(fn, *args)

    def invoke(self, task: Any, session_id: str | None = None) -> Record:
        """Run the agent on ``task``; never raises for platform failures (see ``Result.outcome``)."""
        return self._call(self._async.invoke, task, session_id)  # type: ignore[no-any-return]

    def submit(self, task: Any, session_id: str | None = None, callback_url: str | None = None) -> str:
        """Start ``task`` in the background; returns a task id at once."""
        return self._call(self._async.submit, task, session_id, callback_url)  # type: ignore[no-any-return]

    def status(self, task_id: str) -> TaskStatus:
        """State of a submitted task."""
        return self._call(self._async.status, task_id)  # type: ignore[no-any-return]

    def wait(self, task_id: str, timeout_s: float | None = None) -> Record:
        """Wait for a submitted task's Record."""
        return self._call(self._async.wait, task_id, timeout_s)  # type: ignore[no-any-return]

    def stream(self, task: Any, session_id: str | None = None) -> Iterator[Any]:
        """Progress events as the agent emits them, then the final Record."""
        if self._closed:
            raise DeploymentClosedError("this deployment is closed; create a new one with harness.deploy()")
        agen = self._async.stream(task, session_id)
        try:
            while True:
                try:
                    yield self._engine.call(agen.__anext__)
                except StopAsyncIteration:
                    return
        finally:
            if not self._engine.loop.is_closed():
                self._engine.call(agen.aclose)  # type: ignore[attr-defined]

    def records(self, since: int = 0) -> list[Record]:
        """Every invocation so far, one Record each (read back from the store); ``since=n``: after the first n."""
        return self._async.records(since)

    def record_count(self) -> int:
        """How many records there are so far (without reading them)."""
        return self._async.record_count()

    def traces(self) -> list[dict[str, Any]]:
        """Every span of this deployment so far, as dicts (works after close too)."""
        return self._async.traces()

    def advance(self, platform_s: float) -> None:
        """Let ``platform_s`` platform seconds of idle time pass (see ``AsyncDeployment.advance``)."""
        self._call(self._async.advance, platform_s)

    def restart(self) -> None:
        """Rolling restart (container): replace the replicas one at a time, failing no request."""
        self._call(self._async.restart)

    def summary(self) -> Summary:
        """Counts per outcome, latency percentiles, cold starts and cost."""
        return self._call(_sync_summary, self._async)  # type: ignore[no-any-return]

    def close(self) -> None:
        """Stop every process of this deployment; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._finalizer()

    def __enter__(self) -> Deployment:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


async def _sync_summary(dep: AsyncDeployment) -> Summary:
    return dep.summary()


def deploy(agent: str | Path | Callable[..., Any] | None = None, pattern: str | None = None,
           profile: str | Path | Profile | None = None, time_scale: float | None = None, *, adapter: str = "auto",
           state: str | None = None, env: dict[str, str] | None = None, keep_logs: bool = False,
           function_name: str | None = None, llm: str = "sim", llm_script: str | Path | None = None,
           gateway: bool | GatewayOptions = True, traces: str | Path | bool | None = None,
           records_dir: str | Path | None = None, memory: str | None = None, source: str | Path | None = None,
           function: str | None = None, **overrides: Any) -> Deployment:
    """Deploy ``agent`` under ``pattern`` with ``profile``; use as ``with harness.deploy(...) as d:``.

    ``time_scale=None`` (default): the virtual clock (emulated waits cost no wall time; ``d.advance(s)``
    passes idle time); a number: wall seconds per platform second, for callers that live in real time.

    ``pattern=None`` takes the named profile's pattern (``profile="k8s-hpa"`` is a container), else serverless.

    ``overrides`` are profile fields (``timeout_s=10``, ``memory_mb=256``, ``max_concurrency=2``...).
    ``llm="sim"`` (default) starts the LLM simulator the instances' SDKs are pointed at (``llm_script``:
    a TOML script of scripted answers); ``llm="off"`` starts none; ``llm="https://..."`` starts the
    metering proxy to that OpenAI/Anthropic-compatible upstream (same limits, faults and metering).
    ``traces``: every call is an OpenTelemetry trace (``d.traces()``); ``"otlp://host:4318"`` exports them
    over OTLP/HTTP (as ``HARNESS_OTLP_ENDPOINT`` does), a path appends them as OTLP/JSON lines, False: none.
    Every record is written to a SQLite store as it finishes (memory holds only the latest): ``records_dir``
    keeps it there as ``<pattern>-<run id>.sqlite`` for ``harness report``; without, it is a temporary file.
    ``memory``: the store of ``ctx.memory`` (long-term memory): None, a SQLite file in the run directory
    (gone with the deployment); ``sqlite:///path`` or ``postgresql://...`` to keep it across deployments.
    ``source`` is a deployment file (SAM template.yaml, serverless.yml, wrangler.toml/jsonc, vercel.json,
    Kubernetes manifests, fly.toml, Cloud Run service.yaml): its function ``function`` (needed when it
    declares several) gives the agent, pattern, profile, limits and env; explicit arguments win.
    Raises ConfigError for a bad agent, pattern, profile or field before starting anything.
    """
    cfg = build_config(agent, pattern, profile, time_scale, adapter=adapter, state=state, env=env,
                       keep_logs=keep_logs, function_name=function_name, llm=llm, llm_script=llm_script,
                       records_dir=records_dir, memory=memory, source=source, function=function, **overrides)
    return Deployment(cfg, _gateway_options(gateway), traces)
