"""``harness load``'s engine room: the Locust command line, and running it as a reaped child process.

Locust runs in a child process (``python -m locust``), never in the CLI's own: its import monkey-patches
the process with gevent. The child gets a session of its own so one signal reaches exactly it; on Ctrl-C
it gets SIGTERM (Locust then stops its users, lets the engine host write the report, and quits), and
whatever is still alive after the grace period, the whole tree included (workers of ``--processes``, the
engine host and its instances), is killed by pid.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import psutil

__all__ = ["LoadOptions", "locust_argv", "reap_tree", "run_locust", "shipped_locustfile"]


def shipped_locustfile() -> Path:
    """The locustfile installed with the package (four pattern users and the harness shape)."""
    return Path(__file__).with_name("locustfile.py")


@dataclass(frozen=True)
class LoadOptions:
    """Everything ``harness load`` passes to Locust."""

    agent: str | None
    patterns: str = "all"
    shape: str = "steady"
    users: int = 10
    spawn_rate: float | None = None
    run_time: str = "60s"
    time_scale: float = 0.01
    scenario: Path | None = None
    profiles: tuple[str, ...] = ()
    sets: tuple[str, ...] = ()
    out: Path = Path("load-report")
    web: bool = False
    web_port: int = 8089
    processes: int | None = None
    harness_url: str | None = None
    locustfile: Path | None = None
    extra: tuple[str, ...] = field(default_factory=tuple)  # passed to locust as is

    @property
    def report_json(self) -> Path:
        """The harness JSON report."""
        return self.out / "report.json"


def locust_argv(o: LoadOptions) -> list[str]:
    """The ``python -m locust`` command line for ``o``."""
    argv = [sys.executable, "-m", "locust", "-f", str(o.locustfile or shipped_locustfile()),
            "--patterns", o.patterns, "--shape", o.shape, "--users", str(o.users),
            "--spawn-rate", f"{o.spawn_rate if o.spawn_rate is not None else max(1.0, float(o.users)):g}",
            "--run-time", o.run_time, "--time-scale", repr(o.time_scale),
            # Failed invocations are the data of a load test, not an error of the run: gate with harness compare.
            "--exit-code-on-error", "0",
            # Let users finish the call they are in, so every request a gateway answered is counted.
            "--stop-timeout", "10"]
    if o.agent:
        argv += ["--agent", o.agent]
    if o.scenario is not None:
        argv += ["--scenario", str(o.scenario)]
    if o.profiles:
        argv += ["--harness-profile", ",".join(o.profiles)]
    if o.sets:
        argv += ["--harness-set", ",".join(o.sets)]
    if o.harness_url:
        argv += ["--harness-url", o.harness_url]
    if o.processes:
        argv += ["--processes", str(o.processes)]
    if o.web:
        argv += ["--web-port", str(o.web_port)]
    else:
        argv += ["--headless", "--csv", str(o.out / "locust"), "--html", str(o.out / "locust.html")]
    # The JSON report (for harness compare) and its Markdown rendering (for a CI job summary).
    argv += ["--harness-report", f"{o.report_json},{o.out / 'report.md'}"]
    return argv + list(o.extra)


def reap_tree(pid: int, grace_s: float = 5.0) -> None:
    """Kill ``pid`` and every descendant (SIGTERM, then SIGKILL after ``grace_s``), by pid."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=grace_s)


def run_locust(argv: list[str], *, cwd: Path | None = None, grace_s: float = 60.0) -> int:
    """Run Locust to its end; Ctrl-C stops it cleanly (report written) and returns 130."""
    proc = subprocess.Popen(argv, cwd=cwd, start_new_session=True)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        # Locust's SIGTERM handler stops the users and fires "quitting": the engine host writes the report.
        descendants = _descendants(proc.pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            reap_tree(proc.pid)
        for pid in descendants:  # the engine host has a session of its own: not in Locust's tree once orphaned
            reap_tree(pid, grace_s=2.0)
        proc.wait()
        return 130
    finally:
        if proc.poll() is None:
            reap_tree(proc.pid)


def _descendants(pid: int) -> list[int]:
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []
