"""Machine facts and the floors the harness's figures are compared with, all measured in the same run.

- ``fork``: ``os.fork()`` + the child's ``os._exit(0)`` + ``waitpid`` in this process: the least any new
  instance process can cost (the harness forks instances from a pre-started zygote).
- ``python -c pass`` via ``subprocess.run``: an interpreter start, what a spawn-per-cold-start would cost.
- the echo agent's own import (``importlib`` of the file, timed inside a fresh interpreter): the part of a
  cold start that is the agent's and not the harness's.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any

from emulators.loops import loop_name
from emulators.serving import fastest_http

from . import ECHO_PATH

__all__ = ["agent_import_ms", "fork_floor_ms", "machine_facts", "median", "python_start_ms"]

_IMPORT_PROBE = """\
import importlib.util, sys, time
path = sys.argv[1]
t0 = time.perf_counter_ns()
spec = importlib.util.spec_from_file_location("echo", path)
module = importlib.util.module_from_spec(spec)
sys.modules["echo"] = module
spec.loader.exec_module(module)
module.agent
print(time.perf_counter_ns() - t0)
"""


def machine_facts() -> dict[str, Any]:
    """Python, CPUs, platform and load: what a reader needs to compare runs across machines."""
    cpu_model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        cpu_model = platform.processor()
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 0
    try:
        load = list(os.getloadavg())
    except OSError:
        load = []
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "cpu_model": cpu_model,
        "platform": platform.platform(),
        "loadavg": [round(x, 2) for x in load],
        # The HTTP stack the gateway and the bare floor are served on (both the same; issue 23).
        "http_stack": f"{fastest_http()} on {loop_name()}",
        # Bytecode caching changes how long an import takes (instances and the probe alike).
        "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE", ""),
    }


def fork_floor_ms(n: int) -> list[float]:
    """``n`` samples of fork + child ``_exit(0)`` + ``waitpid``, in ms (call before any thread starts)."""
    out: list[float] = []
    pc = time.perf_counter_ns
    for _ in range(n):
        t0 = pc()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        out.append((pc() - t0) / 1e6)
    return out


def python_start_ms(n: int) -> list[float]:
    """``n`` samples of ``subprocess.run([python, "-c", "pass"])``, in ms."""
    out: list[float] = []
    pc = time.perf_counter_ns
    for _ in range(n):
        t0 = pc()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        out.append((pc() - t0) / 1e6)
    return out


def agent_import_ms(n: int) -> list[float]:
    """``n`` samples of the echo agent's import as an instance does it, each in a fresh interpreter, in ms."""
    out: list[float] = []
    for _ in range(n):
        done = subprocess.run([sys.executable, "-c", _IMPORT_PROBE, str(ECHO_PATH)], check=True,
                              capture_output=True, text=True)
        out.append(int(done.stdout.strip()) / 1e6)
    return out


def median(values: list[float]) -> float:
    """The median (0.0 for no values)."""
    return statistics.median(values) if values else 0.0
