"""End to end: a load run stops cleanly on SIGTERM, SIGINT and SIGHUP, not only on a terminal's Ctrl-C.

CI job timeouts, systemd and ``docker stop`` send SIGTERM; a closed terminal sends SIGHUP. Each test starts
a short run, waits until every gateway has answered calls, takes the whole process tree (the CLI, Locust,
its workers, the engine host in its own session, zygotes, instances), sends one signal, and checks that
the run exits within ``STOP_BOUND_S``, wrote its report, and left no process of that tree behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

from harness.load.runner import STOP_SIGNALS, reap_tree

from .test_load import LOCUSTFILE, ROOT, SCENARIOS, _free_port
from .test_load_web import _wait_http

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

# docker stop's default grace before its SIGKILL; measured here: about 1 s, 2.5 s with --processes 2.
STOP_BOUND_S = 10.0
PATTERNS = ("serverless", "container")
RUN = ["--scenario", str(SCENARIOS / "smoke.toml"), "--patterns", ",".join(PATTERNS), "--users", "4",
       "--time-scale", "0.01"]


class _Run:
    """One process under test, its output read in the background; ``tree`` is what it had running."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        self.lines: list[str] = []
        self.tree: list[psutil.Process] = [psutil.Process(self.proc.pid)]
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_serving(self, timeout_s: float = 60.0) -> None:
        """Wait until every pattern's gateway has answered calls, then take the process tree."""
        deadline = time.monotonic() + timeout_s
        urls: dict[str, str] = {}
        while not urls:  # Locust logs "harness: load test against serverless http://..., container http://..."
            found = re.search(r"harness: load test against (.+)", self.output)
            if found:
                urls = dict(item.split(" ") for item in found.group(1).strip().split(", "))
            assert self.proc.poll() is None, self.output[-4000:]
            assert time.monotonic() < deadline, f"the run never started:\n{self.output[-4000:]}"
            time.sleep(0.1)
        assert set(urls) == set(PATTERNS), urls
        while not all(_calls(url) > 0 for url in urls.values()):
            assert time.monotonic() < deadline, f"no calls served:\n{self.output[-4000:]}"
            time.sleep(0.1)
        self.tree += psutil.Process(self.proc.pid).children(recursive=True)
        cmdlines = " ".join(" ".join(_cmdline(p)) for p in self.tree)
        assert "harness.load.host" in cmdlines and "emulators.runtime.zygote" in cmdlines, cmdlines

    def stop(self, sig: int) -> float:
        """Send ``sig``; return how long the process took to exit."""
        t0 = time.monotonic()
        os.kill(self.proc.pid, sig)
        try:
            self.proc.wait(STOP_BOUND_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {STOP_BOUND_S:g} s after {signal.Signals(sig).name}:\n{self.output[-4000:]}")
        return time.monotonic() - t0

    def left(self, grace_s: float = 2.0) -> list[str]:
        """The processes of ``tree`` still running ``grace_s`` after the exit (zombies are gone already)."""
        deadline = time.monotonic() + grace_s
        while True:
            alive = [p for p in self.tree if _running(p)]
            if not alive or time.monotonic() > deadline:
                return [f"{p.pid} {' '.join(_cmdline(p))[:100]}" for p in alive]
            time.sleep(0.05)

    def reap(self) -> None:
        """Kill everything this run had running (a failed test must not leak its tree into the next)."""
        reap_tree(self.proc.pid, grace_s=2.0)
        for p in self.tree:
            with contextlib.suppress(psutil.Error):
                p.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)


def _calls(url: str) -> int:
    try:
        with urllib.request.urlopen(f"{url}/stats", timeout=5) as r:
            return int(json.loads(r.read()).get("summary", {}).get("calls", 0))
    except OSError:
        return 0


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


def _running(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _swarm(port: int) -> None:
    """Press the web UI's Start: the run's settings came on the command line."""
    base = f"http://127.0.0.1:{port}"
    _wait_http(f"{base}/", 30)
    data = urllib.parse.urlencode({"user_count": 4, "spawn_rate": 4}).encode()
    with urllib.request.urlopen(f"{base}/swarm", data=data, timeout=10) as r:
        assert json.loads(r.read())["success"], "the web UI refused to start the run"


def _assert_report(path: Path) -> dict[str, Any]:
    """The report has each pattern's calls and Locust's totals (sent by Locust when it stopped the host)."""
    assert path.is_file(), f"no report at {path}"
    report: dict[str, Any] = json.loads(path.read_text())
    assert all(report["summaries"][p]["calls"] > 0 for p in PATTERNS), report["summaries"]
    assert report["run"]["load"]["locust"]["requests"] > 0, report["run"]["load"].get("locust")
    return report


@pytest.mark.parametrize("web", [False, True], ids=["headless", "web"])
@pytest.mark.parametrize("sig", STOP_SIGNALS, ids=lambda s: s.name)
def test_harness_load_stops_on_a_signal_with_a_report_and_no_process_left(tmp_path: Path, sig: signal.Signals,
                                                                          web: bool) -> None:
    """A stop signal mid-run ends `harness load` promptly with 128 + signal, the report written, nothing left."""
    argv = [sys.executable, "-m", "harness.cli", "load", *RUN, "--run-time", "60s", "--out", str(tmp_path)]
    port = _free_port()
    if web:
        argv += ["--web", "--web-port", str(port)]
    run = _Run(argv)
    try:
        if web:
            _swarm(port)
        run.wait_serving()
        run.stop(sig)
        assert run.proc.returncode == 128 + sig, run.output[-4000:]
        assert run.left() == []
    except BaseException:
        run.reap()
        raise
    assert f"interrupted ({sig.name})" in run.output
    _assert_report(tmp_path / "report.json")


def test_harness_load_with_processes_stops_on_sigterm_with_no_worker_left(tmp_path: Path) -> None:
    """SIGTERM to `harness load --processes 2` stops the master, its two workers and the host, with a report."""
    run = _Run([sys.executable, "-m", "harness.cli", "load", *RUN, "--run-time", "60s", "--processes", "2",
                "--out", str(tmp_path)])
    try:
        run.wait_serving()
        assert sum("locust" in _cmdline(p) for p in run.tree) == 3, run.tree  # the master and two workers
        run.stop(signal.SIGTERM)
        assert run.proc.returncode == 128 + signal.SIGTERM, run.output[-4000:]
        assert run.left() == []
    except BaseException:
        run.reap()
        raise
    _assert_report(tmp_path / "report.json")


@pytest.mark.parametrize(("sig", "mode"), [(signal.SIGTERM, "headless"), (signal.SIGHUP, "headless"),
                                           (signal.SIGTERM, "web")], ids=["SIGTERM-headless", "SIGHUP-headless",
                                                                          "SIGTERM-web"])
def test_locust_by_hand_stops_its_engine_host_on_a_signal(tmp_path: Path, sig: signal.Signals, mode: str) -> None:
    """SIGTERM or SIGHUP to Locust run by hand on loadtests/locustfile.py stops its host after the report."""
    report = tmp_path / "report.json"
    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *RUN, "--spawn-rate", "4",
            "--harness-report", str(report)]
    if mode == "web":  # the web UI starting the run itself: Locust's own SIGTERM handler is in force
        argv += ["--web-host", "127.0.0.1", "--web-port", str(_free_port()), "--autostart"]
    else:  # a headless run: before the fix, SIGTERM killed Locust outright mid-run
        argv += ["--headless", "--run-time", "60s"]
    run = _Run(argv)
    try:
        run.wait_serving()
        run.stop(sig)
        assert run.proc.returncode >= 0, f"killed by the signal:\n{run.output[-4000:]}"
        assert run.left() == []
    except BaseException:
        run.reap()
        raise
    assert "harness: deployments stopped" in run.output, run.output[-4000:]  # Locust waited for the host
    _assert_report(report)
