"""``python -m benchmarks [--quick] [--json PATH]``: measure, print one table, write JSON.

Exit status 0 unless the run crashed: timing never fails it. Order matters: the fork floor is measured
first, while this process has no threads (the sync facade starts one), then the other floors, the warm
figures and the cold-start figures. Every deployment is a context manager, so every process it started is
reaped; the run checks for leftover child processes at the end and reports them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console

from . import RESULTS_DIR
from ._stats import Stats
from .cold import COLD_KW, cold_samples
from .floors import agent_import_ms, fork_floor_ms, machine_facts, median, python_start_ms
from .report import Row, fmt_ms, render
from .warm import DEPLOY_KW, direct_call, warm_async, warm_sync

WARM_TARGET_MS = 0.5  # the harness adds at most this much to a warm invoke at p50
COLD_TARGET_MS = 15.0  # the harness's share of a cold start at p50

SIZES = {
    # name: (warm N, warm-up calls, cold samples, fork floor N, python -c pass N, agent import N)
    "full": (2000, 200, 30, 50, 10, 5),
    "quick": (300, 50, 10, 50, 10, 3),
}


def _leftover_children() -> list[dict[str, Any]]:
    """Processes still descending from this one (should be none once every deployment closed)."""
    kids: list[psutil.Process] = []
    for _ in range(10):
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


def run(quick: bool) -> tuple[dict[str, Any], list[Row]]:
    """Run every figure; return the results model (JSON-ready) and the table rows."""
    started = time.monotonic()
    n_warm, n_warmup, n_cold, n_fork, n_python, n_import = SIZES["quick" if quick else "full"]
    machine = machine_facts()
    machine["quick"] = quick

    fork = fork_floor_ms(n_fork)
    python = python_start_ms(n_python)
    imports = agent_import_ms(n_import)
    fork_ms, python_ms, import_ms = median(fork), median(python), median(imports)

    direct = direct_call(n_warm, n_warmup)
    sync = warm_sync(n_warm, n_warmup)
    machine["memory_enforcement"] = sync.memory_enforcement
    asyn = warm_async(n_warm, n_warmup)
    cold = cold_samples(n_cold)
    # Where the default enforces memory with a cgroup, the same run with the RSS poller shows its cost.
    poll = cold_samples(n_cold, no_cgroup=True) if cold.memory_enforcement == "cgroup" else None

    share = Stats.of(cold.harness_share_ms(import_ms))
    wall = Stats.of(cold.wall_ms)
    rec_over = Stats.of(cold.record_overhead_ms)
    init = Stats.of(cold.init_ms)
    poll_share = Stats.of(poll.harness_share_ms(import_ms) if poll is not None else [])
    rows = [
        Row("warm_sync_p50", "warm invoke, sync API, p50", sync.stats.p50, "direct call", direct.stats.p50,
            "difference", WARM_TARGET_MS, "difference"),
        Row("warm_sync_p99", "warm invoke, sync API, p99", sync.stats.p99, "direct call", direct.stats.p99,
            "difference"),
        Row("warm_async_p50", "warm invoke, async API, p50", asyn.stats.p50, "direct call", direct.stats.p50,
            "difference", WARM_TARGET_MS, "difference"),
        Row("warm_async_p99", "warm invoke, async API, p99", asyn.stats.p99, "direct call", direct.stats.p99,
            "difference"),
        Row("cold_share_p50", "cold start, harness share, p50", share.p50, "fork", fork_ms, "ratio",
            COLD_TARGET_MS, n=share.n),
        Row("cold_share_p90", "cold start, harness share, p90", share.p90, "fork", fork_ms, "ratio",
            n=share.n),
        *([Row("cold_share_poll_p50", "cold start, harness share, p50, no cgroup", poll_share.p50, "fork",
               fork_ms, "ratio", n=poll_share.n)] if poll is not None else []),
        Row("cold_wall_p50", "cold call, caller-seen wall, p50", wall.p50, "python -c pass", python_ms,
            "ratio", n=wall.n),
        Row("cold_init_p50", "cold call, Record.init_ms, p50", init.p50, "agent import", import_ms,
            "difference", n=init.n),
        Row("cold_record_overhead_p50", "cold call, latency-init-duration, p50", rec_over.p50,
            n=rec_over.n),
    ]
    leftovers = _leftover_children()
    result = {
        "benchmark": "agent-deploy-harness",
        "schema": 1,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - started, 2),
        "machine": machine,
        "rows": [r.to_json() for r in rows],
        "floors": {
            "fork_exit_waitpid_ms": {"median": fork_ms, "stats": Stats.of(fork).to_json()},
            "python_c_pass_ms": {"median": python_ms, "stats": Stats.of(python).to_json()},
            "echo_import_fresh_interpreter_ms": {"median": import_ms, "stats": Stats.of(imports).to_json()},
        },
        "details": {
            "warm": {"deploy": DEPLOY_KW, "n": n_warm, "warmup": n_warmup, "direct": direct.to_json(),
                     "sync": sync.to_json(), "async": asyn.to_json()},
            "cold": {**cold.to_json(), "harness_share_ms": share.to_json(), "wall": wall.to_json(),
                     "record_init": init.to_json(), "record_overhead": rec_over.to_json(),
                     "agent_import_ms_subtracted": import_ms, "deploy": COLD_KW},
            "cold_no_cgroup": None if poll is None else {
                **poll.to_json(), "harness_share_ms": poll_share.to_json(),
                "record_overhead": Stats.of(poll.record_overhead_ms).to_json(),
                "env": {"HARNESS_NO_CGROUP": "1"}},
        },
        "leftover_processes": leftovers,
    }
    return result, rows


def _notes(res: dict[str, Any]) -> list[str]:
    """The lines printed under the table: floors, sample counts, run time, leftovers."""
    fork = res["floors"]["fork_exit_waitpid_ms"]
    py = res["floors"]["python_c_pass_ms"]
    imp = res["floors"]["echo_import_fresh_interpreter_ms"]
    warm, cold, poll = res["details"]["warm"], res["details"]["cold"], res["details"]["cold_no_cgroup"]
    samples = (f"samples: warm N={warm['n']} after {warm['warmup']} warm-up calls (not warm ok: sync "
               f"{warm['sync']['not_warm_ok']}, async {warm['async']['not_warm_ok']}); "
               f"cold N={cold['harness_share_ms']['n']} (dropped: {cold['dropped_not_cold_ok']})")
    if poll is not None:
        samples += f"; no-cgroup N={poll['harness_share_ms']['n']} (dropped: {poll['dropped_not_cold_ok']})"
    left = res["leftover_processes"]
    return [
        f"floors: fork+_exit+waitpid {fmt_ms(fork['median'])} (median of {fork['stats']['n']}); "
        f"python -c pass {fmt_ms(py['median'])} (median of {py['stats']['n']}); "
        f"echo import (fresh interpreter) {fmt_ms(imp['median'])} (median of {imp['stats']['n']})",
        samples,
        f"run took {res['duration_s']:.1f} s; leftover child processes: {len(left)}"
        + "".join(f"\n  {p['pid']} {p['cmdline']}" for p in left),
    ]


def main(argv: list[str] | None = None) -> int:
    """Parse options, run, write JSON, print."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure the harness's own overhead next to floors measured in the same run.")
    parser.add_argument("--quick", action="store_true", help="short run (a few seconds)")
    parser.add_argument("--json", metavar="PATH", type=Path,
                        help="also write the results as JSON to PATH "
                             "(benchmarks/results/latest.json is always written)")
    args = parser.parse_args(argv)
    res, rows = run(args.quick)
    text = json.dumps(res, indent=2) + "\n"
    written = []
    for path in [RESULTS_DIR / "latest.json", *([args.json] if args.json else [])]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(str(path))
    console = Console()
    if not console.is_terminal:
        console = Console(width=140)  # a pipe or file gets the full table, not 80 columns
    render(console, res["machine"], rows, [*_notes(res), f"results: {', '.join(written)}"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
