"""Starting, watching and stopping the engine host (``harness.load.host``) from the Locust process.

The host is a child in a process group of its own (``start_new_session``): Ctrl-C in the terminal reaches
Locust, which then stops the host cleanly so the report gets written; if that fails, the whole group (host,
zygotes, instances) is killed by its group id, so nothing is left behind. Plain ``subprocess`` and
``threading``: under Locust they are gevent's cooperative versions, in unit tests the real ones.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import IO, Any

from emulators.errors import HarnessError

from .host import DONE, ERROR, READY, SERIES, STATS

__all__ = ["EngineHost", "EngineOptions"]


class EngineOptions:
    """What the host deploys: the agent under each pattern, with profiles, time scale and overrides."""

    def __init__(self, agent: str, patterns: list[str], *, profiles: list[str] | None = None,
                 time_scale: float = 0.01, sets: list[str] | None = None, reports: list[str] | None = None,
                 sample_s: float = 0.5, memory: str | None = None) -> None:
        self.agent, self.patterns, self.time_scale, self.sample_s = agent, patterns, time_scale, sample_s
        self.profiles, self.sets, self.reports = profiles or [], sets or [], reports or []
        self.memory = memory  # ctx.memory's store URL for every deployment (None: a SQLite file each)

    def argv(self) -> list[str]:
        """The host's command line."""
        out = [sys.executable, "-m", "harness.load.host", "--agent", self.agent, "--patterns",
               ",".join(self.patterns), "--time-scale", repr(self.time_scale), "--sample-s", repr(self.sample_s)]
        for flag, items in (("--profile", self.profiles), ("--set", self.sets), ("--report", self.reports)):
            for item in items:
                out += [flag, item]
        if self.memory:
            out += ["--memory", self.memory]
        return out


class EngineHost:
    """One running engine host; ``start`` returns the gateways' URLs, ``stop`` writes the report and reaps."""

    def __init__(self, options: EngineOptions,
                 on_stats: Callable[[dict[str, dict[str, Any]]], None] | None = None,
                 on_series: Callable[[dict[str, dict[str, Any]]], None] | None = None) -> None:
        self.options = options
        self.on_stats = on_stats
        self.on_series = on_series
        self.proc: subprocess.Popen[str] | None = None
        self.urls: dict[str, str] = {}
        self.profiles: dict[str, str] = {}
        self.done: dict[str, Any] = {}
        self._error: str | None = None
        self._ready = threading.Event()
        self._finished = threading.Event()
        self._reader: threading.Thread | None = None

    def start(self, timeout_s: float = 120.0) -> dict[str, str]:
        """Start the host and wait until every gateway answers; HarnessError with its message otherwise."""
        self.proc = subprocess.Popen(self.options.argv(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, start_new_session=True)
        assert self.proc.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), name="harness-host-reader",
                                        daemon=True)
        self._reader.start()
        if not self._ready.wait(timeout_s) or self._error is not None or not self.urls:
            code = self.proc.poll()
            self.kill()
            why = self._error or (f"the engine host exited with status {code}" if code is not None
                                  else f"the engine host did not start within {timeout_s:g} s")
            raise HarnessError(f"cannot start the deployments for the load test: {why}")
        return self.urls

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            tag, _, payload = line.rstrip("\n").partition(" ")
            try:
                data = json.loads(payload) if payload else {}
            except json.JSONDecodeError:
                continue
            if tag == READY:
                self.urls, self.profiles = dict(data["urls"]), dict(data.get("profiles", {}))
                self._ready.set()
            elif tag == STATS and self.on_stats is not None:
                with contextlib.suppress(Exception):  # a display glitch must not end the test
                    self.on_stats(data)
            elif tag == SERIES and self.on_series is not None:
                with contextlib.suppress(Exception):
                    self.on_series(data)
            elif tag == DONE:
                self.done = data
            elif tag == ERROR:
                self._error = str(data.get("error"))
                self._ready.set()
        self._ready.set()
        self._finished.set()

    @property
    def running(self) -> bool:
        """True while the host process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, extra: dict[str, Any] | None = None, timeout_s: float = 60.0) -> dict[str, Any]:
        """Ask the host to write its report (with ``extra`` under ``run.load``) and close; kill it if it hangs."""
        proc = self.proc
        if proc is None:
            return {}
        if proc.poll() is None and proc.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                proc.stdin.write(f"STOP {json.dumps(extra or {}, default=str)}\n")
                proc.stdin.flush()
                proc.stdin.close()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
        self._finished.wait(5)
        self.kill()  # the group: instances a crashed host could not reap
        return self.done

    def kill(self) -> None:
        """Kill the host's whole process group (host, zygotes, instances) and wait for the host."""
        proc = self.proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError, ValueError):
                    pipe.close()
