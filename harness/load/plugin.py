"""Locust event listeners: harness arguments, deployments per test run, worker stats, the "Patterns" tab.

Importing this module registers the listeners (the locustfile imports it through ``harness.load.users``):

- ``--agent --patterns --harness-profile --time-scale --shape --scenario --harness-url --harness-set
  --harness-memory`` are Locust arguments, so they show in the web UI form (Locust owns ``--profile``; ours is
  ``--harness-profile``);
- at test start the master (or the single process) starts an engine host (``harness.load.engine``) with one
  deployment per selected pattern, or attaches to running gateways (``--harness-url``); the URLs and the
  scenario reach the workers in the spawn message's ``parsed_options``;
- each worker sends what its users saw (``HarnessStats.delta``) with its regular report; the master merges;
- at test stop (headless master: at quit, after the workers' last requests) the host writes the JSON
  report (``--harness-report``) and every process is reaped;
- the web UI gets the "Patterns" tab, its table and its live charts (``harness.load.webui``);
- SIGTERM and SIGHUP stop the run as Ctrl-C does (users stopped, report written, the host and its
  instances reaped), also during a headless run, where Locust itself would die on them (see
  ``_stop_like_ctrl_c``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import time
import urllib.request
import weakref
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped]
from gevent.lock import RLock  # type: ignore[import-untyped]
from locust import events as _locust_events
from locust.env import Environment
from locust.runners import STATE_RUNNING, STATE_SPAWNING, MasterRunner, WorkerRunner

from emulators.profiles import IMPLEMENTED_PATTERNS, PATTERNS
from emulators.timeline import TimelineBook

from ..config import check_memory_url
from .engine import EngineHost, EngineOptions
from .scenario import Scenario, default_scenario, load_scenario, parse_scenario, resolve_agent
from .shapes import SHAPES
from .stats import HarnessStats
from .webui import COLUMNS, install_web_ui

__all__ = ["COLUMNS", "LoadSession", "session_of"]

log = logging.getLogger("harness.load")
events: Any = _locust_events  # Locust's EventHook methods are untyped; typed code calls them through Any



class LoadSession:
    """The harness side of one Locust process: scenario, gateway URLs, stats, and the engine host."""

    def __init__(self, environment: Environment) -> None:
        self.env = environment
        self.stats = HarnessStats()
        self.series = TimelineBook()  # the gateways' timelines, for the charts under the Patterns tab
        self.urls: dict[str, str] = {}
        self.scenario: Scenario = default_scenario()
        self.host: EngineHost | None = None
        self._poller: Any = None
        self.starting: Any = None  # the greenlet that runs start() (see _on_test_start)
        self._finishing = RLock()
        self.started_at = 0.0

    def _opt(self, name: str, default: Any = None) -> Any:
        return getattr(self.env.parsed_options, name, default) if self.env.parsed_options else default

    def selected_patterns(self) -> list[str]:
        """The ``--patterns`` list ('all': every implemented pattern)."""
        text = str(self._opt("patterns", "all") or "all")
        names = list(IMPLEMENTED_PATTERNS) if text == "all" else [p.strip() for p in text.split(",") if p.strip()]
        bad = [n for n in names if n not in PATTERNS]
        if bad:
            raise ValueError(f"unknown pattern {bad[0]!r}; expected one of: {', '.join(PATTERNS)} (or 'all')")
        return names

    # ---- test start ---------------------------------------------------------------------------------

    def _load_scenario(self) -> None:
        text = self._opt("harness_scenario_text")
        path = str(self._opt("scenario", "") or "")
        if text:  # a worker: the master's copy, so remote workers need not have the file
            self.scenario = parse_scenario(json.loads(text), path or "<from master>")
        elif path:
            self.scenario = load_scenario(path)
        else:
            self.scenario = default_scenario()

    @property
    def running(self) -> bool:
        """True from start() until finish(): deployments are up (or gateways attached) for this run."""
        return self.host is not None or self._poller is not None

    def start(self) -> None:
        """Master or single process: deploy (or attach) and publish the URLs for the workers."""
        self.stats.reset()
        self.series.clear()
        self._load_scenario()
        opts = self.env.parsed_options
        path = str(self._opt("scenario", "") or "")
        if opts is not None and path:
            import tomllib

            opts.harness_scenario_text = json.dumps(tomllib.loads(Path(path).read_text()))
        patterns = self.selected_patterns()
        attach = str(self._opt("harness_url", "") or "")
        if attach:
            self.urls = _attach(attach, patterns)
            self._poller = gevent.spawn(self._poll_live)
        else:
            agent = str(self._opt("agent", "") or "") or self.scenario.agent
            if not agent:
                raise ValueError("no agent: give --agent path/to/agent.py:callable, a --scenario with an agent, "
                                 "or --harness-url to attach to running gateways")
            reports = [p for p in str(self._opt("harness_report", "") or "").split(",") if p]
            sets = [s for s in str(self._opt("harness_set", "") or "").split(",") if s.strip()]
            profiles = [p for p in str(self._opt("harness_profile", "") or "").split(",") if p.strip()]
            memory = str(self._opt("harness_memory", "") or "").strip() or None
            check_memory_url(memory)  # the message harness run gives, before the engine host starts
            self.host = EngineHost(EngineOptions(
                resolve_agent(agent, self.scenario.source), patterns, profiles=profiles,
                time_scale=float(self._opt("time_scale", 0.01)), sets=sets, reports=reports,
                sample_s=float(self._opt("harness_sample_s", 0.5)), memory=memory), on_stats=self._on_live,
                on_series=self.series.add)
            self.urls = self.host.start()
        if opts is not None:
            opts.harness_resolved_urls = dict(self.urls)
        self.started_at = time.time()  # the shape's clock restarts now: reports place its phases from here
        log.info("harness: load test against %s", ", ".join(f"{p} {u}" for p, u in self.urls.items()))

    def start_worker(self) -> None:
        """Worker: the URLs and scenario come from the master's spawn message."""
        self.stats = HarnessStats(track_delta=True)
        self._load_scenario()
        self.urls = dict(self._opt("harness_resolved_urls", {}) or {})

    def _on_live(self, stats: dict[str, dict[str, Any]]) -> None:
        for pattern, s in stats.items():
            self.stats.set_live(pattern, s)

    def _poll_live(self) -> None:
        """Attached gateways: read their /stats and timeline every 2 s (the host does this when it owns them)."""
        while True:
            for pattern, url in self.urls.items():
                try:
                    with urllib.request.urlopen(f"{url}/stats", timeout=5) as r:
                        self.stats.set_live(pattern, json.loads(r.read()))
                    since = self.series.last(pattern)
                    with urllib.request.urlopen(f"{url}/_harness/timeline?since={since}", timeout=5) as r:
                        doc = json.loads(r.read())["patterns"]
                    self.series.add({pattern: doc[pattern]} if pattern in doc else {})
                except (OSError, ValueError, KeyError):
                    pass
            gevent.sleep(2.0)

    # ---- test end -----------------------------------------------------------------------------------

    def finish(self) -> None:
        """Write the report and stop the deployments this process started (or stop watching attached ones).

        One call at a time: on a signal, Locust's shutdown and the greenlet its stop wakes up can both get
        here; the second must wait for the first to have stopped the host, or Locust would exit (closing the
        host's pipes) before the host wrote its report.
        """
        with self._finishing:
            self._finish()

    def _finish(self) -> None:
        if self._poller is not None:
            self._poller.kill(block=False)
            self._poller = None
        host, self.host = self.host, None
        if host is None:
            return
        runner = self.env.runner
        total = runner.stats.total if runner is not None else None
        by_name = {} if runner is None else {
            f"{e.method} {e.name}": {"requests": e.num_requests, "failures": e.num_failures}
            for e in runner.stats.entries.values()}
        locust_totals = {"requests": total.num_requests if total else 0,
                         "failures": total.num_failures if total else 0, "by_name": by_name}
        extra = {"shape": self._opt("shape"), "users": self._opt("num_users"), "run_time_s": self._opt("run_time"),
                 "started_at": self.started_at,
                 "scenario": self.scenario.name, "urls": self.urls, "locust": locust_totals,
                 "harness": self.stats.to_json()}
        done = host.stop(extra)
        seen = done.get("gateway_requests", {})
        log.info("harness: deployments stopped; gateways answered %s requests, Locust counted %s",
                 sum(seen.values()), locust_totals["requests"])


_SESSIONS: weakref.WeakKeyDictionary[Environment, LoadSession] = weakref.WeakKeyDictionary()


def session_of(environment: Environment) -> LoadSession:
    """The LoadSession of a Locust environment (one per process)."""
    s = _SESSIONS.get(environment)
    if s is None:
        s = _SESSIONS[environment] = LoadSession(environment)
    return s


def _attach(spec: str, patterns: list[str]) -> dict[str, str]:
    """``pattern=url,...``, or bare URLs whose pattern ``/healthz`` tells."""
    urls: dict[str, str] = {}
    for item in (i.strip() for i in spec.split(",") if i.strip()):
        pattern, sep, url = item.partition("=")
        if not sep:
            url = item
            with urllib.request.urlopen(f"{url.rstrip('/')}/healthz", timeout=10) as r:
                pattern = str(json.loads(r.read())["pattern"])
        urls[pattern.strip()] = url.strip().rstrip("/")
    missing = [p for p in patterns if p not in urls]
    if missing and str(patterns) != str(list(IMPLEMENTED_PATTERNS)):
        raise ValueError(f"--harness-url has no gateway for {', '.join(missing)}; give pattern=URL for each")
    return urls


# ---- listeners --------------------------------------------------------------------------------------------

def _add_arguments(parser: Any) -> None:
    parser.add_argument("--agent", default="", help="The agent: path/to/agent.py:callable or module:callable "
                        "(default: the scenario's)")
    parser.add_argument("--patterns", default="all", help="Comma-separated patterns, or 'all'")
    parser.add_argument("--harness-profile", default="", help="Profile name(s): NAME or PATTERN=NAME,...")
    parser.add_argument("--time-scale", type=float, default=0.01, help="Wall seconds per platform second")
    parser.add_argument("--shape", choices=SHAPES, default="steady", help="Traffic shape over --users/--run-time")
    parser.add_argument("--scenario", default="", help="A scenario file (fixtures/scenarios/*.toml)")
    parser.add_argument("--harness-url", default="", help="Attach to running gateways: pattern=URL,... "
                        "(nothing is deployed)")
    parser.add_argument("--harness-set", default="", help="Profile overrides FIELD=VALUE,...")
    # Masked in the web UI form: a PostgreSQL URL may carry a password.
    parser.add_argument("--harness-memory", default="", is_secret=True, help="ctx.memory's store for every "
                        "deployment: sqlite:///path or postgresql://... (default: a SQLite file per deployment)")
    parser.add_argument("--harness-report", default="", include_in_web_ui=False,
                        help="Report file(s) written at the end (.json, .md, .html), comma-separated")
    parser.add_argument("--harness-sample-s", type=float, default=0.5, include_in_web_ui=False,
                        help="How often the gateways' /stats are sampled (wall seconds)")


def _on_test_start(environment: Environment, **_: Any) -> None:
    s = session_of(environment)
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        s.start_worker()
        return
    # Locust (2.47) fires test_start inside its spawning greenlet, and a shape's next tick kills that
    # greenlet while the deployments are still starting (seconds); the state it left makes the next tick
    # fire test_start again. So the start runs in a greenlet of its own, once per run, and every
    # test_start waits for it: a killed caller leaves it running, a later one finds the deployments up.
    if s.starting is None or (s.starting.dead and not s.running):
        s.starting = gevent.spawn(_start_session, environment, s)
    s.starting.join()


def _start_session(environment: Environment, s: LoadSession) -> None:
    runner = environment.runner
    try:
        s.start()
    except Exception as exc:
        log.error("harness: %s", exc)
        environment.process_exit_code = 2
        opts = environment.parsed_options
        if runner is not None:
            gevent.spawn(runner.quit if opts is not None and opts.headless else runner.stop)
        return
    shape: Any = environment.shape_class
    if shape is not None:
        shape.reset_time()  # the deployments' start is not part of the shape's timeline


def _on_test_stop(environment: Environment, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        return
    opts = environment.parsed_options
    if isinstance(runner, MasterRunner) and opts is not None and opts.headless:
        return  # a headless master stops before its workers do: the deployments go at quit
    session_of(environment).finish()


def _on_quitting(environment: Environment, **_: Any) -> None:
    runner = environment.runner
    if runner is None or isinstance(runner, WorkerRunner):
        return
    if runner.state in (STATE_SPAWNING, STATE_RUNNING):
        # Ctrl-C or SIGTERM mid-run: stop the users before their gateways go, so no request is cut off.
        runner.stop()
    session_of(environment).finish()


def _on_report_to_master(client_id: str, data: dict[str, Any], **_: Any) -> None:
    for env, s in list(_SESSIONS.items()):
        if isinstance(env.runner, WorkerRunner):
            data["harness"] = s.stats.delta()


def _on_worker_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
    for env, s in list(_SESSIONS.items()):
        if isinstance(env.runner, MasterRunner):
            s.stats.merge(data.get("harness") or {})


def _stop_like_ctrl_c() -> None:
    """Make SIGTERM and SIGHUP stop this Locust process cleanly at any time, as Ctrl-C does a headless run.

    Locust installs its own SIGTERM handler (stop the users, fire "quitting", exit) only after a headless
    run's shape has finished (its ``main`` waits for the shape first), so during a headless run SIGTERM
    killed it on the spot: no users stopped, no CSV or HTML, the engine host told nothing (it only found
    its pipe closed). Until Locust's handler takes over, SIGTERM raises Ctrl-C's KeyboardInterrupt in the
    main greenlet, the path a headless run stops cleanly from ("quitting" then stops the host, which writes
    the report); it is raised there the way gevent passes Ctrl-C on, not in the user greenlet the signal
    happened to interrupt (which would end that user mid-request). SIGHUP, a closed terminal, Locust never
    handles: it becomes a SIGTERM to this process, so whichever SIGTERM handler is in force applies (in the
    web UI, Ctrl-C would only stop the test and leave the process running).
    """
    def interrupt(_signum: int, _frame: Any) -> None:
        gevent.get_hub().handle_system_error(KeyboardInterrupt, KeyboardInterrupt("SIGTERM"))

    def hangup(_signum: int, _frame: Any) -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    for sig, handler in ((signal.SIGTERM, interrupt), (signal.SIGHUP, hangup)):
        with contextlib.suppress(ValueError):  # not the main thread: nothing to do there
            if signal.getsignal(sig) is not signal.SIG_IGN:  # nohup's ignored SIGHUP stays ignored
                signal.signal(sig, handler)


def _on_init(environment: Environment, **_: Any) -> None:
    _stop_like_ctrl_c()
    if environment.web_ui is not None:
        install_web_ui(environment.web_ui, session_of(environment))


events.init_command_line_parser.add_listener(_add_arguments)
events.test_start.add_listener(_on_test_start)
events.test_stop.add_listener(_on_test_stop)
events.quitting.add_listener(_on_quitting)
events.report_to_master.add_listener(_on_report_to_master)
events.worker_report.add_listener(_on_worker_report)
events.init.add_listener(_on_init)
