"""Locust event listeners: harness arguments, deployments per test run, worker stats, the "Patterns" tab.

Importing this module registers the listeners (the locustfile imports it through ``harness.load.users``):

- ``--agent --patterns --harness-profile --time-scale --shape --scenario --harness-url --harness-set``
  are Locust arguments, so they show in the web UI form (Locust owns ``--profile``; ours is
  ``--harness-profile``);
- at test start the master (or the single process) starts an engine host (``harness.load.engine``) with one
  deployment per selected pattern, or attaches to running gateways (``--harness-url``); the URLs and the
  scenario reach the workers in the spawn message's ``parsed_options``;
- each worker sends what its users saw (``HarnessStats.delta``) with its regular report; the master merges;
- at test stop (headless master: at quit, after the workers' last requests) the host writes the JSON
  report (``--harness-report``) and every process is reaped;
- SIGTERM and SIGHUP stop the run as Ctrl-C does (users stopped, report written, the host and its
  instances reaped), also during a headless run, where Locust itself would die on them (see
  ``_stop_like_ctrl_c``).
"""

from __future__ import annotations

import contextlib
import csv
import io
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
from flask import Response, jsonify, request
from gevent.lock import RLock  # type: ignore[import-untyped]
from locust import events as _locust_events
from locust.env import Environment
from locust.runners import STATE_RUNNING, STATE_SPAWNING, MasterRunner, WorkerRunner

from emulators.gateway.dashboard import charts_json, live_script
from emulators.profiles import IMPLEMENTED_PATTERNS, PATTERNS
from emulators.timeline import TimelineBook

from .engine import EngineHost, EngineOptions
from .scenario import Scenario, default_scenario, load_scenario, parse_scenario, resolve_agent
from .shapes import SHAPES
from .stats import HarnessStats

__all__ = ["COLUMNS", "LoadSession", "session_of"]

log = logging.getLogger("harness.load")
events: Any = _locust_events  # Locust's EventHook methods are untyped; typed code calls them through Any

COLUMNS = [  # the "Patterns" tab's table, also /patterns/csv
    {"key": "pattern", "title": "Pattern"}, {"key": "profile", "title": "Profile"},
    {"key": "calls", "title": "Calls"}, {"key": "ok", "title": "OK"}, {"key": "failures", "title": "Failures"},
    {"key": "failures_by_kind", "title": "Failures by kind"},
    {"key": "cold_start_share", "title": "Cold starts"}, {"key": "p95_ms", "title": "p95 (platform ms)"},
    {"key": "cost_per_1k_usd", "title": "Cost / 1k calls ($)"}, {"key": "llm_tokens", "title": "LLM tokens"},
    {"key": "instances_seen", "title": "Instances seen"}, {"key": "live_instances", "title": "Live instances"},
    {"key": "peak_live_instances", "title": "Peak live"},
]


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
            self.host = EngineHost(EngineOptions(
                resolve_agent(agent, self.scenario.source), patterns, profiles=profiles,
                time_scale=float(self._opt("time_scale", 0.01)), sets=sets, reports=reports,
                sample_s=float(self._opt("harness_sample_s", 0.5))), on_stats=self._on_live,
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
    s = session_of(environment)
    web_ui: Any = environment.web_ui  # Flask's and Locust's decorators are untyped
    if web_ui is None:
        return
    web_ui.template_args["extendedTabs"] = [{"title": "Patterns", "key": "patterns"}]
    web_ui.template_args["extendedTables"] = [{"key": "patterns", "structure": COLUMNS}]
    web_ui.template_args["extendedCsvFiles"] = [{"href": "/patterns/csv", "title": "Download harness patterns CSV"}]

    def rows() -> list[dict[str, Any]]:
        try:
            names = s.selected_patterns()
        except ValueError:
            names = None
        known = set(s.urls) | set(s.stats.patterns)
        return s.stats.rows([n for n in names if n in known or not known] if names else None)

    def _extend_stats(response: Response) -> Response:
        # The React UI polls /stats/requests every 2 s and renders "extended_stats" in the extended tabs.
        if request.path != "/stats/requests" or not response.is_json:
            return response
        data = response.get_json()
        data["extended_stats"] = [{"key": "patterns", "data": rows()}]
        response.set_data(json.dumps(data))
        return response

    def _patterns_json() -> Response:
        return jsonify({"patterns": rows(), "urls": s.urls, "columns": COLUMNS})

    def _patterns_csv() -> Response:
        out = io.StringIO()
        w = csv.DictWriter(out, [c["key"] for c in COLUMNS])
        w.writeheader()
        w.writerows(rows())
        return Response(out.getvalue(), mimetype="text/csv",
                        headers={"Content-Disposition": "attachment; filename=harness_patterns.csv"})

    def _patterns_page() -> Response:
        return Response(_PAGE, mimetype="text/html")

    def _charts() -> Response:
        return jsonify(charts_json(s.series.to_json(), request.args.get("pattern")))

    def _timeline() -> Response:
        return jsonify({"patterns": s.series.to_json()})

    def _live_js() -> Response:
        return Response(_TAB_SCRIPT + live_script("patterns/charts"), mimetype="text/javascript")

    def _inject_charts(response: Response) -> Response:
        # Locust's React page has no hook for custom content in a tab: a script of ours adds the charts
        # under the Patterns tab's table (and keeps them there while the tab is open).
        if request.path != "/" or response.mimetype != "text/html" or response.direct_passthrough:
            return response
        html = response.get_data(as_text=True)
        if "</body>" in html and "patterns/live.js" not in html:
            response.set_data(html.replace("</body>", '<script src="patterns/live.js" defer></script></body>', 1))
        return response

    app, auth = web_ui.app, web_ui.auth_required_if_enabled
    app.after_request(_extend_stats)
    app.after_request(_inject_charts)
    app.route("/patterns/charts")(auth(_charts))
    app.route("/patterns/timeline")(auth(_timeline))
    app.route("/patterns/live.js")(auth(_live_js))
    app.route("/patterns/json")(auth(_patterns_json))
    app.route("/patterns/csv")(auth(_patterns_csv))
    app.route("/patterns")(auth(_patterns_page))


events.init_command_line_parser.add_listener(_add_arguments)
events.test_start.add_listener(_on_test_start)
events.test_stop.add_listener(_on_test_stop)
events.quitting.add_listener(_on_quitting)
events.report_to_master.add_listener(_on_report_to_master)
events.worker_report.add_listener(_on_worker_report)
events.init.add_listener(_on_init)

# A standalone view of the same table (for a quick look without the React UI, and for headless checks).
_PAGE = """<!doctype html><meta charset="utf-8"><title>Patterns - harness</title>
<style>body{font:14px sans-serif;margin:1em}table{border-collapse:collapse}td,th{border:1px solid #ccc;
padding:4px 8px;text-align:right}td:first-child,th{text-align:left}</style>
<h1>Patterns</h1><table id="t"><thead></thead><tbody></tbody></table>
<p><label>Pattern <select id="harness-pattern"><option value="">all</option></select></label></p>
<div id="harness-charts"></div>
<script src="patterns/live.js" defer></script>
<script>
async function load(){const r=await fetch("patterns/json");const d=await r.json();
document.querySelector("#t thead").innerHTML="<tr>"+d.columns.map(c=>"<th>"+c.title+"</th>").join("")+"</tr>";
document.querySelector("#t tbody").innerHTML=d.patterns.map(p=>"<tr data-pattern='"+p.pattern+"'>"+
d.columns.map(c=>"<td>"+p[c.key]+"</td>").join("")+"</tr>").join("");}
load();setInterval(load,2000);
</script>"""

# Keeps a box with a pattern selector and the charts under the Patterns tab's table while that tab is open;
# the refresh loop that fills it (live_script) follows it in /patterns/live.js.
_TAB_SCRIPT = """(function(){
function patternsTab(){return [...document.querySelectorAll('[role=tab]')].find(b=>b.textContent.trim()==='Patterns');}
function place(){
  if(document.getElementById('t')){return;}  /* the standalone /patterns page has its own box */
  const tab=patternsTab();
  let box=document.getElementById('harness-live');
  const open=tab&&tab.getAttribute('aria-selected')==='true';
  if(!open){if(box){box.remove();}return;}
  const tables=[...document.querySelectorAll('table')].filter(t=>!(box&&box.contains(t)));
  const table=tables[tables.length-1];
  if(!table){return;}
  const anchor=table.closest('.MuiTableContainer-root')||table;
  if(!box){
    box=document.createElement('div');
    box.id='harness-live';
    box.style.cssText='margin:12px 0 24px;padding:8px;background:#fff;color:#111827;border-radius:6px';
    box.innerHTML='<div style="margin-bottom:6px">Pattern <select id="harness-pattern">'+
      '<option value="">all</option></select> <span id="harness-updated" style="color:#6b7280"></span></div>'+
      '<div id="harness-charts">loading charts...</div>';
  }
  if(anchor.nextElementSibling!==box){anchor.after(box);if(window.harnessRefreshCharts){window.harnessRefreshCharts();}}
}
setInterval(place,500);place();
})();
"""
