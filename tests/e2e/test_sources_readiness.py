"""End to end: `harness readiness --from` names the user's own config values to change, with file:line."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Runtime: python3.12
      MemorySize: {memory}
      Timeout: {timeout}
      Events:
        Ask:
          Type: Api
"""


def _readiness(tmp_path: Path, code: str, memory: int, timeout: int) -> tuple[subprocess.CompletedProcess[str], dict]:
    (tmp_path / "app.py").write_text(textwrap.dedent(code))
    (tmp_path / "template.yaml").write_text(TEMPLATE.format(memory=memory, timeout=timeout).lstrip())
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "readiness", "--from", str(tmp_path / "template.yaml"),
                           "--patterns", "serverless,daemon", "--calls", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return proc, json.loads(out.read_text())["readiness"]


def test_readiness_from_names_the_memory_to_raise(tmp_path: Path) -> None:
    """A handler killed at MemorySize 128 gets 'raise MemorySize from 128 to 512 in template.yaml:8'."""
    proc, section = _readiness(tmp_path, """
        def handler(event, context):
            block = b"\\x01" * (200 * 1024 * 1024)
            return {"n": block[-1]}
        """, memory=128, timeout=10)
    text = " ".join(proc.stdout.split())
    assert "Your deployment file (template.yaml, Fn on serverless)" in text
    assert "raise MemorySize from 128 to 512 in template.yaml:8" in text
    changes = section["config_changes"]
    assert changes["function"] == "Fn" and changes["changes"][0].startswith("raise MemorySize from 128 to 512")
    assert section["patterns"]["serverless"]["overrides"]["memory_mb"] == 128.0  # the declared value was tested


def test_readiness_from_names_the_timeout_to_raise(tmp_path: Path) -> None:
    """A handler that outlives Timeout 1 gets 'raise Timeout from 1 to N in template.yaml:9'."""
    proc, section = _readiness(tmp_path, """
        import time

        def handler(event, context):
            time.sleep(1.2)
            return {}
        """, memory=256, timeout=1)
    text = " ".join(proc.stdout.split())
    assert "raise Timeout from 1 to 2 in template.yaml:9" in text, text[-800:]
    assert section["patterns"]["serverless"]["overrides"]["timeout_s"] == 1.0


def test_readiness_from_says_when_the_limits_fit(tmp_path: Path) -> None:
    """A handler well inside its declared limits gets no change to make."""
    proc, section = _readiness(tmp_path, """
        def handler(event, context):
            return {"ok": True}
        """, memory=512, timeout=30)
    assert "the declared limits fit" in proc.stdout and section["config_changes"]["changes"] == []
