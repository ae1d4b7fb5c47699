"""End to end: ``harness worker`` joins a shared Redis queue as a separate process; a producer in this
process submits tasks and reads the results the worker wrote to the shared SQLite file; Ctrl-C exits 130
and leaves no process behind."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

import harness

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
RESUMABLE = f"{ROOT / 'fixtures' / 'agents' / 'resumable.py'}:agent"


def _redis_up() -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", 6379)) == 0


def test_a_standalone_worker_runs_tasks_a_producer_submits(tmp_path: Path) -> None:
    """Two producer tasks run in the worker process; results come back through the state file; Ctrl-C is 130."""
    if not _redis_up():
        pytest.skip("redis is not reachable on 127.0.0.1:6379; start it to run the worker test")
    queue = f"redis://127.0.0.1:6379/15?queue=e2e-{uuid.uuid4().hex[:8]}"
    state = f"sqlite:///{tmp_path / 'shared.db'}"
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "worker", RESUMABLE, "--queue", queue,
                             "--state", state, "--workers", "2", "--time-scale", "0.01"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert "daemon worker(s)" in banner, proc.stderr.read() if proc.stderr else ""
        kids = {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
        with harness.deploy(RESUMABLE, pattern="daemon", time_scale=0.01, queue=queue, state=state,
                            workers=0, gateway=False) as producer:
            results = [producer.invoke({"steps": 2, "step_s": 1}) for _ in range(2)]
        assert [r.outcome for r in results] == ["ok", "ok"], [r.error for r in results]
        assert all(r.output == {"steps": 2, "resumed_from": 0} for r in results)
        assert all(r.instance_id for r in results)  # the remote worker that ran it
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 130
        time.sleep(0.2)
        assert not [k for k in kids if psutil.pid_exists(k) and psutil.Process(k).status() != psutil.STATUS_ZOMBIE]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_an_unnamed_queue_is_refused_with_exit_2() -> None:
    """A queue URL without a name cannot be shared: exit 2 saying to add ?queue=NAME."""
    done = subprocess.run([sys.executable, "-m", "harness.cli", "worker", RESUMABLE, "--queue",
                           "redis://127.0.0.1:6379/0", "--state", "sqlite:///x.db"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "?queue=NAME" in done.stderr
