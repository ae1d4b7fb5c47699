"""Recycle a deployment's instances the way its platform does, for experiments that need fresh instances.

Serverless waits past ``idle_expiry_s`` (the platform reclaims idle instances); container does a rolling
restart (a deploy); daemon workers and edge isolates are killed from outside (a worker restart, an isolate
eviction: the emulator recycles neither by itself), then the supervisor's restart delay passes. Used by
``harness readiness`` (its state experiment) and ``harness run --recycle-every N``.
"""

from __future__ import annotations

from .api import AsyncDeployment

__all__ = ["recycle"]


async def recycle(d: AsyncDeployment, reason: str = "recycled by the harness") -> None:
    """Replace every instance of ``d`` by its pattern's own mechanism (see the module docstring)."""
    profile = d.profile
    if d.pattern == "serverless":
        await d.advance(profile.idle_expiry_s + 1.0)  # idle past the expiry: the instance is recycled
    elif d.pattern == "container":
        await d.restart()
    else:
        for inst in list(d._emulator.pool.instances):  # done to the instances, as the platform would
            await inst.kill(reason)
        # the supervisor's restart delay passes (a daemon's worker comes back; an isolate starts on demand)
        await d.advance(max(1.0, 2 * profile.restart_sec if d.pattern == "daemon" else 0.0))
