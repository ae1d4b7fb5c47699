"""Shared helpers for the unit tier: repository paths and an import sandbox for in-process agent loads."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AGENTS = ROOT / "fixtures" / "agents"


@pytest.fixture
def root(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The repository root, made the working directory so relative agent specs resolve as users write them."""
    monkeypatch.chdir(ROOT)
    return ROOT


@pytest.fixture
def import_sandbox() -> Iterator[None]:
    """Undo what an in-process agent import adds to ``sys.path`` and ``sys.modules``."""
    path = list(sys.path)
    modules = set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        del sys.modules[name]
