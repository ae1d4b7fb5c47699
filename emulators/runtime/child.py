"""The instance process: import the agent once (the cold start), then serve invocations over a socket.

Runs in a process forked from the zygote. It reports what it measured itself (platform duration, CPU,
per-invocation peak memory) but enforces nothing it could be talked out of: time and memory limits are
enforced from outside (``instance.py``, ``limits.py``), so an agent that swallows exceptions or blocks the
GIL is still stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import os
import socket
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import limits
from .agent import HTTP_ADAPTERS, detect_adapter, load_callable
from .context import AgentContext, LambdaContext, emulated_wait, llm_client, warm_http
from .httpevents import is_event, lifespan_startup, proxy_response, run_asgi, sqs_task_event, task_event
from .llmtime import LLMTimeReader
from .ptime import PlatformTimer
from .wire import FrameReader, encode

__all__ = ["serve"]


class _Channel:
    """The instance's end of the socket; sends are locked because invocations may run in threads.

    On the virtual clock an emulated wait blocks until the control process sends its ``wake``: whichever
    thread needs a frame (the serve loop for the next invocation, an agent thread in ``ctx.sleep``) takes
    the reader role and routes what it reads, so a wake reaches its waiter whoever read it.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()
        self.reader = FrameReader(sock)  # every read of the socket goes through it (it buffers)
        self._cond = threading.Condition()
        self._reading = False
        self._woken: set[str] = set()
        self._backlog: deque[dict[str, Any] | None] = deque()
        self._closed = False
        self._keys = itertools.count(1)

    def send(self, msg: dict[str, Any], raw: tuple[str, bytes] | None = None) -> None:
        data = encode(msg, raw)
        with self.lock:
            self.sock.sendall(data)

    def recv(self) -> dict[str, Any] | None:
        """The next frame that is not a wake; None once the control process closed the channel."""
        self._pump(lambda: bool(self._backlog))
        with self._cond:
            return self._backlog.popleft()

    def wait_key(self, inv_id: str) -> str:
        """A fresh key for one blocking wait of ``inv_id`` (the control process wakes it by this key)."""
        return f"{inv_id}/{next(self._keys)}"

    def block(self, key: str) -> None:
        """Block until the control process wakes the wait ``key`` (or goes away)."""
        self._pump(lambda: key in self._woken or self._closed)
        with self._cond:
            self._woken.discard(key)

    def _pump(self, done: Callable[[], bool]) -> None:
        with self._cond:
            while not done():
                if not self._reading:
                    self._reading = True
                    break
                self._cond.wait()
            else:
                return
        try:
            while True:
                with self._cond:
                    if done():
                        return
                msg = self.reader.recv()
                with self._cond:
                    if msg is None:
                        self._closed = True
                        self._backlog.append(None)
                    elif msg.get("op") == "wake":
                        self._woken.add(msg["id"])
                    else:
                        self._backlog.append(msg)
                    self._cond.notify_all()
        finally:
            with self._cond:
                self._reading = False
                self._cond.notify_all()


def _tail(exc: BaseException, lines: int = 12) -> str:
    text = "".join(traceback.format_exception(exc))
    return "\n".join(text.rstrip().splitlines()[-lines:])


class _Instance:
    def __init__(self, chan: _Channel, cfg: dict[str, Any]) -> None:
        self.chan = chan
        self.cfg = cfg
        self.fn: Callable[..., Any] = lambda *a: None
        self.params = 2  # positional arguments the agent takes: (task) or (task, ctx); known after load
        self.adapter = "agent"
        self.http: str | None = None  # set at init: "1.0" / "2.0" for an HTTP-shaped agent
        self.is_async = False
        self.loop = asyncio.new_event_loop()
        self.cap = 1  # invocations this instance runs at once (a replica's concurrency)
        self._read_lock = threading.Lock()  # held by the one thread reading the channel (the leader)
        self._count_lock = threading.Lock()
        self._threads = 1  # threads serving (the main thread included)
        self._readers = 1  # of them, those reading or waiting to read (not running an invocation)
        self._stopped = False
        self.local = threading.local()
        # the main thread's run-queue wait; off in a container, where waiting out the CPU quota is the platform's
        self.queued = limits.QueuedClock() if cfg.get("queue_correction", True) else None
        path = cfg.get("llm_time_path")
        self.llm_time = LLMTimeReader(path) if path else None
        self.peak = limits.PeakMemory()
        self.app_server: Any = None  # an ASGI app served by uvicorn on a unix socket (container forwarding)

    def init(self) -> None:
        cfg = self.cfg
        timer = PlatformTimer(cpu_factor=cfg["init_cpu_factor"], time_scale=cfg["time_scale"],
                              cpu=time.process_time, queued=self.queued)
        # the platform's share of the cold start: an emulated wait before the agent's real import
        emulated_wait(timer, self.chan.send, self.chan if cfg.get("virtual") else None, "init",
                      cfg["overhead_ms"] / 1000.0)
        try:
            self.fn = load_callable(cfg["agent"])
            self.adapter = detect_adapter(self.fn, cfg["adapter"])
        except BaseException as exc:  # an agent's import may raise anything, SystemExit included
            self.chan.send({"op": "init_error", "error": f"{type(exc).__name__}: {exc}", "traceback": _tail(exc),
                            "init_ms": timer.elapsed() * 1000.0, "wall_ms": timer.wall_elapsed() * 1000.0})
            sys.stdout.flush()
            os._exit(3)
        if self.adapter == "asgi":
            # The app's startup (FastAPI/Starlette lifespan) is part of the cold start, as on a platform. On a
            # container the app is served by a real uvicorn (appserver.py), which runs that startup itself.
            if cfg.get("app_socket"):
                from .appserver import AppServer

                self.app_server = AppServer(self.fn, cfg["app_socket"])
                problem = self.app_server.start()
            else:
                problem = self.loop.run_until_complete(lifespan_startup(self.fn))
            if problem is not None:
                self.chan.send({"op": "init_error", "error": problem, "traceback": "",
                                "init_ms": timer.elapsed() * 1000.0, "wall_ms": timer.wall_elapsed() * 1000.0})
                sys.stdout.flush()
                os._exit(3)
        llm_cpu_ms = 0.0
        if cfg.get("llm_client_at_init"):
            # The agent's code uses ctx.llm: make its client now, as a module-level client would be made, so
            # the SDK's import is init time (and edge startup CPU), not the first request's.
            before = time.process_time()
            with contextlib.suppress(ImportError):  # no SDK: ctx.llm says so when the agent uses it
                llm_client()
            llm_cpu_ms = (time.process_time() - before) * 1000.0
        self.http = HTTP_ADAPTERS.get(self.adapter)  # the API Gateway payload version of an HTTP-shaped agent
        self.is_async = inspect.iscoroutinefunction(self.fn)
        self.params = 1 if self.adapter == "agent" and _arity(self.fn) == 1 else 2  # once: signature() is slow
        self.cap = cfg["instance_concurrency"]
        self.chan.send({"op": "ready", "init_ms": timer.elapsed() * 1000.0, "wall_ms": timer.wall_elapsed() * 1000.0,
                        "adapter": self.adapter, "pid": os.getpid(), "llm_cpu_ms": llm_cpu_ms})

    def serve(self) -> None:
        """Answer frames until the control process says exit or goes away.

        One invocation at a time runs on this thread. With a concurrency above one (a replica), threads serve
        as leader and followers: the thread that reads a frame runs it itself, and a waiting thread takes
        over the reading. Handing each invocation to a pool thread instead put a thread wake-up and a GIL
        handover on every call's path: about 0.1 ms a call, and a third of a replica's throughput.

        On the virtual clock calls still go to a pool while this thread reads every frame: there a blocking
        wait's wake reaches its call through this thread always, where with leader and followers it came
        directly or through another thread, 0 or 0.1 ms of real time apart, and a wait-only agent's figures
        must come out the same run after run.
        """
        if self.cap <= 1:
            while (msg := self._next_frame()) is not None:
                self._handle(msg, threaded=False)
        elif self.cfg.get("virtual"):
            pool = ThreadPoolExecutor(self.cap, thread_name_prefix="invoke")  # not joined: the process ends with serve
            while (msg := self._next_frame()) is not None:
                pool.submit(self._handle, msg, True)
        else:
            self._follow()

    def _next_frame(self) -> dict[str, Any] | None:
        """The next frame to handle; None once the channel closed or the control process said exit."""
        # On the virtual clock frames go through the channel's router (a wait's wake may come to any thread).
        msg = self.chan.recv() if self.cfg.get("virtual") else self.chan.reader.recv()
        return None if msg is None or msg["op"] == "exit" else msg

    def _handle(self, msg: dict[str, Any], threaded: bool) -> None:
        if msg["op"] == "ping":
            self.chan.send({"op": "pong", "id": msg.get("id")})
        elif msg["op"] == "invoke":
            self.invoke(msg, threaded=threaded)

    def _follow(self) -> None:
        """One serving thread: read a frame while leader, hand the reading on, run the frame; until stopped."""
        while True:
            with self._read_lock:
                if self._stopped:
                    return
                msg = self._next_frame()
                if msg is None:
                    self._stopped = True
                    return
                with self._count_lock:
                    self._readers -= 1
                    spawn = self._readers == 0 and self._threads < self.cap
                    if spawn:  # nobody is left to read the next frame: one more thread, up to the cap
                        self._threads += 1
                        self._readers += 1
            if spawn:
                threading.Thread(target=self._follow, name=f"invoke-{self._threads}", daemon=True).start()
            try:
                self._handle(msg, threaded=True)
            finally:
                with self._count_lock:
                    self._readers += 1

    def _run(self, task: Any, ctx: AgentContext) -> Any:
        if self.http is None and self.adapter != "sqs":  # agent(task, ctx) or handler(event, context)
            arg: Any = LambdaContext(ctx) if self.adapter == "lambda" else ctx
            return self._await(self.fn(task) if self.params == 1 else self.fn(task, arg))
        if self.adapter == "sqs":
            # A batch from the daemon's SQS poller comes as is; a plain task is a batch of one message.
            batch = isinstance(task, dict) and isinstance(task.get("Records"), list)
            answer = self._await(self.fn(task if batch else sqs_task_event(task), LambdaContext(ctx)))
            if not batch and isinstance(answer, dict) and answer.get("batchItemFailures"):
                raise EventAnswerError(f"the handler reported its message in batchItemFailures: "
                                       f"{answer['batchItemFailures']!r:.300}")
            return answer
        # An HTTP-shaped agent: an event comes from the gateway as is; a plain task is POSTed to app_path.
        version = self.http
        assert version is not None
        plain = not is_event(task)
        event = task_event(version, task, self.cfg.get("app_path") or "/invoke") if plain else task
        if self.adapter == "asgi":
            result = self._await(run_asgi(self.fn, event, "1.0" if event.get("version") == "1.0" else "2.0"))
        else:
            result = self._await(self.fn(event, LambdaContext(ctx)))
        return _task_output(version, result) if plain else result

    def _await(self, result: Any) -> Any:
        if inspect.isawaitable(result):
            loop = self.loop if threading.current_thread() is threading.main_thread() else self._thread_loop()
            result = loop.run_until_complete(result)
        return result

    def _thread_queued(self) -> limits.QueuedClock | None:
        """This pool thread's own run-queue clock (``thread-self`` resolves to the thread that opens it)."""
        if self.queued is None:
            return None
        clock: limits.QueuedClock | None = getattr(self.local, "queued", None)
        if clock is None:
            clock = self.local.queued = limits.QueuedClock()
        return clock

    def _thread_loop(self) -> asyncio.AbstractEventLoop:
        loop: asyncio.AbstractEventLoop | None = getattr(self.local, "loop", None)
        if loop is None:
            loop = self.local.loop = asyncio.new_event_loop()
        return loop

    def invoke(self, msg: dict[str, Any], threaded: bool) -> None:
        cfg = self.cfg
        inv_id: str = msg["id"]
        cpu = time.thread_time if threaded else time.process_time
        if not threaded:
            self.peak.reset()
        timer = PlatformTimer(cpu_factor=cfg["cpu_factor"], time_scale=cfg["time_scale"], cpu=cpu,
                              queued=self._thread_queued() if threaded else self.queued)
        state_in = msg.get("state") or {}
        state_before = json.dumps(state_in, sort_keys=True)  # the stdlib: it decides what is JSON, as before
        ctx = AgentContext(
            invocation_id=inv_id, pattern=cfg["pattern"], instance_id=cfg["instance_id"],
            session_id=msg.get("session_id"), timeout_s=msg["timeout_s"], timer=timer, send=self.chan.send,
            block=self.chan if cfg.get("virtual") else None,
            state=state_in, checkpoints=msg.get("checkpoints") or {}, function_name=cfg["function_name"],
            memory_mb=cfg["memory_mb"], llm_time=self.llm_time,
            subrequest_limit=msg.get("subrequest_limit"), subrequest_rtt_s=msg.get("subrequest_rtt_s", 0.0),
        )
        out: dict[str, Any] = {"op": "result", "id": inv_id, "outcome": "ok", "error": None}
        raw: tuple[str, bytes] | None = None
        try:
            value = self._run(msg["task"], ctx)
        except MemoryError as exc:
            # An allocation the OS refused outright (larger than the machine): the agent ran out of memory.
            out.update(outcome="oom", error=f"MemoryError: an allocation was refused {exc}".rstrip(),
                       traceback=_tail(exc))
        except Exception as exc:
            out.update(outcome="agent_error", error=f"{type(exc).__name__}: {exc}", traceback=_tail(exc))
        except BaseException as exc:  # SystemExit / KeyboardInterrupt from the agent: still its error
            out.update(outcome="agent_error", error=f"{type(exc).__name__}: {exc}", traceback=_tail(exc))
        else:
            try:
                body = json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
            except (TypeError, ValueError) as exc:
                out.update(outcome="agent_error",
                           error=f"the agent returned a {type(value).__name__} that is not JSON-serializable: {exc}")
            else:
                limit = cfg.get("response_limit_bytes")
                if limit is not None and len(body) > limit:
                    out.update(outcome="payload_too_large",
                               error=f"response of {len(body)} bytes exceeds the {limit}-byte limit")
                else:
                    raw = ("output", body)
        out["duration_ms"] = timer.elapsed() * 1000.0
        if not threaded and self.queued is not None:
            out["queued_s"] = timer.last_queued  # the control process's next mirror starts from it (no /proc read)
        out["wall_ms"] = timer.wall_elapsed() * 1000.0
        out["cpu_ms"] = (cpu() - timer.start_cpu) * 1000.0
        out["peak_memory_mb"] = self.peak.mb()
        if ctx._memory is not None:  # requests to the long-term memory store (ctx.memory)
            out["memory_ops"] = ctx._memory.requests
        try:
            state_after = json.dumps(ctx.state, sort_keys=True)
        except (TypeError, ValueError) as exc:
            if out["outcome"] == "ok":
                out.update(outcome="agent_error", error=f"ctx.state holds a value that is not JSON: {exc}")
                raw = None
        else:
            if state_after != state_before:
                out["state"] = ctx.state
        self.chan.send(out, raw)


class EventAnswerError(Exception):
    """An event-shaped handler answered a plain task with a failure (an HTTP error status, a batch item failure)."""


def _task_output(version: str, answer: Any) -> Any:
    """What a plain task's caller gets from an HTTP answer: its JSON body (an error for a non-2xx status)."""
    made = proxy_response(version, answer)
    if isinstance(made, str):
        raise EventAnswerError(made)
    status, _, body = made
    text = body.decode("utf-8", errors="replace")
    if not 200 <= status < 300:
        raise EventAnswerError(f"the app answered HTTP {status}: {text[:500]}")
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return text


def _arity(fn: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 2
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return 2
    return 1 if len(positional) == 1 else 2


def serve(sock: socket.socket, cfg: dict[str, Any]) -> None:
    """Entry point in the forked instance process; returns when the control process says exit or goes away."""
    limits.join_cgroup(cfg.get("cgroup"))
    log = os.open(cfg["log_path"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    # Line-buffered so the log tail attached to a crash report has what the agent printed before dying.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(line_buffering=True)
    os.environ.update(cfg.get("env") or {})
    if cfg.get("cwd"):
        os.chdir(cfg["cwd"])
    chan = _Channel(sock)
    if cfg.get("preload_http"):
        # The platform's own HTTP client (an isolate's fetch) exists before the cold start: its import
        # counts against neither the startup nor the request CPU budget.
        with contextlib.suppress(ImportError):
            warm_http()
    # A pre-forked spare: the process exists and sits in its cgroup; the cold start begins at "start".
    chan.send({"op": "prepared", "pid": os.getpid()})
    start = chan.reader.recv()
    if start is None or start.get("op") != "start":
        return
    cfg.update(start.get("cfg") or {})
    inst = _Instance(chan, cfg)
    inst.init()
    try:
        inst.serve()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
