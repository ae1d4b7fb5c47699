"""The Docker instance runtime: one container per instance, behind the same seam as the process runtime.

``runtime="docker"`` swaps the zygote for ``DockerSpawner``: every instance is a real container with the
profile's memory cap (no swap) and CPU quota, a read-only root and a size-capped ``/tmp``, running the same
``emulators.runtime.child`` protocol over a unix socket in the run directory. Everything created carries
the label ``agent-deploy-harness.run=<run id>``, so ``harness clean`` can remove what a killed run left.
The ``docker`` SDK is imported only when this runtime (or a container backend) is used.
"""

from __future__ import annotations

from . import interp
from .engine import LABEL, RUNTIMES, clean, connect, engine_problem, parse_runtime
from .image import dockerfile
from .spawner import DockerMemoryCap, DockerSpawner, cpu_quota

__all__ = [
    "LABEL",
    "RUNTIMES",
    "DockerMemoryCap",
    "DockerSpawner",
    "clean",
    "connect",
    "cpu_quota",
    "dockerfile",
    "interp",
    "engine_problem",
    "parse_runtime",
]
