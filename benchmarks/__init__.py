"""Benchmarks of the harness's own overhead, each figure next to a floor measured in the same run.

Run from the repository root with ``python -m benchmarks`` (``--quick`` for a short run, ``--json PATH`` to
also write the results elsewhere; ``benchmarks/results/latest.json`` is always written). The run reports;
it never fails on timing. See ``benchmarks/README.md`` for what each figure means.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ECHO_PATH", "ECHO_SPEC", "REPO_ROOT", "RESULTS_DIR"]

REPO_ROOT = Path(__file__).resolve().parents[1]
ECHO_PATH = REPO_ROOT / "fixtures" / "agents" / "echo.py"
ECHO_SPEC = f"{ECHO_PATH}:agent"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
