"""The task registry: one machinery behind ``POST /tasks``, SSE, WebSockets and ``Deployment.submit/stream``.

A task is one background run of the agent through the pattern's ``Emulator.invoke`` (the registry knows
nothing else about the pattern). It keeps its state (``queued`` -> ``running`` -> ``succeeded``/``failed``),
every progress event the agent emitted (in order, each with its index as the event id), and the final
``Record``. Followers (SSE, WebSocket, ``stream()``) read from any index on and are woken on each change,
so a client that reconnects with ``Last-Event-ID`` misses nothing.

Background runs behave as the platform's asynchronous invocation where ``platform-facts.md`` has numbers:
a smaller payload limit (``ASYNC_REQUEST_LIMITS``) and retries of a failed run after fixed delays
(``ASYNC_RETRY_DELAYS_S``). Where it has none, no retry is emulated; ``GatewayOptions.async_retry_delays_s``
sets them explicitly.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ..clock import Clock
from ..errors import ConfigError
from ..pattern import Emulator
from ..records import Record, Result

__all__ = [
    "ASYNC_REQUEST_LIMITS",
    "ASYNC_RETRY_DELAYS_S",
    "Task",
    "TaskRegistry",
    "TaskState",
    "async_request_limit",
    "async_retry_delays",
    "result_json",
]

log = logging.getLogger("emulators.gateway")

TaskState = Literal["queued", "running", "succeeded", "failed"]

# Request size limits of asynchronous invocation, bytes, by profile name.
ASYNC_REQUEST_LIMITS: dict[str, int] = {
    "aws-lambda": 1_048_576,  # async payload 1 MB (was 256 KB) (A2, A23)
    "netlify-functions": 262_144,  # background functions 256 KB (N1)
}
# Delays (platform seconds) before each retry of a failed background run, by profile name.
ASYNC_RETRY_DELAYS_S: dict[str, tuple[float, ...]] = {
    "netlify-functions": (60.0, 120.0),  # background: retries after 1 min, then 2 min (N2)
    "aws-lambda": (60.0, 120.0),  # async: 2 retries by default, after 1 min then 2 min (A54, A55)
}
# Outcomes a retry cannot fix: the platform refuses them the same way every time.
_NOT_RETRIED = frozenset({"payload_too_large"})


def async_request_limit(profile_name: str, sync_limit: int | None) -> int | None:
    """The async request limit of a profile: its own figure where known, else the sync one."""
    return ASYNC_REQUEST_LIMITS.get(profile_name, sync_limit)


def async_retry_delays(profile_name: str) -> tuple[float, ...]:
    """Retry delays of a failed background run on this profile (empty where platform-facts.md has none)."""
    return ASYNC_RETRY_DELAYS_S.get(profile_name, ())


_RESULT_FIELDS = tuple(f.name for f in dataclasses.fields(Result))  # once: fields() costs ~5 us a call


def result_json(result: Result) -> dict[str, Any]:
    """The wire form of a Result: its own fields only (not the Record's extras), cost with its total."""
    fields = result.__dict__  # a frozen dataclass without slots: its fields are its __dict__
    out = {name: fields[name] for name in _RESULT_FIELDS}
    out["cost"] = result.cost.to_json()
    return out


class Deliverer(Protocol):
    """Posts a finished task to its callback URL (the webhook sender)."""

    def check(self, url: str) -> str: ...
    async def deliver(self, task: Task) -> None: ...


@dataclass(eq=False)
class Task:
    """One background run: state, progress events so far, the result once finished."""

    task_id: str
    session_id: str | None = None
    callback_url: str | None = None
    state: TaskState = "queued"
    events: list[Any] = field(default_factory=list)
    result: Record | None = None
    attempts: int = 0
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    webhook: dict[str, Any] | None = None
    runner: asyncio.Task[None] | None = field(default=None, repr=False)
    _changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def done(self) -> bool:
        """True once the result is in."""
        return self._done.is_set()

    def add_event(self, event: Any) -> None:
        """Record one progress event (the ``on_event`` hook of ``Emulator.invoke``) and wake followers."""
        self.events.append(event)
        self.notify()

    def notify(self) -> None:
        """Wake everyone waiting for a change: they hold the old event, a new one serves the next change."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def finish(self, record: Record) -> None:
        """Set the result and the final state, and wake followers and waiters."""
        self.result = record
        self.state = "succeeded" if record.ok else "failed"
        self.finished_at = time.time()
        self._done.set()
        self.notify()

    async def wait(self, timeout_s: float | None = None) -> Record:
        """The result, waiting up to ``timeout_s`` wall seconds (TimeoutError past it)."""
        await asyncio.wait_for(self._done.wait(), timeout_s)
        assert self.result is not None
        return self.result

    async def follow(self, after: int = -1,
                     keepalive_s: float | None = None) -> AsyncGenerator[tuple[int, str, Any], None]:
        """Yield ``(id, "progress", event)`` for every event after id ``after``, then ``(id, "result", Record)``.

        Ids are stable: event i has id i and the result the next id, so a client resumes from the last id it
        saw. With ``keepalive_s``, yields ``(-1, "keepalive", None)`` whenever that many wall seconds pass
        without a change, so a stream can send a keep-alive (and learn that its client left).
        """
        i = max(after + 1, 0)
        while True:
            changed = self._changed  # taken before reading, so a change after the read still wakes us
            while i < len(self.events):
                yield i, "progress", self.events[i]
                i += 1
            if self.done:
                if i == len(self.events):  # a client that already saw the result gets nothing more
                    yield i, "result", self.result
                return
            try:
                await asyncio.wait_for(changed.wait(), keepalive_s)
            except TimeoutError:
                yield -1, "keepalive", None

    def to_json(self) -> dict[str, Any]:
        """The wire form of ``GET /tasks/{id}`` (and of the webhook body)."""
        out: dict[str, Any] = {
            "task_id": self.task_id, "state": self.state, "events": list(self.events),
            "result": None if self.result is None else result_json(self.result), "attempts": self.attempts,
        }
        if self.webhook is not None:
            out["webhook"] = dict(self.webhook)
        return out


class TaskRegistry:
    """Every task of one deployment, run through its emulator."""

    def __init__(self, emulator: Emulator, clock: Clock, *, retry_delays_s: Sequence[float] = (),
                 deliverer: Deliverer | None = None, retention_s: float = 3600.0,
                 max_finished: int = 10_000) -> None:
        self.emulator = emulator
        self.clock = clock
        self.retry_delays_s = tuple(retry_delays_s)
        self.deliverer = deliverer
        self.retention_s = retention_s
        self.max_finished = max_finished
        self.tasks: dict[str, Task] = {}  # running ones and finished ones not yet expired
        self._finished: deque[tuple[float, Task]] = deque()  # (platform time it finished, task), oldest first
        self._unfinished: set[Task] = set()
        self._ended = {"succeeded": 0, "failed": 0}  # every task that ever finished, expired ones too
        self._deliveries: set[asyncio.Task[None]] = set()
        self._closed = False

    def submit(self, task: Any, session_id: str | None = None, callback_url: str | None = None, *,
               retries: bool = True) -> Task:
        """Start ``task`` in the background and return its Task at once.

        ``retries=False`` for the streaming paths: a sync stream is one attempt, as on the platform.
        """
        if self._closed:
            raise RuntimeError("the task registry is closed")
        if callback_url is not None and self.deliverer is None:
            raise ConfigError("callback_url needs a webhook sender; this registry has none")
        t = Task(task_id=str(uuid.uuid4()), session_id=session_id, callback_url=callback_url)
        if callback_url is not None:
            t.webhook = {"url": callback_url, "attempts": 0, "delivered": False, "last_status": None}
        self.expire()
        self.tasks[t.task_id] = t
        self._unfinished.add(t)
        delays = self.retry_delays_s if retries else ()
        t.runner = asyncio.create_task(self._run(t, task, delays), name=f"task-{t.task_id}")
        return t

    def find(self, task_id: str) -> Task | None:
        """The task with this id, or None for an unknown or expired one."""
        self.expire()
        return self.tasks.get(task_id)

    def get(self, task_id: str) -> Task:
        """The task with this id; ConfigError for an unknown or expired id."""
        t = self.find(task_id)
        if t is None:
            raise ConfigError(f"unknown task id {task_id!r}: use an id returned by submit(); a finished task is "
                              f"kept for {self.retention_s:g} platform seconds (at most the latest "
                              f"{self.max_finished:,} finished ones)")
        return t

    def expire(self) -> None:
        """Forget finished tasks past the retention period or beyond the most kept (a long run's memory)."""
        done = self._finished
        if not done:
            return
        cutoff = self.clock.now() - self.retention_s
        while done and (done[0][0] <= cutoff or len(done) > self.max_finished):
            _, t = done.popleft()
            self.tasks.pop(t.task_id, None)

    def counts(self) -> dict[str, int]:
        """Number of tasks in each state (finished: every one so far, expired ones included)."""
        out = dict.fromkeys(("queued", "running"), 0)
        for t in self._unfinished:
            out[t.state] += 1
        return {**out, **self._ended}

    def _finish(self, t: Task, record: Record) -> None:
        t.finish(record)
        self._unfinished.discard(t)
        self._ended[t.state] += 1
        self._finished.append((self.clock.now(), t))
        self.expire()

    async def _run(self, t: Task, task: Any, delays: tuple[float, ...]) -> None:
        try:
            while True:
                t.attempts += 1
                t.state = "running"
                t.notify()
                record = await self.emulator.invoke(task, t.session_id, on_event=t.add_event)
                if record.ok or record.outcome in _NOT_RETRIED or t.attempts > len(delays):
                    break
                # The platform puts a failed async event back in its queue and runs it again later.
                t.state = "queued"
                t.notify()
                await self.clock.sleep(delays[t.attempts - 1])
            if t.attempts > 1:
                record = dataclasses.replace(record, attempts=t.attempts)
        except asyncio.CancelledError:
            # The deployment is closing: end followers with a result rather than leave them waiting.
            self._finish(t, _unfinished(t, "the deployment closed before the task finished"))
            raise
        except Exception as exc:  # a harness bug must not leave the task "running" forever
            log.exception("task %s failed inside the harness", t.task_id)
            self._finish(t, _unfinished(t, f"the harness failed running this task: {exc!r}"))
            return
        self._finish(t, record)
        if t.callback_url is not None and self.deliverer is not None and not self._closed:
            d = asyncio.create_task(self.deliverer.deliver(t), name=f"webhook-{t.task_id}")
            self._deliveries.add(d)
            d.add_done_callback(self._deliveries.discard)

    async def close(self) -> None:
        """Cancel the runs and webhook deliveries still in progress; safe to call twice."""
        self._closed = True
        pending = [t.runner for t in self._unfinished if t.runner is not None and not t.runner.done()]
        pending += list(self._deliveries)
        for p in pending:
            p.cancel()
        for p in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await p


def _unfinished(t: Task, why: str) -> Record:
    return Record(ok=False, outcome="lost", error=why, attempts=t.attempts, session_id=t.session_id,
                  started_at=t.created_at, ended_at=time.time(), events=tuple(t.events))
