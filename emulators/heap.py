"""Keeping CPython's cyclic garbage collector off the harness's long-lived records.

A deployment keeps its latest records in memory (the record store's window, the memory-only traces' latest
calls: a few hundred thousand objects the collector tracks; the rest are on disk). A generation-2
collection scans every tracked object, so its pauses grow with what is kept: measured before the record
store, when every record was kept, 75,000 calls of a 40 s ``wrk`` run left 800,000 tracked objects and
pauses of up to 930 ms, which at ``time_scale=0.01`` turned into spurious 504 ``gateway_timeout`` answers.
The store bounds that; freezing keeps even the bounded windows out of the scans.

While a deployment is open, every ``FREEZE_EVERY`` kept records the young generations are collected (so
short-lived cyclic garbage is freed, not frozen) and ``gc.freeze()`` moves everything that survived to
the permanent generation, which collections skip. Pauses then grow only with what was allocated since
the last freeze. When the last deployment of the process closes, ``gc.unfreeze()`` hands those objects
back to the collector (refcounting frees the records themselves whenever they are dropped; only cyclic
garbage frozen meanwhile waits for that).

``gc.freeze`` is process-wide, so the harness stays out of the way of a process that manages it itself:
if anything is frozen already when the first deployment opens, nothing is done; ``HARNESS_GC_FREEZE=0``
turns it off.
"""

from __future__ import annotations

import gc
import os
import threading

__all__ = ["FREEZE_EVERY", "closed", "kept", "opened"]

FREEZE_EVERY = 2000  # kept records between freezes: about 20,000 tracked objects, a few ms to scan

_lock = threading.Lock()
_open = 0  # deployments open in this process
_active = False  # freezing now (some deployment is open and the process left gc.freeze to us)
_since = 0  # records kept since the last freeze


def opened() -> None:
    """A deployment started: while any is open, kept records are frozen out of the collector's scans."""
    global _open, _active
    with _lock:
        _open += 1
        if _open == 1:
            _active = os.environ.get("HARNESS_GC_FREEZE", "1") != "0" and gc.get_freeze_count() == 0


def closed() -> None:
    """A deployment closed: after the last one, whatever the harness froze goes back to the collector."""
    global _open, _active, _since
    with _lock:
        _open = max(0, _open - 1)
        if _open == 0 and _active:
            _active = False
            _since = 0
            gc.unfreeze()


def kept() -> None:
    """One more record kept (called per record: a counter, and every FREEZE_EVERY a freeze)."""
    global _since
    if not _active:
        return
    _since += 1  # a lost increment between threads only shifts one freeze a little
    if _since >= FREEZE_EVERY:
        _since = 0
        gc.collect(1)
        gc.freeze()
