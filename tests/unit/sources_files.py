"""Helpers of the deployment-file tests: the samples' folder, writing a small file, one taken key."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "fixtures" / "deployments"


def write(tmp_path: Path, name: str, text: str) -> Path:
    """Write ``text`` (dedented) to ``tmp_path/name``; its path."""
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def taken(m: Any, field: str) -> Any:
    """The Taken entry of a mapped function that set ``field``."""
    return next(t for t in m.taken if t.field == field)
