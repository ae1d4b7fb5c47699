"""The ``harness`` command line: ``harness run`` (load an agent under patterns) and ``harness profiles``."""

from __future__ import annotations

from .main import main

__all__ = ["main"]
