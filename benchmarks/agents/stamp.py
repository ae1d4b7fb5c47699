"""Stamp: answers the wall time (``time.time()``) at which the agent started, after an optional hold.

The scale benchmark's agent (loaded by path, as a user's agent is): the latest start stamp of a burst
tells when the last of its instances was up and running the agent. ``{"hold_s": x}`` sleeps ``x``
platform seconds (``ctx.sleep``) before answering.
"""

from __future__ import annotations

import time
from typing import Any


def agent(task: dict[str, Any], ctx: Any) -> dict[str, float]:
    started = time.time()
    hold = float(task.get("hold_s", 0))
    if hold:
        ctx.sleep(hold)
    return {"started": started}
