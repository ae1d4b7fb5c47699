"""Secret management: detect-secrets over the agent's source, its config files and its task outputs, plus
the secret-looking environment variables its source reads.

A maintained scanner (Yelp's ``detect-secrets``, the ``readiness`` extra) does the finding, not
hand-written regexes; findings give the file, the line and the detector, never the value. Environment
reads (``os.environ["X"]``, ``os.environ.get("X")``, ``os.getenv("X")``) of names that look like keys are
listed with their line: reading a key from the environment is the right way, so they do not fail the item.
"""

from __future__ import annotations

import ast
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulators.records import Record

from ..reports.redact import is_secret_name

__all__ = ["CONFIG_SUFFIXES", "Finding", "agent_files", "env_reads", "scan_files", "scan_outputs"]

CONFIG_SUFFIXES = (".toml", ".json", ".yaml", ".yml", ".ini", ".cfg", ".conf", ".env", ".txt")
_CONFIG_NAMES = (".env", ".envrc")


@dataclass(frozen=True)
class Finding:
    """One potential secret: where (file and line) and which detector found it."""

    file: str
    line: int
    kind: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.kind}"


def agent_files(agent: str) -> list[Path]:
    """The agent's source file and the config files beside it (not recursive)."""
    path_text = agent.rsplit(":", 1)[0]
    src = Path(path_text)
    if src.suffix != ".py" or not src.is_file():
        return []
    out = [src]
    for f in sorted(src.parent.iterdir()):
        if f.is_file() and (f.suffix in CONFIG_SUFFIXES or f.name in _CONFIG_NAMES):
            out.append(f)
    return out


def scan_files(files: Iterable[Path]) -> list[Finding] | None:
    """detect-secrets findings in ``files`` (None: detect-secrets is not installed)."""
    try:
        from detect_secrets.core.secrets_collection import SecretsCollection
        from detect_secrets.settings import default_settings
    except ImportError:
        return None
    found: list[Finding] = []
    with default_settings():
        for f in files:
            coll = SecretsCollection()
            coll.scan_file(str(f))
            for filename, secret in coll:
                found.append(Finding(filename, int(secret.line_number), str(secret.type)))
    # One line flagged by two detectors (keyword and entropy) is one finding with both names.
    merged: dict[tuple[str, int], list[str]] = {}
    for x in found:
        merged.setdefault((x.file, x.line), []).append(x.kind)
    return [Finding(f, line, " + ".join(sorted(set(kinds)))) for (f, line), kinds in sorted(merged.items())]


def scan_outputs(records: Sequence[Record]) -> list[tuple[Record, str]] | None:
    """Records whose output or error holds something detect-secrets flags (None: not installed)."""
    import json

    lines = [json.dumps(r.output, default=str) + " " + (r.error or "") for r in records]
    with tempfile.TemporaryDirectory(prefix="harness-readiness-") as tmp:
        path = Path(tmp) / "outputs.txt"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        found = scan_files([path])
    if found is None:
        return None
    return [(records[f.line - 1], f.kind) for f in found if 0 < f.line <= len(records)]


def env_reads(source: Path) -> list[tuple[int, str]]:
    """(line, name) of every secret-looking environment variable the source reads by a literal name."""
    try:
        tree = ast.parse(source.read_text(encoding="utf-8"), str(source))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return []
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        name = _env_name(node)
        if name is not None and is_secret_name(name):
            out.append((node.lineno, name))  # type: ignore[attr-defined]
    return sorted(set(out))


def _is_environ(node: Any) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ")


def _env_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Subscript) and _is_environ(node.value):
        key = node.slice
        return key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else None
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        f = node.func
        getenv = (isinstance(f, ast.Attribute) and f.attr == "getenv") or (isinstance(f, ast.Name) and f.id == "getenv")
        environ_get = isinstance(f, ast.Attribute) and f.attr in ("get", "pop", "setdefault") and _is_environ(f.value)
        if (getenv or environ_get) and isinstance(node.args[0].value, str):
            return node.args[0].value
    return None
