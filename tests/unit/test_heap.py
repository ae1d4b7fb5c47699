"""The harness keeps its long-lived records out of the cyclic collector's scans while deployments are open."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

import harness
from emulators import heap

ECHO = str(Path(__file__).resolve().parents[2] / "fixtures" / "agents" / "echo.py") + ":agent"


class _Cycle:
    """An object in a reference cycle: only the cyclic collector can free it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture(autouse=True)
def _clean_gc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with nothing frozen and no deployment counted (another test's may still be open)."""
    monkeypatch.delenv("HARNESS_GC_FREEZE", raising=False)
    for name, value in (("_open", 0), ("_active", False), ("_since", 0)):
        monkeypatch.setattr(heap, name, value)
    gc.unfreeze()
    yield
    while heap._open:
        heap.closed()
    gc.unfreeze()


def _keep(n: int) -> None:
    for _ in range(n):
        heap.kept()


def test_records_are_frozen_while_open_and_handed_back_after() -> None:
    """Every FREEZE_EVERY kept records freeze what survived; closing the last deployment unfreezes it."""
    heap.opened()
    _keep(heap.FREEZE_EVERY - 1)
    assert gc.get_freeze_count() == 0
    heap.kept()
    assert gc.get_freeze_count() > 0
    heap.closed()
    assert gc.get_freeze_count() == 0


def test_only_the_last_close_unfreezes() -> None:
    """With two deployments open, closing one leaves the frozen records frozen."""
    heap.opened()
    heap.opened()
    _keep(heap.FREEZE_EVERY)
    heap.closed()
    assert gc.get_freeze_count() > 0
    heap.closed()
    assert gc.get_freeze_count() == 0


def test_young_cyclic_garbage_is_collected_not_frozen() -> None:
    """Cyclic garbage made before a freeze is freed by the young collection that precedes it."""
    heap.opened()
    gone = _Cycle()
    ref = weakref.ref(gone)
    del gone
    _keep(heap.FREEZE_EVERY)
    assert ref() is None


def test_a_process_that_freezes_itself_is_left_alone() -> None:
    """If something is frozen when the first deployment opens, the harness neither freezes nor unfreezes."""
    gc.freeze()
    theirs = gc.get_freeze_count()
    heap.opened()
    _keep(heap.FREEZE_EVERY)
    # A frozen object that dies (another thread of a long session drops it) leaves the count a little lower:
    # what must not happen is a freeze (the count grows by the kept records) or an unfreeze (it drops to 0).
    assert theirs - 100 < gc.get_freeze_count() <= theirs
    heap.closed()
    assert theirs - 100 < gc.get_freeze_count() <= theirs


def test_env_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """HARNESS_GC_FREEZE=0 keeps the collector's default behaviour."""
    monkeypatch.setenv("HARNESS_GC_FREEZE", "0")
    heap.opened()
    _keep(heap.FREEZE_EVERY)
    assert gc.get_freeze_count() == 0


def test_a_deployment_freezes_its_records_and_unfreezes_at_close(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real deployment's calls trigger the freeze; after it closes nothing stays frozen."""
    monkeypatch.setattr(heap, "FREEZE_EVERY", 5)
    with harness.deploy(ECHO, time_scale=0.01) as d:
        for i in range(6):
            assert d.invoke({"i": i}).ok
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
    assert heap._open == 0
