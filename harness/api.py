"""``harness.deploy`` / ``harness.adeploy``: one agent under one pattern, as a context manager.

The engine is asyncio (``AsyncDeployment``); ``Deployment`` is a thin sync facade that forwards every call
to the engine's loop running in a background thread (``_loop.LoopThread``): one implementation, never two
hand-copied twins. Both always reap every process they started, on exceptions and Ctrl-C too.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from emulators.clock import Clock
from emulators.errors import ConfigError, DeploymentClosedError
from emulators.pattern import Emulator
from emulators.pool import Pool
from emulators.profiles import Profile
from emulators.records import Record, Result, Summary
from emulators.serverless import Serverless
from emulators.state import open_state_store

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


def _emulator(cfg: DeployConfig) -> Emulator:
    run_id = uuid.uuid4().hex[:10]
    clock = Clock(cfg.time_scale)
    pool = Pool(agent=cfg.agent, adapter=cfg.adapter, profile=cfg.profile, clock=clock, pattern=cfg.pattern,
                run_id=run_id, function_name=cfg.function_name, env=dict(cfg.env), keep_logs=cfg.keep_logs,
                llm=cfg.llm, llm_script=cfg.llm_script)
    try:
        state = open_state_store(cfg.state, pool.run_dir)
    except BaseException:
        import shutil

        shutil.rmtree(pool.run_dir, ignore_errors=True)
        raise
    return Serverless(pool, cfg.profile, clock, state)


class AsyncDeployment:
    """A running deployment, driven from asyncio."""

    def __init__(self, cfg: DeployConfig) -> None:
        self.config = cfg
        self._emulator = _emulator(cfg)
        self._tasks: dict[str, asyncio.Task[Record]] = {}
        self._events: dict[str, list[Any]] = {}
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

    async def start(self) -> AsyncDeployment:
        """Start the deployment (its runtime, provisioned instances, background loops)."""
        if not self._started:
            self._started = True
            try:
                await self._emulator.start()
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
        return await self._emulator.invoke(task, session_id)

    async def submit(self, task: Any, session_id: str | None = None, callback_url: str | None = None) -> str:
        """Start ``task`` in the background and return its id at once."""
        self._check_open()
        if callback_url is not None:
            raise ConfigError("callback_url webhooks come with the HTTP gateway; poll with status()/wait()")
        task_id = str(uuid.uuid4())
        events = self._events[task_id] = []
        self._tasks[task_id] = asyncio.create_task(
            self._emulator.invoke(task, session_id, on_event=events.append), name=f"task-{task_id}")
        return task_id

    def _task(self, task_id: str) -> asyncio.Task[Record]:
        try:
            return self._tasks[task_id]
        except KeyError:
            raise ConfigError(f"unknown task id {task_id!r}; use an id returned by submit()") from None

    async def status(self, task_id: str) -> TaskStatus:
        """State of a submitted task, with its result once finished."""
        t = self._task(task_id)
        if not t.done():
            return TaskStatus(task_id, "running")
        r = t.result()
        return TaskStatus(task_id, "succeeded" if r.ok else "failed", r)

    async def wait(self, task_id: str, timeout_s: float | None = None) -> Record:
        """Wait (wall seconds) for a submitted task's result."""
        t = self._task(task_id)
        return await asyncio.wait_for(asyncio.shield(t), timeout_s)

    async def stream(self, task: Any, session_id: str | None = None) -> AsyncIterator[Any]:
        """Yield the agent's progress events as they come, then the final Record."""
        self._check_open()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        call = asyncio.create_task(self._emulator.invoke(task, session_id, on_event=queue.put_nowait))
        try:
            while not (call.done() and queue.empty()):
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait((getter, call), return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    yield getter.result()
                else:
                    getter.cancel()
            yield call.result()
        finally:
            if not call.done():
                call.cancel()

    def records(self) -> list[Record]:
        """Every invocation so far, one Record each."""
        return list(self._emulator.records)

    def summary(self) -> Summary:
        """Counts per outcome, latency percentiles, cold starts and cost, from the records."""
        return self._emulator.summary()

    async def aclose(self) -> None:
        """Stop every instance and the runtime; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for t in self._tasks.values():
            t.cancel()
        await self._emulator.close()

    async def __aenter__(self) -> AsyncDeployment:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.shield(self.aclose())


def adeploy(agent: str | Path | Callable[..., Any], pattern: str = "serverless",
            profile: str | Path | Profile | None = None, time_scale: float = 1.0, **kwargs: Any) -> AsyncDeployment:
    """An AsyncDeployment; use ``async with harness.adeploy(...) as d``. Arguments as ``deploy``."""
    return AsyncDeployment(build_config(agent, pattern, profile, time_scale, **kwargs))


class Deployment:
    """The sync facade: every method runs the AsyncDeployment's coroutine on a background event loop."""

    def __init__(self, cfg: DeployConfig) -> None:
        self._engine = LoopThread()
        self._closed = False
        try:
            self._async = self._engine.call(self._make, cfg)
            self._engine.call(self._async.start)
        except BaseException:
            self._engine.stop()
            raise
        # Reap on interpreter exit even if the caller never closes (the context manager is the normal way).
        self._finalizer = weakref.finalize(self, Deployment._finalize, self._engine, self._async)

    @staticmethod
    async def _make(cfg: DeployConfig) -> AsyncDeployment:
        return AsyncDeployment(cfg)

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

    def records(self) -> list[Record]:
        """Every invocation so far, one Record each."""
        return self._async.records()

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


def deploy(agent: str | Path | Callable[..., Any], pattern: str = "serverless",
           profile: str | Path | Profile | None = None, time_scale: float = 1.0, *, adapter: str = "auto",
           state: str | None = None, env: dict[str, str] | None = None, keep_logs: bool = False,
           function_name: str | None = None, llm: str = "sim", llm_script: str | Path | None = None,
           **overrides: Any) -> Deployment:
    """Deploy ``agent`` under ``pattern`` with ``profile``; use as ``with harness.deploy(...) as d:``.

    ``overrides`` are profile fields (``timeout_s=10``, ``memory_mb=256``, ``max_concurrency=2``...).
    ``llm="sim"`` (default) starts the LLM simulator the instances' SDKs are pointed at (``llm_script``:
    a TOML script of scripted answers); ``llm="off"`` starts none; ``llm="https://..."`` starts the
    metering proxy to that OpenAI/Anthropic-compatible upstream (same limits, faults and metering).
    Raises ConfigError for a bad agent, pattern, profile or field before starting anything.
    """
    cfg = build_config(agent, pattern, profile, time_scale, adapter=adapter, state=state, env=env,
                       keep_logs=keep_logs, function_name=function_name, llm=llm, llm_script=llm_script,
                       **overrides)
    return Deployment(cfg)
