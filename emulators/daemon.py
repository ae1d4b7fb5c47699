"""The daemon pattern: a queue, long-lived supervised workers, retries, a dead-letter queue and checkpoints.

Work goes on a queue (``emulators.queues``: memory, Redis, SQS, RabbitMQ); ``workers`` long-lived instances
(the shared runtime) take one task at a time. Its point is reliability, so the rules are:

- at-least-once: a task's message is acked only once its outcome is written to the state store; while the
  agent works, a heartbeat extends the message's visibility, so a slow task is not handed out twice;
- a failed attempt (``agent_error``, ``crash``, ``oom``, a deadline ``timeout``) is retried after an
  exponential back-off with jitter; after ``max_receives`` deliveries the message goes to the dead-letter
  queue and the task ends ``dead_lettered`` with every attempt's error;
- a worker that died is restarted by its supervisor (``supervisor.RestartPolicy``: systemd semantics);
- checkpoints are keyed by task, so a redelivered task resumes from its last ``ctx.checkpoint``;
- idempotency: a delivery of a task whose record is already final does not run the agent again; its
  record says ``trigger="duplicate"``;
- optional KEDA-style scaling: ``ceil(queue depth / scale_target)`` workers within
  [``min_workers``, ``max_workers``], polled every ``scale_interval_s``.

Records: one per task (``trigger="invoke"``), written when it ends: ``latency_ms`` is platform time from
submit to the end (queue wait and back-off included): on the virtual clock the span between the two, on a
scaled clock computed (``_TaskTime``: the harness's own dispatch 1:1, each attempt at its platform duration,
a back-off at its length, a wait for a busy worker scaled), ``duration_ms`` and the LLM
figures sum every attempt, ``attempts`` counts deliveries. Each attempt is also kept in ``attempts_log``.
Cost: a task's record carries its own queue requests (its send, one request per started
``queue_request_chunk_bytes``, and the delete or release after each delivery); the rest (receives, visibility
extensions, depth polls) and worker-hours (every worker, busy or idle, while it exists) are ``fixed_cost``.
A profile that prices invocations (``billing.bills_invocations``: a Lambda function consuming SQS) also
prices each call as its platform does: the billed duration at ``memory_mb`` plus the request price, a worker's
init with its first call where the platform bills init; a batch's price is shared by its messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from .billing import bills_invocations, queue_cost, queue_requests
from .clock import Clock
from .daemon_records import duplicate_record, remote_record, task_record
from .errors import BackendUnavailableError, ConfigError, InstanceStartError, MessageTooLargeError
from .jsonfast import dumps
from .pattern import OnEvent, finish_record, new_ids, rejected_record, traced
from .pool import Pool
from .profiles import Profile
from .queues import DEFAULT_MAX_BYTES, MemoryQueue, Message, Queue, open_queue
from .records import Record, Summary
from .runtime.instance import Instance, InstanceFailure, StartInfo
from .sqsbatch import batch_failures, batch_share, failed_attempt, sqs_event
from .state import MemoryStateStore, SQLiteStateStore, StateStore
from .store import open_log
from .supervisor import Inbox, RestartPolicy, retry_delay
from .tracing import task_trace_id

__all__ = ["Daemon", "shared_queue"]

T = TypeVar("T")
_NO_DEADLINE_S = 10 * 365 * 86400.0  # daemons usually run without a per-task limit
_FINAL = ("succeeded", "dead_lettered")
_MAX_RECEIVE = 10  # messages one receive returns at most (SQS's limit; every queue here keeps it)
_GROUP_COMMIT_S = 0.005  # the embedded SQLite state store commits its writes together every 5 ms (group_commits)


class _TaskTime:
    """A task's platform time, computed rather than read off ``clock.now()``.

    On a scaled clock ``now()`` is wall time over ``time_scale``: the harness's own millisecond of dispatch
    would count as a platform second at 0.001. Here real time counts 1:1 (``real=True``), and the stretches
    that stand for emulated time are swapped for their platform length: an attempt for its duration, a
    back-off for its length, a wait for a worker to come free for its span over ``time_scale`` (it ends with
    another task's attempt). On the virtual clock (``now=clock.now``, scale 1) the spans are read off the
    timeline and the harness's own dispatch is left out (``real=False``), as ``finish_record`` leaves it out.
    """

    __slots__ = ("mark", "now", "platform_in", "real", "scale", "start", "wall_out")

    def __init__(self, scale: float, now: Callable[[], float] = time.monotonic, real: bool = True) -> None:
        self.scale = scale
        self.now = now
        self.real = real
        self.start = now()
        self.wall_out = 0.0  # wall seconds of the stretches swapped out
        self.platform_in = 0.0  # their platform length
        self.mark: float | None = None  # wall start of the stretch in progress

    def enter(self) -> None:
        """A stretch that stands for emulated time begins."""
        if self.mark is None:
            self.mark = self.now()

    def leave(self, platform_s: float | None = None) -> None:
        """It ends; it stands for ``platform_s`` (None: its wall time over ``time_scale``)."""
        if self.mark is None:
            return
        wall = self.now() - self.mark
        self.wall_out += wall
        self.platform_in += wall / self.scale if platform_s is None else platform_s
        self.mark = None

    def elapsed(self) -> float:
        """Platform seconds since submit."""
        real = self.now() - self.start - self.wall_out if self.real else 0.0
        return max(0.0, real + self.platform_in)


@dataclass
class _Pending:
    """A task submitted by this process: who waits for it and what its attempts produced."""

    submitted: float  # platform time (clock.now())
    session_id: str | None
    future: asyncio.Future[Record]
    on_event: OnEvent | None = None
    attempts: list[Record] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    timing: _TaskTime | None = None  # its platform time (latency), computed
    submitted_at: float = field(default_factory=time.time)  # wall clock (UNIX s), the task record's started_at
    backoff_s: float | None = None  # the back-off in progress (platform seconds)
    send_requests: int = 0  # the queue requests its send(s) were billed as (64 KB chunks on SQS)


@dataclass
class _Worker:
    """One worker slot: its supervisor state and the instance running in it."""

    index: int
    policy: RestartPolicy
    inbox: Inbox[Message | list[Message] | None] = field(default_factory=Inbox)  # a list: one SQS batch
    instance: Instance | None = None
    busy: bool = False
    retiring: bool = False
    up_since: float | None = None  # platform time its current instance started
    task: asyncio.Task[None] | None = None
    first_start: asyncio.Event = field(default_factory=asyncio.Event)  # its first start succeeded or failed


class Daemon:
    """A queue-driven daemon deployment of one agent."""

    pattern = "daemon"

    def __init__(self, pool: Pool, profile: Profile, clock: Clock, state: StateStore, *,
                 queue: Queue | None = None) -> None:
        self.pool = pool
        self.profile = profile
        self.clock = clock
        self.state = state
        self.records = open_log(pool.pattern, profile.name, pool.run_id, pool.records_dir)
        # The latest attempts and duplicate deliveries (bounded: a long run's memory stays flat); the task
        # records, which sum them, are all in the store; attempts_total counts every attempt.
        self.attempts_log: deque[Record] = deque(maxlen=10_000)
        self.attempts_total = 0
        self.queue: Queue | None = queue
        self.queue_requests = 0
        self.queue_requests_in_records = 0  # of those, the ones the task records carry (sends, deletes)
        # A profile with per-invocation prices bills each call (Lambda on SQS), and a worker's first call
        # is its cold start: instance id -> its init's platform ms, until that call bills it.
        self._per_call = bills_invocations(profile)
        self._unbilled_init: dict[str, float] = {}
        self.worker_seconds = 0.0  # platform seconds of worker uptime, closed intervals
        self.timeline: list[tuple[float, int]] = []  # (platform time, workers up)
        self._workers: list[_Worker] = []
        self._pending: dict[str, _Pending] = {}
        self._task_of: dict[str, str] = {}  # invocation id -> task id (checkpoints are per task)
        self._local: set[str] = set()  # tasks a worker of this process is handling right now
        # Queue and store clients are blocking; every backend here is thread-safe (pika behind a lock).
        self._io = ThreadPoolExecutor(max_workers=8, thread_name_prefix=f"daemon-io-{pool.run_id}")
        self._wake = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._releases: set[asyncio.Task[None]] = set()  # retries waiting out their back-off (virtual clock)
        self._closing = False
        self._inline = False  # set at start: call embedded backends directly, not through the I/O threads
        self._rng = random.Random(profile.seed)
        self._started = 0.0
        # An SQS event source hands each worker up to batch_size messages per invocation (sqsbatch.py).
        self._batch = profile.batch_size if profile.event_source == "sqs" else 0
        if self._batch > _MAX_RECEIVE:
            raise ConfigError(f"batch_size {profile.batch_size} is over {_MAX_RECEIVE}, the most one SQS receive "
                              f"returns; larger batches need a batching window, which is not emulated")
        pool.on_checkpoint = self._checkpoint

    # ---- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the queue, start the workers, the dispatcher and (if set) the scaler."""
        p = self.profile
        if self.queue is None:
            url = p.queue or None
            self.queue = await self._call(
                open_queue, url, run_id=_shared_run_id(url, self.pool.run_id),
                visibility_s=self._visibility_wall(), max_receives=p.max_receives,
                max_bytes=p.request_limit_bytes or DEFAULT_MAX_BYTES)
        self._inline = self._embedded()
        if self._inline and isinstance(self.state, SQLiteStateStore):
            self.state.group_commits(asyncio.get_running_loop(), _GROUP_COMMIT_S)
        await self.pool.open()
        self._started = self.clock.now()
        initial = p.workers if not p.scale_target else max(p.min_workers, min(p.workers, p.max_workers))
        workers = [self._add_worker() for _ in range(initial)]
        # The deployment is up once its workers are: a task submitted right away must not wait (and be
        # billed in platform time) for process starts that are the harness's real time.
        await asyncio.gather(*(w.first_start.wait() for w in workers))
        if workers and all(w.instance is None for w in workers):
            info = getattr(self, "_last_start_error", None)
            raise InstanceStartError(f"no daemon worker could start: {info.error if info else 'unknown error'}")
        self._loops.append(asyncio.create_task(self._dispatch(), name="daemon-dispatch"))
        self._loops.append(asyncio.create_task(self._watch_remote(), name="daemon-remote-results"))
        if p.scale_target:
            self._loops.append(asyncio.create_task(self._scale(), name="daemon-scale"))

    async def close(self) -> None:
        """Stop taking work, let running tasks finish within ``shutdown_grace_s``, then stop everything.

        A task still running after the grace period is released (its message made visible again at
        once), so a durable queue hands it to the next worker that comes: finished or released, never lost.
        """
        self._closing = True
        self._wake.set()
        for loop in [*self._loops, *self._releases]:
            loop.cancel()
        for loop in [*self._loops, *self._releases]:
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        for w in self._workers:
            w.inbox.put_nowait(None)
        running = [w.task for w in self._workers if w.task is not None]
        if running:
            # The grace period is platform time; asyncio.wait never cancels the workers it waits for.
            with contextlib.suppress(TimeoutError):
                await self.clock.wait(asyncio.wait(running), self.profile.shutdown_grace_s)
            late = [t for t in running if not t.done()]
            for t in late:
                t.cancel()
            for t in late:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
        for w in self._workers:
            self._down(w)
        try:
            await self.pool.close()
        finally:
            for pending in self._pending.values():
                if not pending.future.done():
                    pending.future.cancel()
            if self.queue is not None:
                with contextlib.suppress(Exception):
                    await self._call(self.queue.close)
            self._io.shutdown(wait=True, cancel_futures=False)
            self.state.close()

    # ---- submitting ------------------------------------------------------------------------------------

    async def submit(self, task: Any, session_id: str | None = None, *, task_id: str | None = None,
                     on_event: OnEvent | None = None) -> str:
        """Put ``task`` on the queue and return its id (``task_id`` makes a resubmission idempotent)."""
        assert self.queue is not None, "start() the daemon first"
        fresh = task_id is None  # an id made here is new: no record can exist for it
        task_id = task_id or new_ids()[0]
        body = {"task": task, "session_id": session_id, "submitted": self.clock.now()}
        size = len(json.dumps(body, allow_nan=False).encode())  # a ValueError/TypeError here names the bad value
        fut: asyncio.Future[Record] = asyncio.get_running_loop().create_future()
        pending = self._pending.setdefault(task_id, _Pending(body["submitted"], session_id, fut, on_event))
        if pending.timing is None:
            pending.timing = _TaskTime(self.clock.scale) if not self.clock.virtual else \
                _TaskTime(1.0, now=self.clock.now, real=False)
            if not self._idle():
                pending.timing.enter()  # every worker is busy: it waits for one to come free
        def enqueue() -> None:  # one trip to the I/O threads: each hop costs a context switch
            if fresh or self.state.get_task(task_id) is None:
                self.state.put_task(task_id, {"status": "queued", "attempts": 0})
            assert self.queue is not None
            self.queue.send(task_id, body)

        sends = queue_requests(size, self.profile)  # per started chunk where billed so (SQS)
        self.queue_requests += sends
        pending.send_requests += sends
        await self._call(enqueue)
        self._wake.set()
        return task_id

    async def invoke(self, task: Any, session_id: str | None = None, *, on_event: OnEvent | None = None) -> Record:
        """Submit and wait for the task's final record (ok, or dead_lettered after its retries)."""
        t0, started_at = time.monotonic(), time.time()
        try:
            task_id = await self.submit(task, session_id, on_event=on_event)
        except (TypeError, ValueError) as exc:
            return self._add(rejected_record(
                pattern=self.pattern, profile=self.profile, outcome="agent_error", started_at=started_at,
                session_id=session_id, wall_s=time.monotonic() - t0,
                error=f"the task is not JSON-serializable ({exc}); pass a dict of JSON values"))
        except MessageTooLargeError as exc:
            return self._add(rejected_record(
                pattern=self.pattern, profile=self.profile, outcome="payload_too_large", started_at=started_at,
                session_id=session_id, wall_s=time.monotonic() - t0, error=str(exc)))
        return await asyncio.shield(self._pending[task_id].future)

    def summary(self) -> Summary:
        """Task counts per final outcome, latency, and worker-hour plus queue cost."""
        return self.records.tally.summary(pattern=self.pattern, profile=self.profile.name,
                         fixed_cost_usd=self.fixed_cost())

    async def queue_depth(self) -> int:
        """Messages waiting on the queue now (the broker's approximate count); 0 before start."""
        if self.queue is None:
            return 0
        return int(await self._call(self.queue.depth))

    def fixed_cost(self) -> float:
        """Worker-hours (busy or idle) at the profile's price, plus the queue requests no task record carries."""
        now = self.clock.now()
        up = self.worker_seconds + sum(now - w.up_since for w in self._workers if w.up_since is not None)
        p = self.profile
        queue_usd = queue_cost(self.queue_requests - self.queue_requests_in_records, p)
        return up / 3600.0 * p.price_worker_hour_usd + queue_usd

    # ---- workers ---------------------------------------------------------------------------------------

    def _add_worker(self) -> _Worker:
        p = self.profile
        w = _Worker(len(self._workers), RestartPolicy(p.restart, p.restart_sec, p.start_limit_burst,
                                                       p.start_limit_interval_s))
        self._workers.append(w)
        w.task = asyncio.create_task(self._supervise(w), name=f"daemon-worker-{w.index}")
        return w

    def _up(self, w: _Worker) -> None:
        w.up_since = self.clock.now()
        self.timeline.append((w.up_since, sum(1 for x in self._workers if x.up_since is not None)))

    def _down(self, w: _Worker) -> None:
        if w.up_since is not None:
            now = self.clock.now()
            self.worker_seconds += now - w.up_since
            w.up_since = None
            self.timeline.append((now, sum(1 for x in self._workers if x.up_since is not None)))

    async def _supervise(self, w: _Worker) -> None:
        """Keep one worker running: start it, serve its inbox, restart it as the policy says."""
        while not self._closing and not w.retiring:
            if not w.policy.may_start(self.clock.now()):
                w.first_start.set()
                self._fail_waiters_if_no_worker()
                return
            inst, info = await self.pool.start_instance()
            if isinstance(info, InstanceFailure):
                self._last_start_error = info
                w.first_start.set()
                delay = w.policy.restart_after(failed=True)
                if delay is None:
                    self._fail_waiters_if_no_worker()
                    return
                await self.clock.sleep(delay)
                continue
            w.instance = inst
            if self._per_call and isinstance(info, StartInfo):
                self._unbilled_init[inst.id] = info.init_ms
            self._up(w)
            w.first_start.set()
            self._wake.set()
            try:
                failed = await self._serve(w, inst)
            finally:
                self._down(w)
                w.instance = None
                self._unbilled_init.pop(inst.id, None)
                if inst.alive:
                    await self.pool.retire(inst)
                else:
                    await self.pool.discard_dead(inst)
            delay = w.policy.restart_after(failed=failed)
            if delay is None or self._closing or w.retiring:
                return
            await self.clock.sleep(delay)

    async def _serve(self, w: _Worker, inst: Instance) -> bool:
        """Run the messages the dispatcher hands this worker; True if the instance died (a failure)."""
        died = asyncio.ensure_future(inst.wait_closed())
        try:
            while True:
                self._wake.set()  # idle: the dispatcher may have work for us
                # An idle worker can die too (killed from outside): wait for work or for its death.
                if not await w.inbox.wait(died):
                    return True
                msg = w.inbox.get_nowait()
                if msg is None:
                    return False
                w.busy = True
                try:
                    if isinstance(msg, list):
                        await self._handle_batch(inst, msg)
                    else:
                        await self._handle(inst, msg)
                finally:
                    w.busy = False
                if not inst.alive:
                    return True
                if self._closing or w.retiring:
                    return False
        finally:
            died.cancel()

    def _idle(self) -> list[_Worker]:
        return [w for w in self._workers if w.instance is not None and w.instance.ready and not w.busy
                and w.inbox.empty() and not w.retiring]

    async def _dispatch(self) -> None:
        """Receive as many messages as there are idle workers and hand them out."""
        assert self.queue is not None
        poll_wall = max(0.002, min(0.05, self.clock.to_wall(1.0)))
        vis_wall = self._visibility_wall()
        while not self._closing:
            idle = self._idle()
            if not idle:
                self._wake.clear()
                await self._wake.wait()
                continue
            self.queue_requests += 1
            try:
                want = min(len(idle) * max(1, self._batch), _MAX_RECEIVE)
                got = await self._call(self.queue.receive, want, visibility_s=vis_wall)
            except Exception:
                # The broker went away: back off and try to reconnect; nothing is acked meanwhile, so
                # nothing is lost (the messages come back after their visibility timeout). The outage is
                # real time: the clock is held through it.
                with self.clock.busy():
                    await asyncio.sleep(poll_wall * 10)
                    with contextlib.suppress(Exception):
                        await self._call(self.queue.reconnect, 5.0)
                continue
            if not got:
                # A local submit wakes us at once; other producers (harness worker) are seen on the poll.
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), poll_wall)
                continue
            if self._batch:  # Lambda's poller: up to batch_size messages per invocation
                batches = [got[i:i + self._batch] for i in range(0, len(got), self._batch)]
                for worker, batch in zip(idle, batches, strict=False):
                    worker.busy = True
                    worker.inbox.put_nowait(batch)
                continue
            for worker, message in zip(idle, got, strict=False):
                worker.busy = True
                worker.inbox.put_nowait(message)

    # ---- one delivery ----------------------------------------------------------------------------------

    def _begin(self, inst: Instance, msg: Message, call: dict[str, Any]) -> Callable[[], dict[str, Any]]:
        """Blocking work before a delivery: read the task's record, mark it running, load what it resumes from."""
        task_id, session_id = msg.id, msg.body.get("session_id")

        def begin() -> dict[str, Any]:
            known = self.state.get_task(task_id) or {}
            if known.get("status") in _FINAL:
                return known
            self.state.put_task(task_id, {**known, "status": "running", "attempts": msg.receive_count,
                                          "worker": inst.id})
            call["checkpoints"] = self.state.get_checkpoints(task_id)
            if session_id is not None:
                call["state"] = self.state.get_state(session_id)
            return known

        return begin

    async def _handle(self, inst: Instance, msg: Message) -> None:
        assert self.queue is not None
        task_id = msg.id
        call: dict[str, Any] = {"session_id": msg.body.get("session_id")}
        self._local.add(task_id)
        try:
            await self._run_delivery(inst, msg, self._begin(inst, msg, call), call, self._pending.get(task_id))
        finally:
            self._local.discard(task_id)

    async def _handle_batch(self, inst: Instance, msgs: list[Message]) -> None:
        """One invocation for a batch of SQS messages; each message then settles by Lambda's rules."""
        live: list[tuple[Message, dict[str, Any], _Pending | None]] = []
        for msg in msgs:
            self._local.add(msg.id)
            known: dict[str, Any] = await self._must(self._begin(inst, msg, {"session_id": None}))
            if known.get("status") in _FINAL:
                await self._ack(msg)
                self.attempts_log.append(duplicate_record(msg.id, known, msg.receive_count, pattern=self.pattern,
                                                          profile=self.profile.name))
                continue
            live.append((msg, known, self._pending.get(msg.id)))
        try:
            if live:
                await self._run_batch(inst, live)
        finally:
            for msg in msgs:
                self._local.discard(msg.id)

    async def _run_batch(self, inst: Instance, live: list[tuple[Message, dict[str, Any], _Pending | None]]) -> None:
        for _, _, pending in live:  # each task's wait before this attempt, as in _run_delivery
            if pending is not None and pending.timing is not None:
                pending.timing.leave(pending.backoff_s)
                pending.backoff_s = None
                pending.timing.enter()
        msgs = [m for m, _, _ in live]
        inv_id, trace_id = new_ids()[0], task_trace_id(msgs[0].id)
        self._task_of[inv_id] = msgs[0].id  # checkpoints of a batch belong to its first message
        raw = json.dumps(sqs_event(msgs, self.queue_name), separators=(",", ":")).encode()
        attempt = await self._attempt(inst, msgs, inv_id, trace_id, {"session_id": None}, raw, None)
        self.attempts_log.append(attempt)
        self.attempts_total += 1
        failed, why = batch_failures(attempt, [m.id for m in msgs], self.profile.report_batch_item_failures)
        for msg, known, pending in live:
            if pending is not None and pending.timing is not None:
                pending.timing.leave(attempt.duration_ms / 1000.0)
            mine = failed_attempt(attempt, why or "") if msg.id in failed else attempt
            mine = batch_share(mine, len(live), first=msg is live[0][0])
            await self._settle(msg.id, msg.body, msg, mine, known)

    @property
    def queue_name(self) -> str:
        """The queue's name, as an SQS event's ARN shows it."""
        return f"harness-{self.pool.run_id}"

    async def _run_delivery(self, inst: Instance, msg: Message, begin: Any, call: dict[str, Any],
                            pending: _Pending | None) -> None:
        task_id, body = msg.id, msg.body
        known: dict[str, Any] = await self._must(begin)
        if known.get("status") in _FINAL:
            await self._ack(msg)
            self.attempts_log.append(duplicate_record(task_id, known, msg.receive_count, pattern=self.pattern,
                                                      profile=self.profile.name))
            return
        ttime = pending.timing if pending is not None else None
        if pending is not None and ttime is not None:  # the wait before this attempt (busy workers, a back-off)
            ttime.leave(pending.backoff_s)
            pending.backoff_s = None
            ttime.enter()  # the attempt stands for its platform duration
        inv_id, trace_id = new_ids()[0], task_trace_id(task_id)  # attempts share the task's trace
        self._task_of[inv_id] = task_id
        raw = dumps(body.get("task"))  # the task was checked as JSON when it was submitted
        attempt = await self._attempt(inst, [msg], inv_id, trace_id, call, raw,
                                      pending.on_event if pending is not None else None)
        if ttime is not None:
            ttime.leave(attempt.duration_ms / 1000.0)
        self.attempts_log.append(attempt)
        self.attempts_total += 1
        await self._settle(task_id, body, msg, attempt, known)

    async def _attempt(self, inst: Instance, msgs: list[Message], inv_id: str, trace_id: str,
                       call: dict[str, Any], raw: bytes, on_event: OnEvent | None) -> Record:
        """One delivery of ``msgs`` (one message, or an SQS batch) to ``inst``, their visibility kept up; its
        attempt record (the session's state written back when it changed)."""
        # The first heartbeat is due after a third of the visibility timeout: a timer until then, not a task
        # (most tasks end before it, and a task created and cancelled per delivery is on every warm path).
        beats: list[asyncio.Task[None]] = []
        first_beat = self.clock.call_later(
            self.profile.visibility_timeout_s / 3,
            lambda: beats.extend(asyncio.create_task(self._heartbeat(m)) for m in msgs))
        t0, started_at = time.monotonic(), time.time()
        try:
            deadline = self.profile.task_deadline_s or _NO_DEADLINE_S
            result, events = await inst.call(inv_id, call, raw, deadline, on_event)
        finally:
            first_beat.cancel()
            for beat in beats:
                beat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beat
            self._task_of.pop(inv_id, None)
        session_id = call.get("session_id")
        if session_id is not None and "state" in result and result.get("outcome") == "ok":
            await self._call(self.state.put_state, session_id, result["state"])
        # The worker started before the task came: its init is billed with this call (where the platform
        # bills init) but is no part of the call's wall time (init_wall_ms 0) nor of the task's latency.
        init_ms = self._unbilled_init.pop(inst.id, None)
        return finish_record(
            pattern=self.pattern, profile=self.profile, result=result, events=events, invocation_id=inv_id,
            trace_id=trace_id, instance_id=inst.id, session_id=session_id, started_at=started_at,
            wall_s=time.monotonic() - t0, cold=init_ms is not None, init_ms=init_ms or 0.0, init_wall_ms=0.0,
            trigger="attempt", billable=self._per_call, attempts=max(m.receive_count for m in msgs),
            count_overhead=not self.clock.virtual)

    async def _settle(self, task_id: str, body: dict[str, Any], msg: Message, attempt: Record,
                      known: dict[str, Any]) -> None:
        """Write the attempt's consequence, then ack or release the message (in that order, one I/O trip)."""
        queue = self.queue
        assert queue is not None
        n = msg.receive_count
        errors = list(known.get("errors", []))
        if not attempt.ok:
            errors.append(f"attempt {n}: {attempt.outcome}: {attempt.error}")
        reason = f"{attempt.outcome}: {attempt.error}"[:500]
        if attempt.ok:
            record, outcome = {"status": "succeeded", "attempts": n, "result": attempt.output, "errors": errors,
                               "duration_ms": attempt.duration_ms, "input_tokens": attempt.input_tokens,
                               "output_tokens": attempt.output_tokens, "llm_usd": attempt.cost.llm_usd}, "ok"
        elif n >= self.profile.max_receives:
            record, outcome = {"status": "dead_lettered", "attempts": n, "errors": errors}, "dead_lettered"
        else:
            record, outcome = {"status": "retrying", "attempts": n, "errors": errors}, None
        record["worker"] = attempt.instance_id
        p = self.profile
        backoff = 0.0 if outcome else retry_delay(n, p.retry_backoff_s, p.retry_backoff_max_s, self._rng)
        # On the virtual clock the back-off is a platform deadline the worker waits out before it releases
        # the message (the broker's delay would be wall time); on a scaled clock the broker delays it.
        later = self.clock.virtual and backoff > 0
        delay = 0.0 if later else self.clock.to_wall(backoff)

        def write_then_settle() -> None:
            self.state.put_task(task_id, record)
            if outcome == "ok":
                queue.ack(msg)
            elif not later:  # the last delivery's nack moves it to the dead-letter queue
                queue.nack(msg, delay_s=delay, error=reason)

        self.queue_requests += 1
        await self._must(write_then_settle)
        if later:
            release = asyncio.create_task(self._release_after(msg, backoff, reason))
            self._releases.add(release)
            release.add_done_callback(self._releases.discard)
        pending = self._pending.get(task_id)
        if outcome is None and pending is not None and pending.timing is not None:
            pending.backoff_s = backoff
            pending.timing.enter()
        if outcome is not None:
            self._finish(task_id, body, attempt, n, errors, outcome)
        else:
            pending = self._pending.get(task_id)
            if pending is not None:
                pending.attempts.append(attempt)

    async def _release_after(self, msg: Message, backoff_s: float, reason: str) -> None:
        """Wait out a retry's back-off on the clock, then make the message visible again."""
        await self.clock.sleep(backoff_s)
        queue = self.queue
        assert queue is not None
        await self._must(lambda: queue.nack(msg, delay_s=0.0, error=reason))
        self._wake.set()

    def _finish(self, task_id: str, body: dict[str, Any], last: Record, attempts: int, errors: list[str],
                outcome: str) -> None:
        pending = self._pending.pop(task_id, None)
        submitted = pending.submitted if pending else float(body.get("submitted", self.clock.now()))
        latency_s = pending.timing.elapsed() if pending is not None and pending.timing is not None \
            else self.clock.now() - submitted
        tries = [*(pending.attempts if pending else []), last]
        # The queue requests that are this task's own: its send(s), and the delete or release that settled
        # each delivery it has a record of (_settle counted one each).
        own = len(tries) + (pending.send_requests if pending is not None else 0)
        self.queue_requests_in_records += own
        record = self._add(task_record(last, tries, task_id=task_id, outcome=outcome, attempts=attempts,
                                       errors=errors, latency_s=latency_s, queue_usd=queue_cost(own, self.profile),
                                       submitted_at=pending.submitted_at if pending is not None else None))
        if pending is not None and not pending.future.done():
            pending.future.set_result(record)

    async def _watch_remote(self) -> None:
        """Resolve tasks submitted here but run by another process's workers (``harness worker``).

        Their final record appears in the shared state store; tasks a local worker is handling are left to it.
        """
        period = max(0.02, min(0.5, self.clock.to_wall(1.0)))  # wall time: other processes live in it
        while True:
            await asyncio.sleep(period)
            waiting = [t for t, p in self._pending.items() if not p.future.done() and t not in self._local]
            if not waiting:
                continue
            with contextlib.suppress(Exception):
                stored = await self._call(lambda ids=waiting: {t: self.state.get_task(t) for t in ids})
                for task_id, rec in stored.items():
                    pending = self._pending.get(task_id)
                    if rec is None or rec.get("status") not in _FINAL or task_id in self._local or pending is None:
                        continue
                    del self._pending[task_id]
                    pending.future.set_result(self._add(remote_record(
                        task_id, rec, pattern=self.pattern, profile=self.profile.name,
                        session_id=pending.session_id, latency_s=self.clock.now() - pending.submitted)))

    async def _heartbeat(self, msg: Message) -> None:
        """Keep a message invisible while its task runs: extend now, then every third of the visibility timeout."""
        assert self.queue is not None
        vis = self.profile.visibility_timeout_s
        while True:
            self.queue_requests += 1
            with contextlib.suppress(Exception):
                await self._call(self.queue.extend, msg, self._visibility_wall())
            await self.clock.sleep(vis / 3)

    async def _ack(self, msg: Message) -> None:
        queue = self.queue
        assert queue is not None
        self.queue_requests += 1
        await self._must(lambda: queue.ack(msg))

    # ---- scaling, checkpoints, helpers ------------------------------------------------------------------

    async def _scale(self) -> None:
        """KEDA-style: workers = ceil(depth / scale_target) within [min_workers, max_workers]."""
        assert self.queue is not None
        p = self.profile
        while True:
            await self.clock.sleep(p.scale_interval_s)
            self.queue_requests += 1
            with contextlib.suppress(Exception):
                depth = await self._call(self.queue.depth)
                busy = sum(1 for w in self._workers if w.busy and not w.retiring)
                want = max(p.min_workers, min(p.max_workers, math.ceil((depth + busy) / p.scale_target)))
                live = [w for w in self._workers if not w.retiring and w.task is not None and not w.task.done()]
                for _ in range(want - len(live)):
                    self._add_worker()
                for w in sorted(live, key=lambda x: x.busy)[: max(0, len(live) - want)]:
                    w.retiring = True  # finishes its current task first (graceful)
                    w.inbox.put_nowait(None)

    def _checkpoint(self, invocation_id: str, key: str, value: Any) -> None:
        task_id = self._task_of.get(invocation_id, invocation_id)
        self.state.put_checkpoint(task_id, key, value)

    def _fail_waiters_if_no_worker(self) -> None:
        me = asyncio.current_task()
        if any(not w.policy.gave_up and w.task is not None and not w.task.done() and w.task is not me
               for w in self._workers):
            return
        info = getattr(self, "_last_start_error", None)
        error = ("every worker was given up by its supervisor (start limit reached)"
                 + (f"; last start failure: {info.error}" if info is not None else ""))
        for task_id, pending in list(self._pending.items()):
            if not pending.future.done():
                pending.future.set_result(self._add(Record(
                    ok=False, outcome="init_error", error=error + "; the task stays queued", invocation_id=task_id,
                    trace_id=uuid.uuid4().hex, pattern=self.pattern, profile=self.profile.name,
                    session_id=pending.session_id, started_at=time.time(), ended_at=time.time())))

    async def _must(self, fn: Any) -> Any:
        """A read or write the task cannot go on without: retried with back-off while its backend is down.

        A broker or store that went away mid-run (a restart, a network cut) costs time, not tasks: the
        worker waits here, reconnecting, and goes on when it is back. Only closing the daemon gives up.
        """
        delay = 0.05
        while True:
            try:
                return await self._call(fn)
            except BackendUnavailableError:
                if self._closing:
                    raise
                with self.clock.busy():  # the outage is real time: no jump over it
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    if self.queue is not None:
                        with contextlib.suppress(Exception):
                            await self._call(self.queue.reconnect, 1.0)

    def _embedded(self) -> bool:
        """The in-memory broker and a local store answer in microseconds: no thread hop needed for them."""
        return isinstance(self.queue, MemoryQueue) and isinstance(self.state, MemoryStateStore | SQLiteStateStore)

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a blocking queue or store call on the daemon's I/O threads."""
        if self._inline:
            return fn(*args, **kwargs)
        loop = asyncio.get_running_loop()
        with self.clock.busy():  # real I/O in flight: time does not jump over it
            return await loop.run_in_executor(self._io, lambda: fn(*args, **kwargs))

    def _visibility_wall(self) -> float:
        """The broker's visibility timeout in wall seconds.

        Scaled clock: the profile's, scaled. Virtual clock: the broker's timer is real time, which no
        longer maps onto platform time; heartbeats keep extending it while a task runs, so the profile's
        value, unscaled, only matters if this process dies (then the message comes back after it).
        """
        return self.clock.to_wall(self.profile.visibility_timeout_s)

    def _add(self, record: Record) -> Record:
        self.records.append(record)
        return traced(self.pool, record)


def shared_queue(url: str | None) -> bool:
    """Whether the URL names its queue (``?queue=`` or an SQS path): then it is shared, not per run."""
    if not url:
        return False
    parts = urlsplit(url)
    return "queue" in dict(parse_qsl(parts.query)) or (parts.scheme == "sqs" and bool(parts.path.strip("/")))


def _shared_run_id(url: str | None, run_id: str) -> str:
    """A shared queue's broker name has no per-run prefix, so every process finds it."""
    return "" if shared_queue(url) else run_id
