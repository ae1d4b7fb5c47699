"""``python -m benchmarks [--quick] [--json PATH] [--only GROUPS] [--compare OLD.json]``.

Measure, print one table, write JSON. Exit status 0 unless the run crashed: timing never fails it. Order
matters: the fork floor is measured first, while this process has no threads (the sync facade starts
one), then the other floors and the groups in ``GROUPS`` order. Every deployment is a context manager, so
every process it started is reaped; the run checks for leftover child processes at the end and reports
them. Memory and scale run in fresh interpreters (``benchmarks.fleet``), the load generator in its own
process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console

from . import RESULTS_DIR
from ._stats import Stats
from .bare import stack
from .cold import COLD_KW, CONTAINER_KW, ColdResult, cold_samples, container_cold_samples
from .compression import TIME_SCALE as COMPRESSION_SCALE
from .compression import CompressionResult, daemon_two_hours, hpa_cycle, lambda_timeout
from .daemon_throughput import BACKENDS, daemon_throughput
from .fleet import run_fleet
from .floors import agent_import_ms, fork_floor_ms, machine_facts, median, python_start_ms
from .hop import hop_floor
from .over_http import HttpResult, http_interleaved
from .report import Row, fmt_ms, render
from .sustained import sustained
from .throughput import CONNECTIONS, load_tool, slice_seconds, throughput_interleaved
from .timeline import DAEMON_SCALES, HPA_SCALES, daemon_echo_p50, day_of_traffic, hpa_first_scale_up
from .timeline import label as clock_label
from .warm import DEPLOY_KW, PATTERN_KW, PATTERNS, direct_call, warm_interleaved

WARM_TARGET_MS = 0.5  # the harness adds at most this much to a warm invoke at p50
THROUGHPUT_ROUNDS = 3  # wrk runs per target, taking turns
WARM_ROUNDS = 10  # the warm API targets take turns this many times (see warm.py)
HTTP_ROUNDS = 10  # the HTTP and throughput targets take turns this many times (see over_http.py)
HTTP_TARGET_RATIO = 1.5  # POST /invoke p50 at most this many times the bare endpoint's
# The daemon's sync call is a queue round trip on top (enqueue, a worker's receive, the result's delivery).
HTTP_TARGET_RATIO_BY_PATTERN = {"daemon": 2.0}
THROUGHPUT_TARGET_RATIO = 0.5  # gateway requests/s at least this share of the bare endpoint's
COLD_TARGET_MS = 15.0  # the harness's share of a cold start at p50
COMPRESSION_TARGET = 1000.0  # platform seconds per wall second
COMPRESSION_ERROR_TARGET = 5.0  # percent
MEMORY_TARGET_MB = 10.0  # RSS per warm instance over a bare interpreter with the agent imported

GROUPS = ("warm", "http", "throughput", "sustained", "cold", "compression", "timeline", "daemon", "memory", "scale",
          "soak")
DEFAULT_GROUPS = GROUPS[:-1]  # the soak (a million calls, about 20 minutes) runs only when named
SOAK_P99_RATIO = 1.5  # p99 at the last probe at most this many times p99 at the first mark
SOAK_RSS_MB_PER_MILLION = 50.0  # serve-process RSS growth per million calls
TIMELINE_DAEMON_TARGET_MS = 1.0  # daemon echo p50 at any clock within +1 ms of the time_scale=1 figure
HPA_FIRST_SYNC_S = 15.0  # the HPA's first sync: the burst's first scale-up at 15 s +/- 1 s on any clock
HPA_TARGET_S = 1.0
DAY_TARGET_S = 60.0  # 24 platform hours of traffic, 50,000 tasks, under a minute of wall time


SIZES: dict[str, dict[str, Any]] = {
    "full": {"warm": 2000, "warmup": 200, "http": 2000, "http_warmup": 200, "throughput_s": 10.0,
             "sustained_s": 15.0, "cold": 30, "fork": 50, "python": 10, "import": 5, "daemon_tasks": 1000,
             "daemon_raw": 1000, "sqs_tasks": 200, "sqs_raw": 200, "memory_instances": 100,
             "scale_instances": 200, "scale_bursts": 5, "day_tasks": 50_000, "soak_http": 1_000_000,
             "soak_daemon": 100_000},
    "quick": {"warm": 300, "warmup": 50, "http": 300, "http_warmup": 50, "throughput_s": 3.0,
              "sustained_s": 5.0, "cold": 10, "fork": 50, "python": 10, "import": 3, "daemon_tasks": 200,
              "daemon_raw": 300, "sqs_tasks": 50, "sqs_raw": 50, "memory_instances": 100,
              "scale_instances": 200, "scale_bursts": 2, "day_tasks": 5_000, "soak_http": 100_000,
              "soak_daemon": 20_000},
}


def _leftover_children() -> list[dict[str, Any]]:
    """Processes still descending from this one (should be none once every deployment closed)."""
    kids: list[psutil.Process] = []
    for _ in range(20):
        kids = [p for p in psutil.Process().children(recursive=True)
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not kids:
            return []
        time.sleep(0.05)
    out = []
    for p in kids:
        try:
            out.append({"pid": p.pid, "cmdline": " ".join(p.cmdline())})
        except psutil.Error:
            continue
    return out


def _progress(line: str) -> None:
    """One line of progress on stderr (the table goes to stdout once everything has run)."""
    print(f"benchmarks: {line}", file=sys.stderr, flush=True)


def _loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def _wrk_version() -> str:
    try:
        out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=5)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return ""


class Run:
    """One run: the sizes, the floors, the rows and the JSON details, filled group by group."""

    def __init__(self, quick: bool, only: tuple[str, ...]) -> None:
        self.quick = quick
        self.size = SIZES["quick" if quick else "full"]
        self.only = only
        self.rows: list[Row] = []
        self.details: dict[str, Any] = {}
        self.notes: list[str] = []
        self.timings: dict[str, float] = {}
        self.machine = machine_facts()
        self.machine["quick"] = quick
        self.floors: dict[str, Any] = {}
        self.fork_ms = self.python_ms = self.import_ms = 0.0

    # ---- floors ------------------------------------------------------------------------------------------

    def measure_floors(self) -> None:
        """fork (before any thread), python -c pass, the echo import; each as a list of samples."""
        s = self.size
        fork = fork_floor_ms(s["fork"])
        python = python_start_ms(s["python"])
        imports = agent_import_ms(s["import"])
        hop = hop_floor(s["warm"])
        hop_stats = Stats.of(hop.samples_ms)
        self.fork_ms, self.python_ms, self.import_ms = median(fork), median(python), median(imports)
        self.floors = {
            "fork_exit_waitpid_ms": {"median": self.fork_ms, "stats": Stats.of(fork).to_json()},
            "python_c_pass_ms": {"median": self.python_ms, "stats": Stats.of(python).to_json()},
            "echo_import_fresh_interpreter_ms": {"median": self.import_ms, "stats": Stats.of(imports).to_json()},
            "instance_hop_ms": {"median": hop_stats.p50, "stats": hop_stats.to_json(), **hop.to_json()},
        }
        self.notes.append(
            f"floors: fork+_exit+waitpid {fmt_ms(self.fork_ms)} (median of {len(fork)}); python -c pass "
            f"{fmt_ms(self.python_ms)} (median of {len(python)}); echo import (fresh interpreter) "
            f"{fmt_ms(self.import_ms)} (median of {len(imports)}); instance hop (an invoke frame to a forked "
            f"child and its result frame back, the harness's wire code, no agent): p50 {fmt_ms(hop_stats.p50)}, "
            f"{hop.parent_cpu_us:.0f} µs of this process's CPU per round trip (median of {hop_stats.n})")

    # ---- groups ------------------------------------------------------------------------------------------

    def warm(self) -> None:
        """Warm invoke through the Python API, per pattern, vs the direct call; all timed in interleaved rounds."""
        n, w = self.size["warm"], self.size["warmup"]
        direct = direct_call(n, w)
        d50, d99 = direct.stats.p50, direct.stats.p99
        results, spread = warm_interleaved(n, w, WARM_ROUNDS)
        self.machine["memory_enforcement"] = results["serverless"].memory_enforcement
        shown = [("serverless", "warm_sync", "serverless, sync API"),
                 ("serverless_async", "warm_async", "serverless, async API"),
                 *((p, f"warm_{p}", f"{p}, sync API") for p in PATTERNS if p != "serverless")]
        for key, rid, label in shown:
            r = results[key]
            self.rows += [
                Row(f"{rid}_p50", f"warm invoke, {label}, p50", r.stats.p50, "ms", "direct call", d50,
                    "difference", WARM_TARGET_MS, "difference", n=r.stats.n),
                Row(f"{rid}_p99", f"warm invoke, {label}, p99", r.stats.p99, "ms", "direct call", d99,
                    "difference", n=r.stats.n),
            ]
        hop = results.pop("hop")
        self.details["warm"] = {"loop_thread_noop_round_trip": hop.to_json(), **spread,
                                "deploy": PATTERN_KW, "serverless_deploy": DEPLOY_KW, "n": n, "warmup": w,
                                "direct": direct.to_json(), **{k: v.to_json() for k, v in results.items()}}
        bad = ", ".join(f"{k} {v.not_warm_ok}" for k, v in results.items())
        hop_rounds = spread["round_p50_ms"]["hop"]
        self.notes.append(f"warm API: every target open at once, N={n} per target in {WARM_ROUNDS} interleaved "
                          f"rounds after {w} warm-up calls (not warm ok: {bad}); the sync facade's own thread hop "
                          f"(a no-op coroutine through harness._loop.LoopThread): p50 {fmt_ms(hop.stats.p50)}, "
                          f"p99 {fmt_ms(hop.stats.p99)}, its p50 per round {fmt_ms(min(hop_rounds))} to "
                          f"{fmt_ms(max(hop_rounds))}")

    def http(self) -> None:
        """POST /invoke per pattern vs the bare endpoint, all served at once and measured in interleaved rounds."""
        n, w = self.size["http"], self.size["http_warmup"]
        rounds = HTTP_ROUNDS
        results: dict[str, HttpResult] = http_interleaved(PATTERNS, n, w, rounds)
        bare_result = results.pop("bare")
        bare = bare_result.stats
        half = len(bare_result.samples_ms) // 2
        first, last = Stats.of(bare_result.samples_ms[:half]), Stats.of(bare_result.samples_ms[half:])
        for pattern, r in results.items():
            self.rows += [
                Row(f"http_{pattern}_p50", f"POST /invoke, {pattern}, p50", r.stats.p50, "ms", "bare endpoint",
                    bare.p50, "ratio", HTTP_TARGET_RATIO_BY_PATTERN.get(pattern, HTTP_TARGET_RATIO), "ratio",
                    n=r.stats.n),
                Row(f"http_{pattern}_p99", f"POST /invoke, {pattern}, p99", r.stats.p99, "ms", "bare endpoint",
                    bare.p99, "ratio", n=r.stats.n),
            ]
        self.details["http"] = {"n": n, "warmup": w, "rounds": rounds, "bare": bare.to_json(),
                                "bare_first_half": first.to_json(), "bare_second_half": last.to_json(),
                                **{k: v.to_json() for k, v in results.items()}}
        bad = ", ".join(f"{k} {v.not_warm_ok}" for k, v in results.items())
        self.notes.append(f"HTTP: gateway and bare endpoint both served with {stack()}; "
                          f"one keep-alive httpx.Client per target, every target served at once, N={n} per "
                          f"target in {rounds} interleaved rounds after {w} warm-up requests; bare endpoint p50 "
                          f"{fmt_ms(first.p50)} in the first half of the rounds, {fmt_ms(last.p50)} in the second "
                          f"(not warm ok: {bad})")

    def throughput(self) -> None:
        """Requests/s with 8 connections: bare endpoint, container (2 replicas), serverless."""
        secs = self.size["throughput_s"]
        tool = load_tool()
        res = throughput_interleaved(("bare", "container", "serverless"), secs, THROUGHPUT_ROUNDS)
        bare = res["bare"]
        for target, label in (("container", "container, 2 replicas"), ("serverless", "serverless")):
            r = res[target]
            self.rows.append(Row(f"throughput_{target}", f"gateway throughput, {label}", r.rps, "req/s",
                                 "bare endpoint", bare.rps, "ratio", THROUGHPUT_TARGET_RATIO, "ratio", ">=",
                                 n=r.requests))
        self.details["throughput"] = {"tool": tool, "wrk_version": _wrk_version() if tool == "wrk" else None,
                                      "connections": CONNECTIONS, "duration_s": secs, "rounds": THROUGHPUT_ROUNDS,
                                      **{k: v.to_json() for k, v in res.items()}}
        slice_s = slice_seconds(secs, THROUGHPUT_ROUNDS)
        how = f"wrk -t1 -c{CONNECTIONS}, {THROUGHPUT_ROUNDS} interleaved runs of {slice_s} s per " \
            "target, every target served at once" if tool == "wrk" else \
            f"python -m benchmarks.loadgen ({CONNECTIONS} connections, {secs:g} s; wrk not installed)"
        errs = ", ".join(f"{k} {v.non_2xx}/{v.errors}" for k, v in res.items())
        self.notes.append(f"throughput: load from {how}, another process; p50 latency under load: "
                          + ", ".join(f"{k} {fmt_ms(v.p50_ms)}" for k, v in res.items())
                          + f"; non-2xx/socket errors: {errs}; CPU per request in this process (the server): "
                          + ", ".join(f"{k} {v.server_cpu_us_per_request:.0f} µs" for k, v in res.items())
                          + "; in the instances: "
                          + ", ".join(f"{k} {v.instances_cpu_us_per_request:.0f} µs" for k, v in res.items()
                                      if k != "bare"))

    def sustained(self) -> None:
        """p99 through a long load: serverless beside the bare endpoint (records on disk, memory bounded)."""
        secs = self.size["sustained_s"]
        res = sustained(secs)
        bare = res["bare"].load
        for key, label in (("serverless", "serverless"),):
            r = res[key].load
            self.rows.append(Row(f"sustained_p99_{key}", f"p99 over {secs:g} s of load, {label}", r.p99_ms, "ms",
                                 "bare endpoint", bare.p99_ms, "ratio", n=r.requests))
        self.details["sustained"] = {"duration_s": secs, **{k: v.to_json() for k, v in res.items()}}
        self.notes.append(f"sustained: each target alone, {secs:g} s of load after 1 s of warm-up; "
                          + "; ".join(f"{k}: {v.load.requests:,} requests, max {fmt_ms(v.load.max_ms)}, non-2xx "
                                      f"{v.load.non_2xx}, {len(v.gen2_pauses_ms)} generation-2 collections"
                                      + (f" (longest {fmt_ms(max(v.gen2_pauses_ms))})" if v.gen2_pauses_ms else "")
                                      for k, v in res.items()))

    def _cold_rows(self, key: str, label: str, cold: ColdResult, target: bool) -> Stats:
        share = Stats.of(cold.harness_share_ms(self.import_ms))
        self.rows += [
            Row(f"{key}_p50", f"{label}, harness share, p50", share.p50, "ms", "fork", self.fork_ms, "ratio",
                COLD_TARGET_MS if target else None, n=share.n),
            Row(f"{key}_p90", f"{label}, harness share, p90", share.p90, "ms", "fork", self.fork_ms, "ratio",
                n=share.n),
        ]
        return share

    def cold(self) -> None:
        """The harness's share of a serverless cold start and of a container replica start."""
        n = self.size["cold"]
        cold = cold_samples(n)
        self.machine.setdefault("memory_enforcement", cold.memory_enforcement)
        poll = cold_samples(n, no_cgroup=True) if cold.memory_enforcement == "cgroup" else None
        container = container_cold_samples(n)
        share = self._cold_rows("cold_share", "cold start, serverless", cold, True)
        poll_share = Stats.of(poll.harness_share_ms(self.import_ms) if poll is not None else [])
        if poll is not None:
            self.rows.append(Row("cold_share_poll_p50", "cold start, serverless, harness share, p50, no cgroup",
                                 poll_share.p50, "ms", "fork", self.fork_ms, "ratio", n=poll_share.n))
        wall = Stats.of(cold.wall_ms)
        self.rows.append(Row("cold_wall_p50", "cold call, serverless, caller-seen wall, p50", wall.p50, "ms",
                             "python -c pass", self.python_ms, "ratio", n=wall.n))
        init, rec_over = Stats.of(cold.init_ms), Stats.of(cold.record_overhead_ms)
        self.rows += [
            Row("cold_init_p50", "cold call, serverless, Record.init_ms, p50", init.p50, "ms", "agent import",
                self.import_ms, "difference", n=init.n),
            Row("cold_record_overhead_p50", "cold call, serverless, latency-init-duration, p50", rec_over.p50, "ms",
                n=rec_over.n),
        ]
        c_share = self._cold_rows("cold_container", "replica start, container", container, True)
        self.details["cold"] = {
            **cold.to_json(), "harness_share_ms": share.to_json(), "wall": wall.to_json(),
            "record_init": init.to_json(), "record_overhead": rec_over.to_json(),
            "agent_import_ms_subtracted": self.import_ms, "deploy": COLD_KW}
        self.details["cold_no_cgroup"] = None if poll is None else {
            **poll.to_json(), "harness_share_ms": poll_share.to_json(), "env": {"HARNESS_NO_CGROUP": "1"}}
        self.details["cold_container"] = {**container.to_json(), "deploy": CONTAINER_KW,
                                          "harness_share_ms": c_share.to_json()}
        line = f"cold: serverless N={share.n} (dropped {cold.dropped})"
        if poll is not None:
            line += f", no-cgroup N={poll_share.n} (dropped {poll.dropped})"
        self.notes.append(line + f", container N={c_share.n} (dropped {container.dropped}); share = caller-seen "
                                 f"wall - echo import ({fmt_ms(self.import_ms)}) - injected overhead (0)")

    def compression(self) -> None:
        """2 h daemon task, 15 min Lambda timeout, HPA cycle, on the virtual clock."""
        results: list[tuple[str, CompressionResult]] = [
            ("daemon", daemon_two_hours()), ("lambda", lambda_timeout()), ("hpa", hpa_cycle())]
        for key, r in results:
            self.rows += [
                Row(f"compress_{key}_wall", f"{r.scenario}: wall", r.wall_s, "s", n=int(r.ok)),
                Row(f"compress_{key}_x", f"{r.scenario}: compression", r.compression, "x",
                    target=COMPRESSION_TARGET, target_op=">=", n=int(r.ok)),
                Row(f"compress_{key}_error", f"{r.scenario}: error of reported durations", r.error * 100, "%",
                    target=COMPRESSION_ERROR_TARGET, n=int(r.ok)),
            ]
        self.details["compression"] = {"time_scale": COMPRESSION_SCALE or "virtual",
                                       **{k: r.to_json() for k, r in results}}
        self.notes.append("compression: " + "; ".join(
            f"{k} reported {r.reported_s:,.1f} platform s in {r.wall_s:.3f} wall s ({'ok' if r.ok else 'NOT OK'})"
            for k, r in results))

    def timeline(self) -> None:
        """One platform timeline: daemon echo and the HPA burst at every clock; a day of traffic."""
        daemon = {clock_label(sc): daemon_echo_p50(sc) for sc in DAEMON_SCALES}
        base = daemon["1"]
        for name, p50 in daemon.items():
            self.rows.append(Row(f"timeline_daemon_{name}", f"daemon echo p50, clock {name}", p50, "ms",
                                 "time_scale=1", base, "difference", TIMELINE_DAEMON_TARGET_MS, "difference"))
        hpa = {clock_label(sc): hpa_first_scale_up(sc) for sc in HPA_SCALES}
        for name, (first, _) in hpa.items():
            self.rows.append(Row(f"timeline_hpa_{name}", f"HPA burst: first scale-up, clock {name}", first, "s",
                                 "the first sync", HPA_FIRST_SYNC_S, "difference", HPA_TARGET_S, "difference",
                                 n=0 if first != first else 1))
        day = day_of_traffic(self.size["day_tasks"])
        self.rows += [
            Row("timeline_day_wall", f"a day of traffic ({day.tasks:,} tasks of a 2 s LLM wait): wall", day.wall_s,
                "s", target=DAY_TARGET_S if day.tasks >= 50_000 else None, n=int(day.ok == day.tasks)),
            Row("timeline_day_x", "a day of traffic: compression", day.compression, "x", n=int(day.ok == day.tasks)),
        ]
        self.details["timeline"] = {
            "daemon_echo_p50_ms": daemon, "hpa_first_scale_up_s": {k: v[0] for k, v in hpa.items()},
            "hpa_burst_wall_s": {k: v[1] for k, v in hpa.items()},
            "day": {**{k: v for k, v in day.__dict__.items()}, "compression": day.compression}}
        self.notes.append(
            f"timeline: a day of traffic: {day.tasks:,} tasks ({day.outcomes}) over {day.platform_s / 3600:.1f} "
            f"platform h in {day.wall_s:.1f} s; p50 {day.latency_p50_ms:,.1f} ms, p95 {day.latency_p95_ms:,.1f} ms; "
            f"peak {day.peak_replicas} replica(s), {day.replica_seconds / 3600:,.1f} replica-hours, compute "
            f"${day.compute_usd:.2f}, LLM ${day.llm_usd:.2f}; HPA burst wall s: "
            + ", ".join(f"{k} {v[1]:.2f}" for k, v in hpa.items()))

    def daemon(self) -> None:
        """No-op tasks/s with 2 workers per queue backend vs the raw broker."""
        s = self.size
        out = {}
        for b in BACKENDS:
            n, n_raw = (s["sqs_tasks"], s["sqs_raw"]) if b == "sqs" else (s["daemon_tasks"], s["daemon_raw"])
            r = daemon_throughput(b, n, n_raw)
            out[b] = r
            label = {"memory": "memory", "redis": "Redis", "rabbitmq": "RabbitMQ", "sqs": "SQS (moto)"}[b]
            self.rows.append(Row(f"daemon_{b}", f"daemon throughput, 2 workers, {label}", r.tasks_per_s,
                                 "tasks/s", "raw broker", r.raw_per_s, "ratio", n=r.tasks, skipped=r.skipped))
        self.details["daemon"] = {k: v.to_json() for k, v in out.items()}
        self.notes.append("daemon floors (messages/s, same client library): " + "; ".join(
            f"{k}: {v.raw_what} {v.raw_per_s:,.0f}, harness Queue class {v.queue_class_per_s:,.0f}"
            for k, v in out.items() if v.skipped is None)
            + "".join(f"; {k} skipped: {v.skipped}" for k, v in out.items() if v.skipped))

    def memory(self) -> None:
        """RSS per warm instance vs a bare interpreter; control-plane RSS with N warm instances."""
        n = self.size["memory_instances"]
        m = run_fleet("memory", n)
        inst = m["instance"].get("rss_mb", 0.0)
        self.rows += [
            Row("memory_instance", "RSS per warm instance (echo)", inst, "MB",
                "bare interpreter + agent", m["bare_rss_mb"], "difference", MEMORY_TARGET_MB, "difference",
                n=1 if m["instance"] else 0),
            Row("memory_control_plane", f"control-plane RSS, {m['instances_alive']} warm serverless instances",
                m["control_rss_n_warm_mb"], "MB", "1 warm instance", m["control_rss_1_warm_mb"], "difference",
                n=m["instances_alive"]),
        ]
        self.details["memory"] = m
        grown = m["control_rss_n_warm_mb"] - m["control_rss_1_warm_mb"]
        i, b = m["instance"], m["bare_interpreter"][0]
        self.notes.append(
            f"memory: instance USS {i.get('uss_mb', 0):.1f} MB, PSS {i.get('pss_mb', 0):.1f} MB (bare: USS "
            f"{b['uss_mb']:.1f} MB, PSS {b['pss_mb']:.1f} MB); control plane +{grown / max(1, n - 1) * 1024:.0f} KB "
            f"per extra instance; {m['instances_alive']} instances: PSS sum {m['fleet_pss_mb_sum']:.0f} MB")

    def scale(self) -> None:
        """N concurrent serverless instances from zero, and a burst of N concurrent calls on them."""
        n, bursts = self.size["scale_instances"], self.size["scale_bursts"]
        r = run_fleet("scale", n, bursts)
        self.rows += [
            Row("scale_reach", f"scale: {n} serverless instances from zero", r["reach_s"], "s",
                f"fork {n} processes", r["floor_fork_s"], "ratio", n=r["instances"]),
            Row("scale_burst_p95", f"scale: burst of {n} concurrent calls, p95", r["burst_p95_ms"], "ms",
                f"{n} processes over wire.py", r["floor_burst_p95_ms"], "ratio", n=r["burst_ms"]["n"]),
        ]
        self.details["scale"] = r
        line = (f"scale: medians of {r['repeats']} fresh deployments (reach "
                + ", ".join(f"{x:.3f}" for x in r["reach_s_all"]) + f" s) of {r['instances']} instances; first "
                f"bursts {r['first_burst_cold']} cold / {r['first_burst_not_ok']} not ok; p95 = median of "
                f"{bursts} measured bursts per deployment, each after a warm-up burst "
                f"(not warm ok: {r['burst_not_warm_ok']}); closing the deployment took {r['close_s']:.2f} s")
        self.notes.append(line)

    def soak(self) -> None:
        """harness serve through a million calls (daemon: 100,000): p99, RSS and the store, probed every tenth."""
        from .soak import soak

        res = soak(self.size["soak_http"], self.size["soak_daemon"])
        for target, r in res.items():
            if r.skipped:
                self.rows.append(Row(f"soak_{target}_p99_ratio", f"soak {target}", 0.0, "x", n=0,
                                     skipped=r.skipped))
                continue
            first, last = (r.probes[1], r.probes[-1]) if len(r.probes) > 2 else (r.probes[0], r.probes[-1])
            self.rows += [
                Row(f"soak_{target}_p99_first", f"soak {target}: p99 (1 conn) at {first.calls:,} calls",
                    first.p99_ms, "ms", n=first.calls),
                Row(f"soak_{target}_p99_last", f"soak {target}: p99 (1 conn) at {last.calls:,} calls",
                    last.p99_ms, "ms", f"p99 at {first.calls:,}", first.p99_ms, "ratio", SOAK_P99_RATIO,
                    "ratio", n=last.calls),
                Row(f"soak_{target}_rss", f"soak {target}: serve RSS growth per million calls",
                    r.rss_growth_mb_per_million, "MB", target=SOAK_RSS_MB_PER_MILLION, n=last.calls),
                Row(f"soak_{target}_store", f"soak {target}: record store per million records",
                    r.store_mb_per_million, "MB", n=r.calls),
                # Records can outnumber the last probe's count: a task in flight at SIGTERM still gets one.
                Row(f"soak_{target}_report", f"soak {target}: harness report read {r.reported_calls:,} records "
                    f"({r.calls:,} answered at the last probe)", r.report_s, "s",
                    n=int(r.reported_calls >= r.calls)),
            ]
        self.details["soak"] = {k: v.to_json() for k, v in res.items()}
        self.notes.append("soak: harness serve (echo, shipped defaults, status line on) under wrk -t1 -c8 in bursts; "
                          "every tenth of the run a 10 s wrk -c1 probe; RSS is the serve process's. Probes: "
                          + "; ".join(f"{k}: " + ", ".join(f"{p.calls:,} {p.p99_ms:.2f} ms/{p.rss_mb:.0f} MB"
                                                          for p in v.probes) for k, v in res.items()))

    # ---- the run -----------------------------------------------------------------------------------------

    def execute(self) -> dict[str, Any]:
        """Floors, then every selected group; the results model (JSON-ready)."""
        started = time.monotonic()
        _progress("floors (fork, python -c pass, the echo import) ...")
        self.measure_floors()
        chosen = [g for g in GROUPS if g in self.only]
        for i, group in enumerate(chosen, 1):
            _progress(f"[{i}/{len(chosen)}] {group}: {getattr(self, group).__doc__.splitlines()[0]}")
            t0 = time.monotonic()
            step: Callable[[], None] = getattr(self, group)
            step()
            self.timings[group] = round(time.monotonic() - t0, 2)
            _progress(f"[{i}/{len(chosen)}] {group} done in {self.timings[group]:.1f} s "
                      f"({time.monotonic() - started:.0f} s so far)")
        self.machine["loadavg_end"] = _loadavg()
        self.machine.setdefault("memory_enforcement", "?")
        leftovers = _leftover_children()
        duration = round(time.monotonic() - started, 2)
        self.notes.append(f"run took {duration:.1f} s ("
                          + ", ".join(f"{k} {v:.1f}" for k, v in self.timings.items())
                          + f"); leftover child processes: {len(leftovers)}"
                          + "".join(f"\n  {p['pid']} {p['cmdline']}" for p in leftovers))
        return {
            "benchmark": "agent-deploy-harness",
            "schema": 2,
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "duration_s": duration,
            "groups": list(self.only),
            "timings_s": self.timings,
            "machine": self.machine,
            "rows": [r.to_json() for r in self.rows],
            "floors": self.floors,
            "details": self.details,
            "leftover_processes": leftovers,
        }


def _judged(row: dict[str, Any]) -> tuple[str, float | None]:
    """The quantity a row is judged on: what its target reads, else its ratio/difference column, else the value."""
    key = str(row.get("target_on") if row.get("target") is not None else (row.get("compare") or "measured"))
    if key in ("difference", "ratio") and row.get(key) is None:
        key = "measured"
    return key, row.get(key)


def compare(new: dict[str, Any], old: dict[str, Any], tolerance: float = 15.0) -> list[str]:
    """Lines comparing two results files, figure by figure, on the quantity each row is judged on.

    The change is relative (percent), except for rows in percent (the compression errors), where it is in
    percentage points and flagged past ``tolerance`` percent of the row's target. p99 rows are context:
    their tails move with the machine's other load, so the summary counts them apart.
    """
    before = {r["id"]: r for r in old.get("rows", [])}
    lines: list[str] = []
    counts = {"target": [0, 0], "context": [0, 0]}
    for r in new.get("rows", []):
        o = before.get(r["id"])
        if o is None or r.get("skipped") or o.get("skipped"):
            continue
        key, b = _judged(r)
        a = _judged(o)[1]
        if a is None or b is None:
            continue
        if r.get("unit") == "%":
            change, unit = b - a, "pp"
            ok = abs(change) <= (r.get("target") or 5.0) * tolerance / 100
        elif a == 0:
            continue
        else:
            change, unit = (b - a) / abs(a) * 100, "%"
            ok = abs(change) <= tolerance
        kind = "target" if r.get("target") is not None else "context"
        counts[kind][0] += ok
        counts[kind][1] += 1
        flag = "" if ok else f"  beyond {tolerance:g} %"
        lines.append(f"{r['id']:<28} {key:<10} {a:>11.4g} -> {b:>11.4g}  {change:+7.1f} {unit}{flag}")
    (tok, tn), (cok, cn) = counts["target"], counts["context"]
    lines.append(f"figures with a target: {tok} of {tn} within {tolerance:g} %; "
                 f"context figures (p99s, floors' ratios, no target): {cok} of {cn}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Parse options, run, write JSON, print."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure the harness's own overhead next to floors measured in the same run.")
    parser.add_argument("--quick", action="store_true", help="short run (about a minute)")
    parser.add_argument("--json", metavar="PATH", type=Path,
                        help="also write the results as JSON to PATH "
                             "(benchmarks/results/latest.json is always written)")
    parser.add_argument("--only", metavar="GROUPS", default=",".join(DEFAULT_GROUPS),
                        help=f"comma-separated groups to run (default: all but soak): {', '.join(GROUPS)}")
    parser.add_argument("--compare", metavar="OLD_JSON", type=Path,
                        help="after the run, compare each figure with a results file of an earlier run")
    args = parser.parse_args(argv)
    only = tuple(g.strip() for g in args.only.split(",") if g.strip())
    unknown = [g for g in only if g not in GROUPS]
    if unknown:
        parser.error(f"unknown group(s) {', '.join(unknown)}; expected some of: {', '.join(GROUPS)}")
    run = Run(args.quick, only)
    res = run.execute()
    text = json.dumps(res, indent=2) + "\n"
    written = []
    for path in [RESULTS_DIR / "latest.json", *([args.json] if args.json else [])]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(str(path))
    console = Console()
    if not console.is_terminal:
        console = Console(width=180)  # a pipe or file gets the full table, not 80 columns
    render(console, res["machine"], run.rows, [*run.notes, f"results: {', '.join(written)}"])
    if args.compare:
        console.print(f"compared with {args.compare}:", highlight=False)
        for line in compare(res, json.loads(args.compare.read_text())):
            console.print(line, highlight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
