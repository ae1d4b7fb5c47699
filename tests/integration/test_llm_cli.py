"""``harness llm`` (harness.cli.llm.llm_command) serves the simulator until Ctrl-C and prints its base URL."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import httpx
import pytest

from .llm_helpers import LLM_SCRIPTS, ROOT

pytestmark = pytest.mark.integration

_RUN = "from harness.cli.llm import llm_command; llm_command()"


def test_standalone_server_answers_and_stops_on_ctrl_c() -> None:
    """The command prints its URL, answers calls (one line each), and exits 130 on SIGINT."""
    proc = subprocess.Popen([sys.executable, "-c", _RUN, "--script", str(LLM_SCRIPTS / "example.toml"),
                             "--time-scale", "0.001", "--seed", "3"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+", first)
        assert match, first
        r = httpx.post(f"{match.group(0)}/v1/chat/completions", timeout=10,
                       json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]})
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "Hello! How can I help?"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "200 openai chat.completions gpt-4o-mini" in out


def test_a_bad_script_exits_2_with_the_message(tmp_path: object) -> None:
    """A script with a mistake is refused with exit code 2 and a message naming the problem."""
    from pathlib import Path

    bad = Path(str(tmp_path)) / "bad.toml"
    bad.write_text("[[rules]]\nmodle = 'x'\n")
    proc = subprocess.run([sys.executable, "-c", _RUN, "--script", str(bad)], cwd=ROOT, capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 2
    assert "unknown key 'modle' (did you mean 'model'?)" in proc.stderr
