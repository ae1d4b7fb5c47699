"""Locust users, one class per pattern, and the shape that drives them (imports Locust: load it last).

Every user talks to its pattern's gateway only (``x-harness-*`` headers tell it what the platform did) and
runs the scenario's task mix: ``invoke`` (``POST /invoke``), ``tasks`` (``POST /tasks`` then polling
``GET /tasks/{id}``) and ``stream`` (``POST /invoke/stream``, SSE). Requests are named ``"<pattern>
<route>"``; a failed invocation is a Locust failure named by its outcome kind (``throttled``,
``timeout``, ...). ``HarnessShape`` wraps ``harness.load.shapes`` and runs only the selected patterns'
user classes, so ``--users 50 --patterns serverless`` puts all 50 users on serverless.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any, ClassVar
from urllib.parse import quote

from locust import FastHttpUser, LoadTestShape, task
from locust.env import Environment

from .plugin import session_of
from .scenario import ScenarioTask, SessionIds
from .shapes import target

__all__ = ["ContainerUser", "DaemonUser", "EdgeUser", "HarnessShape", "PatternUser", "ServerlessUser"]

_NO_HOST = "http://127.0.0.1:9"  # a user whose pattern is not deployed never sends (see scenario_task)


def _body(text: str | None) -> dict[str, Any]:
    try:
        data = json.loads(text or "")
    except (ValueError, TypeError):
        return {}
    return data if isinstance(data, dict) else {}


def _mark(r: Any, failure: str | None) -> None:
    """Success, or a failure named ``failure`` (Locust's success/failure methods are untyped)."""
    if failure is None:
        r.success()
    else:
        r.failure(failure)


class PatternUser(FastHttpUser):
    """A user of one pattern's gateway; subclasses set ``pattern``."""

    abstract = True
    pattern: ClassVar[str] = ""

    def __init__(self, environment: Environment) -> None:
        self.session = session_of(environment)
        # Per instance, not per class: Locust copies the web UI's "host" field onto every class, but each
        # pattern has its own gateway.
        self.host = self.session.urls.get(self.pattern, _NO_HOST)
        super().__init__(environment)
        self.rng = random.Random()
        self.sessions = SessionIds(self.session.scenario, f"{self.pattern}-{id(self):x}")

    def wait_time(self) -> float:
        """The scenario's think time."""
        return self.session.scenario.think(self.rng)

    @task
    def scenario_task(self) -> None:
        """One task of the scenario's mix, drawn by weight."""
        if self.pattern not in self.session.urls:
            time.sleep(1.0)  # the deployments did not start: the run is being stopped, send nothing
            return
        t = self.session.scenario.pick(self.rng)
        sid = self.sessions.next()
        query = f"?session_id={quote(sid)}" if sid else ""
        {"invoke": self._invoke, "tasks": self._submit, "stream": self._stream}[t.mode](t, query)

    # ---- the three modes ----------------------------------------------------------------------------

    def _invoke(self, t: ScenarioTask, query: str) -> None:
        with self.client.post(f"/invoke{query}", json=t.payload, name=f"{self.pattern} /invoke",
                              catch_response=True) as r:
            self._judge(r, r.headers or {}, _body(r.text))

    def _submit(self, t: ScenarioTask, query: str) -> None:
        scenario = self.session.scenario
        with self.client.post(f"/tasks{query}", json=t.payload, name=f"{self.pattern} /tasks",
                              catch_response=True) as r:
            task_id = _body(r.text).get("task_id")
            if r.status_code != 202 or not task_id:
                self._judge(r, r.headers or {}, _body(r.text))  # refused at the door: 413, 400...
                return
            _mark(r, None)
        deadline = time.monotonic() + scenario.poll_timeout_s
        while True:
            time.sleep(scenario.poll_interval_s)  # gevent's sleep under Locust
            with self.client.get(f"/tasks/{task_id}", name=f"{self.pattern} /tasks/{{id}}",
                                 catch_response=True) as poll:
                body = _body(poll.text)
                if body.get("state") in ("succeeded", "failed"):
                    self._judge(poll, poll.headers or {}, body.get("result") or {})
                    return
                if time.monotonic() > deadline:
                    _mark(poll, "poll_timeout")
                    return
                _mark(poll, None if poll.status_code == 200 else f"http {poll.status_code}")

    def _stream(self, t: ScenarioTask, query: str) -> None:
        t0 = time.perf_counter()
        with self.client.post(f"/invoke/stream{query}", json=t.payload, name=f"{self.pattern} /invoke/stream",
                              stream=True, catch_response=True) as r:
            if r.status_code != 200:
                self._judge(r, r.headers or {}, _body(r.text))
                return
            result: dict[str, Any] = {}
            event, buf = "", ""
            for chunk in r.iter_content(chunk_size=4096):
                buf += chunk if isinstance(chunk, str) else chunk.decode("utf-8", "replace")
                while "\n" in buf:
                    line, buf = buf.split("\n", 1)
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:") and event == "result":
                        result = _body(line[5:].strip())
            # The whole stream is the response time, not just its headers.
            r.request_meta["response_time"] = (time.perf_counter() - t0) * 1000
            headers = {"x-harness-outcome": str(result.get("outcome", "")),
                       "x-harness-cold-start": "true" if result.get("cold_start") else "false",
                       "x-harness-instance": str(result.get("instance_id") or ""),
                       "x-harness-latency-ms": str(result.get("latency_ms", 0))}
            if not result:
                _mark(r, "stream ended without a result")
                return
            self._judge(r, headers, result)

    def _judge(self, r: Any, headers: Any, result: dict[str, Any]) -> None:
        """Record the harness's view of a finished invocation and mark the request by its outcome."""
        outcome = headers.get("x-harness-outcome") or ""
        if not outcome:
            _mark(r, f"http {r.status_code}" if r.status_code else f"connection error: {getattr(r, 'error', '')}")
            return
        cost = result.get("cost") or {}
        self.session.stats.observe(
            self.pattern, outcome, cold_start=headers.get("x-harness-cold-start") == "true",
            instance=headers.get("x-harness-instance") or None,
            latency_ms=float(headers.get("x-harness-latency-ms") or 0.0),
            cost_usd=float(cost.get("total_usd", 0.0)) if isinstance(cost, dict) else 0.0,
            input_tokens=int(result.get("input_tokens", 0)), output_tokens=int(result.get("output_tokens", 0)),
            llm_calls=int(result.get("llm_calls", 0)))
        _mark(r, None if outcome == "ok" else outcome)


class ServerlessUser(PatternUser):
    """Calls the serverless deployment (scale from zero, one call per instance, idle expiry)."""

    pattern = "serverless"


class ContainerUser(PatternUser):
    """Calls the container deployment (warm replicas behind a load balancer, HPA)."""

    pattern = "container"


class DaemonUser(PatternUser):
    """Calls the daemon deployment (a queue and long-lived workers)."""

    pattern = "daemon"


class EdgeUser(PatternUser):
    """Calls the edge deployment (isolates with CPU-time limits)."""

    pattern = "edge"


class HarnessShape(LoadTestShape):
    """The ``--shape`` chosen on the command line or in the web UI, over ``--users`` and ``--run-time``."""

    use_common_options = True  # the web UI keeps its users / spawn rate / run time fields for the shape

    def tick(self) -> tuple[int, float, list[Any]] | None:
        """Users and spawn rate now, with the user classes of the selected patterns only."""
        assert self.runner is not None
        env = self.runner.environment
        opts = env.parsed_options
        patterns = session_of(env).selected_patterns()
        classes = [c for c in env.user_classes if getattr(c, "pattern", None) in patterns]
        elapsed = time.perf_counter() - self.start_time  # get_run_time() is untyped
        now = target(str(getattr(opts, "shape", "steady") or "steady"), elapsed,
                     run_time=getattr(opts, "run_time", None), peak=int(getattr(opts, "num_users", 0) or 1),
                     spawn_rate=float(getattr(opts, "spawn_rate", 1) or 1), floor=max(1, len(classes)))
        return None if now is None else (now[0], now[1], classes)
