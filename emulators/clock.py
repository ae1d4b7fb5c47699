"""The one clock: every emulated duration is in platform seconds and passes through here.

``time_scale`` is wall seconds per platform second. At ``time_scale=0.001`` a 15-minute limit fires after
about 0.9 s of wall time. Only *emulated* waits are scaled (cold-start overhead, ``ctx.sleep``, LLM latency,
idle expiry, backoff); the agent's own compute and import time stay real (see DESIGN.md, "One clock").
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import anyio

from .errors import ConfigError

__all__ = ["Clock", "cpu_factor"]


@dataclass(frozen=True)
class Clock:
    """Converts between platform and wall seconds and sleeps in platform seconds."""

    time_scale: float = 1.0
    _origin: float = field(default_factory=time.monotonic, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not (self.time_scale > 0):
            raise ConfigError(
                f"time_scale must be a positive number of wall seconds per platform second, "
                f"got {self.time_scale!r}; use e.g. 1.0 (real time) or 0.01 (100x faster)"
            )

    def to_wall(self, platform_s: float) -> float:
        """Wall seconds that an emulated wait of ``platform_s`` platform seconds takes."""
        return platform_s * self.time_scale

    def to_platform(self, wall_s: float) -> float:
        """Platform seconds that ``wall_s`` wall seconds of emulated waiting stand for."""
        return wall_s / self.time_scale

    def now(self) -> float:
        """Platform seconds since the clock was made, counting all wall time as emulated (idle) time.

        Used for fleet-level periods (idle expiry, warm-up pings, provisioned billing), where nothing but
        waiting happens between events.
        """
        return self.to_platform(time.monotonic() - self._origin)

    async def sleep(self, platform_s: float) -> None:
        """Wait ``platform_s`` platform seconds."""
        if platform_s > 0:
            await anyio.sleep(self.to_wall(platform_s))


def cpu_factor(memory_mb: float, mb_per_vcpu: float | None, max_vcpus: float | None = None) -> float:
    """How many platform seconds one real CPU second of single-threaded work takes.

    Platforms that tie CPU to memory (Lambda: 1,769 MB = 1 vCPU) give a function a fraction of a core below
    that size, so CPU-bound work runs proportionally slower. Above one vCPU a single thread gets no faster,
    so the factor never drops below 1 (multi-threaded speed-up is not modelled).
    """
    if not mb_per_vcpu:
        return 1.0
    vcpus = memory_mb / mb_per_vcpu
    if max_vcpus:
        vcpus = min(vcpus, max_vcpus)
    return max(1.0, 1.0 / vcpus)
