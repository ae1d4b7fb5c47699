"""Reports: a JSON model built from records first; renderers (terminal, later HTML/JUnit) read the model."""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Sequence
from typing import Any

from emulators.records import Record, Summary

__all__ = ["REPORT_VERSION", "build_report"]

REPORT_VERSION = 1


def build_report(runs: Sequence[tuple[Summary, Sequence[Record], dict[str, Any]]]) -> dict[str, Any]:
    """The JSON report: one entry per deployment with its summary, profile and every record."""
    return {
        "version": REPORT_VERSION,
        "created_at": time.time(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "deployments": [
            {"summary": s.to_json(), "profile": profile, "records": [r.to_json() for r in records]}
            for s, records, profile in runs
        ],
    }
