"""``harness load``'s engine room: the Locust command line, and running it as a reaped child process.

Locust runs in a child process (``python -m locust``), never in the CLI's own: its import monkey-patches
the process with gevent. The child gets a session of its own so a terminal's Ctrl-C reaches only the CLI,
which decides what to stop. On SIGINT, SIGTERM (CI job timeouts, systemd, ``docker stop``) or SIGHUP the
CLI sends Locust SIGTERM (Locust then stops its users, lets the engine host write the report, and quits),
and whatever is still alive after the grace period, the whole tree included (workers of ``--processes``,
the engine host and its instances), is killed by pid. Should the CLI itself be killed outright (SIGKILL),
Linux sends Locust SIGTERM (``PR_SET_PDEATHSIG``), and the engine host stops when Locust's pipe closes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

__all__ = ["STOP_SIGNALS", "LoadOptions", "locust_argv", "reap_tree", "run_locust", "shipped_locustfile"]


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
    memory: str | None = None  # ctx.memory's store URL for every deployment (None: a SQLite file each)
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
    if o.memory:
        argv += ["--harness-memory", o.memory]
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
    except psutil.NoSuchProcess:
        return
    _reap([root], grace_s)


def _reap(roots: list[psutil.Process], grace_s: float) -> None:
    """Terminate ``roots`` and their descendants, then kill what is left after ``grace_s``.

    ``psutil.Process`` objects, not pids: psutil checks a process is still the one it was before signalling,
    so a pid collected earlier and since reused by an unrelated process is left alone.
    """
    procs: list[psutil.Process] = []
    for root in roots:
        with contextlib.suppress(psutil.Error):
            procs += [root, *root.children(recursive=True)]
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=grace_s)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""The signals that stop a load run cleanly: Ctrl-C, a CI timeout / systemd / ``docker stop``, a closed terminal."""


def run_locust(argv: list[str], *, cwd: Path | None = None, grace_s: float = 60.0) -> int:
    """Run Locust to its end and return its exit status.

    SIGINT, SIGTERM or SIGHUP stop it cleanly (users stopped, report written, every process reaped) and
    return 128 + the signal's number (130 for Ctrl-C); a second one stops waiting and kills the tree.
    """
    with _StopSignals() as stops:
        proc = subprocess.Popen(argv, cwd=cwd, start_new_session=True, preexec_fn=_die_with_parent())
        try:
            return stops.wait(proc)
        except KeyboardInterrupt as exc:  # Ctrl-C, or one of the other stop signals (_Stopped)
            signum = getattr(exc, "signum", signal.SIGINT)
            # The engine host has a session of its own: not in Locust's tree once orphaned, so remember it now.
            descendants = _descendants(proc.pid)
            # Locust's SIGTERM handling stops the users and fires "quitting": the engine host writes the report.
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired, KeyboardInterrupt):
                stops.wait(proc, grace_s)
            # Disarmed from here: a further signal must not cut the reaping short.
            if proc.poll() is None:
                reap_tree(proc.pid)
            _reap(descendants, grace_s=2.0)
            proc.wait()
            return 128 + int(signum)
        finally:
            if proc.poll() is None:
                reap_tree(proc.pid)


class _Stopped(KeyboardInterrupt):
    """A stop signal other than Ctrl-C, raised like Ctrl-C's KeyboardInterrupt so both take one path."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _StopSignals:
    """Turns the stop signals into ``_Stopped`` while ``wait`` waits for Locust, and into nothing otherwise.

    A signal that arrives outside ``wait`` (while Locust is being started, or being reaped) is kept and
    raised by the next ``wait``, so it is neither lost nor able to interrupt ``Popen`` half-way (which would
    leave a child whose pid nobody knows). A signal ignored when the run starts (``nohup`` ignores SIGHUP)
    stays ignored. Only the main thread can handle signals: elsewhere Ctrl-C's KeyboardInterrupt is all.
    """

    def __init__(self) -> None:
        self.armed = False
        self.pending: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                if signal.getsignal(sig) is not signal.SIG_IGN:
                    self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *_: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, _frame: Any) -> None:
        if not self.armed:
            self.pending = self.pending or signum
            return
        self.armed = False
        raise _Stopped(signum)

    def wait(self, proc: subprocess.Popen[bytes], timeout: float | None = None) -> int:
        """``proc.wait(timeout)``, interrupted by ``_Stopped`` on a stop signal (one that came before, too)."""
        if self.pending is not None:
            signum, self.pending = self.pending, None
            raise _Stopped(signum)
        try:
            self.armed = True
            return proc.wait(timeout)
        finally:
            self.armed = False


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to send the child SIGTERM when this process dies, even by SIGKILL.

    libc is looked up here, in the parent: the function runs in the forked child before ``exec``, where it
    should do no more than the system call. ``None`` (no ``preexec_fn``) where there is no ``prctl``.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def set_pdeathsig() -> None:
        prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        if os.getppid() != parent:  # the parent died before the prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return set_pdeathsig


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.NoSuchProcess:
        return []
