"""End to end: ``harness serve`` as a user runs it: prints its URL, answers curl and httpx at once, shows a
status line, and on Ctrl-C exits 130 leaving no process behind."""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from emulators.profiles import IMPLEMENTED_PATTERNS

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ECHO = f"{ROOT / 'fixtures' / 'agents' / 'echo.py'}:agent"
SUPPORT = f"{ROOT / 'fixtures' / 'agents' / 'support_memory.py'}:agent"  # remembers what a customer says
TASK = {"customer": "ada", "says": "I am on the Pro plan, billed yearly", "asks": "which plan am I on?"}
URL = re.compile(r"^(\w+) \(([\w.-]+)\): (http://127\.0\.0\.1:\d+)$")


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "harness.cli", "serve", ECHO, "--time-scale", "0.01", *args],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _urls(proc: subprocess.Popen[str], n: int) -> tuple[list[str], float]:
    """The first ``n`` URLs the command prints, and the monotonic time the last one was read."""
    assert proc.stdout is not None
    urls: list[str] = []
    deadline = time.monotonic() + 30
    while len(urls) < n and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = URL.match(line.strip())
        if m:
            urls.append(m.group(3))
    assert len(urls) == n, f"expected {n} URL lines; stderr: {proc.stderr.read() if proc.stderr else ''}"
    return urls, time.monotonic()


@contextlib.contextmanager
def _killed_on_failure(proc: subprocess.Popen[str]) -> Iterator[None]:
    """Kill ``proc`` and wait for it if the block fails, so a failed test leaves no server running."""
    try:
        yield
    except BaseException:
        proc.kill()
        proc.communicate()
        raise


def _descendants(proc: subprocess.Popen[str]) -> set[int]:
    try:
        return {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
    except psutil.Error:
        return set()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _interrupt(proc: subprocess.Popen[str], pids: set[int]) -> str:
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    assert not [p for p in pids if _alive(p)], "processes of the served deployment remain"
    return err


def test_serve_answers_curl_within_a_second_and_leaves_nothing_on_ctrl_c() -> None:
    """The printed URL answers curl and httpx within a second; SIGINT exits 130 and reaps every process."""
    proc = _start()
    with _killed_on_failure(proc):
        [url], printed = _urls(proc, 1)
        curl = shutil.which("curl")
        if curl is not None:
            out = subprocess.run([curl, "-s", "-i", "-X", "POST", f"{url}/invoke", "-d", '{"q": "hi"}'],
                                 capture_output=True, text=True, timeout=10)
            answered = time.monotonic() - printed
            assert "200 OK" in out.stdout and '"echo":{"q":"hi"}' in out.stdout
            assert "x-harness-outcome: ok" in out.stdout
        else:
            r = httpx.post(f"{url}/invoke", json={"q": "hi"})
            answered = time.monotonic() - printed
            assert r.status_code == 200
        assert answered < 1.0, f"first answer {answered:.2f} s after the URL was printed"
        assert httpx.get(f"{url}/healthz").json()["status"] == "ok"
        time.sleep(1.2)  # one status period
        pids = _descendants(proc)
        assert pids, "the deployment's processes were not found"
    err = _interrupt(proc, pids)
    assert "serverless: 1 calls, ok 1" in err  # the live status line


def test_serve_patterns_all_serves_one_port_per_pattern() -> None:
    """--patterns all starts one deployment per implemented pattern, each on its own printed port."""
    proc = _start("--patterns", "all", "-q")
    with _killed_on_failure(proc):
        urls, _ = _urls(proc, len(IMPLEMENTED_PATTERNS))
        assert len(set(urls)) == len(urls)
        for url in urls:
            assert httpx.post(f"{url}/invoke", json={"x": 1}).json()["output"] == {"echo": {"x": 1}}
        pids = _descendants(proc)
    _interrupt(proc, pids)


def test_serve_dashboard_shows_every_served_pattern_from_the_start() -> None:
    """With several patterns, each gateway's /_harness/timeline holds every pattern, sampled since the start."""
    proc = _start("--patterns", "serverless,container", "-q")
    with _killed_on_failure(proc):
        urls, _ = _urls(proc, 2)
        time.sleep(1.2)  # nobody has looked yet: serve samples anyway
        for i in range(6):
            httpx.post(f"{urls[1]}/invoke", json={"i": i})
        time.sleep(0.8)
        doc = httpx.get(f"{urls[0]}/_harness/timeline").json()["patterns"]
        assert set(doc) == {"serverless", "container"}
        assert len(doc["serverless"]["points"]) >= 3  # sampled while nobody asked
        assert doc["container"]["points"][-1]["calls"] == 6
        charts = httpx.get(f"{urls[0]}/_harness/charts", params={"pattern": "container"}).json()
        assert charts["patterns"] == ["serverless", "container"] and 'data-pattern="serverless"' not in charts["html"]
        assert httpx.get(f"{urls[1]}/_harness/dashboard").status_code == 200
        pids = _descendants(proc)
    _interrupt(proc, pids)


def test_serve_bad_input_exits_2() -> None:
    """An unknown pattern or profile exits 2 with a message naming it."""
    for args, message in ((["--pattern", "lamda"], "unknown pattern 'lamda'"),
                          (["--profile", "aws-lamda"], "did you mean 'aws-lambda'")):
        proc = subprocess.run([sys.executable, "-m", "harness.cli", "serve", ECHO, *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr


def test_serve_records_dir_keeps_every_record_for_harness_report(tmp_path: Path) -> None:
    """--records-dir keeps the store; after Ctrl-C the command names it and harness report reads it back."""
    proc = _start("--records-dir", str(tmp_path), "-q")
    (url,), _ = _urls(proc, 1)
    for i in range(3):
        assert httpx.post(f"{url}/invoke", json={"i": i}, timeout=10).status_code == 200
    err = _interrupt(proc, _descendants(proc))
    [store] = tmp_path.glob("serverless-*.sqlite")
    assert f"3 calls' records in {store}" in err and f"harness report {tmp_path}" in err
    got = subprocess.run([sys.executable, "-m", "harness.cli", "report", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert got.returncode == 0 and "serverless" in got.stdout, got.stderr


def test_ctrl_c_with_a_stream_in_flight_reaps_every_replica_of_an_asgi_app() -> None:
    """SIGINT while a forwarded stream is open on container exits 130 and leaves no replica (nor its uvicorn)."""
    app = f"{ROOT / 'fixtures' / 'agents' / 'asgi_streaming.py'}:app"
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "serve", app, "--adapter", "asgi", "--pattern",
                             "container", "--set", "min_replicas=2"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with _killed_on_failure(proc):
        [url], _ = _urls(proc, 1)
        with httpx.Client(timeout=30) as c, c.stream("GET", f"{url}/stream", params={"n": 100, "pause": 1}) as r:
            first = next(r.iter_raw())  # the stream is open and the app is writing it
            pids = _descendants(proc)
            assert first == b"chunk 0\n" and len(pids) >= 3  # the zygote and two replicas at least
            err = _interrupt(proc, pids)
    assert "Traceback" not in err, err


def _serve_support(memory: str, patterns: str, task: dict[str, str]) -> list[dict[str, object]]:
    """Serve the support agent on ``memory`` under ``patterns``, send ``task`` to each gateway in turn, Ctrl-C."""
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "serve", SUPPORT, "--patterns", patterns,
                             "--memory", memory, "--set", "timeout_s=60", "--time-scale", "0.01", "-q"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with _killed_on_failure(proc):
        urls, _ = _urls(proc, len(patterns.split(",")))
        outputs = []
        for url in urls:
            r = httpx.post(f"{url}/invoke", json=task, timeout=60).json()
            assert r["ok"], r["error"]
            outputs.append(r["output"])
        pids = _descendants(proc)
    _interrupt(proc, pids)
    return outputs


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_serve_memory_outlives_the_served_deployments(store: str, tmp_path: Path,
                                                      request: pytest.FixtureRequest) -> None:
    """--memory URL: what one serve's agent stored, every pattern of a later serve on the same URL recalls."""
    memory = (f"sqlite:///{tmp_path / 'memory.db'}" if store == "sqlite"
              else str(request.getfixturevalue("postgres_memory_url")))
    [first] = _serve_support(memory, "serverless", TASK)
    assert first["remembered"] == [TASK["says"]]
    # A new fact, so an agent that found nothing would store and answer with it instead.
    later = _serve_support(memory, "serverless,container", {**TASK, "says": "I moved to the Team plan"})
    assert [o["remembered"] for o in later] == [[TASK["says"]]] * 2


def test_serve_refuses_a_bad_memory_url_as_harness_run_does() -> None:
    """A --memory URL of no known store exits 2 with harness run's message, before anything is served."""
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "serve", ECHO, "--memory", "redis://127.0.0.1/0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and not proc.stdout, proc.stderr
    assert "memory store 'redis://127.0.0.1/0': expected sqlite:// (the default)" in proc.stderr
