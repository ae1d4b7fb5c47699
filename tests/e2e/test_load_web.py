"""End to end in a real browser: Locust's web UI starts a run against all four patterns, and the "Patterns"
tab shows a non-zero row for each and, under the table, the charts of every pattern over time.

Headless Chromium is driven over the DevTools protocol (a WebSocket, with the ``websockets`` package the
project already needs), so no Selenium or chromedriver is required. A screenshot of the tab is saved to
``/tmp/locust_patterns_tab.png`` (and the test's tmp dir) for a human to look at.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from harness.load.runner import reap_tree

from .test_html_report import _distinct_colours

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
SHOT = Path("/tmp/locust_patterns_tab.png")


def _port(preferred: int) -> int:
    """``preferred`` (Locust's 8089) when free, else any free port."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
        except OSError:
            s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class _Page:
    """One Chromium tab over the DevTools protocol: navigate, evaluate JavaScript, take a screenshot."""

    def __init__(self, ws: Any) -> None:
        self.ws, self.n = ws, 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.n += 1
        self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=30))
            if msg.get("id") == self.n:
                assert "error" not in msg, msg
                result: dict[str, Any] = msg["result"]
                return result

    def js(self, expression: str) -> Any:
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in r, r["exceptionDetails"]
        return r["result"].get("value")

    def wait_js(self, expression: str, timeout_s: float) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            value = self.js(expression)
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.3)


@contextmanager
def _chromium(profile: str) -> Iterator[_Page]:
    from websockets.sync.client import connect

    assert CHROMIUM is not None
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
         "--remote-allow-origins=*", f"--user-data-dir={profile}", "--window-size=1400,900", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stderr is not None
        port = None
        for line in proc.stderr:  # "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/..."
            m = re.search(r"ws://127\.0\.0\.1:(\d+)/", line)
            if m:
                port = int(m.group(1))
                break
        assert port is not None, "chromium printed no DevTools address"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            page = next(t for t in json.loads(r.read()) if t["type"] == "page")
        with connect(page["webSocketDebuggerUrl"], max_size=None) as ws:
            yield _Page(ws)
    finally:
        reap_tree(proc.pid, grace_s=2.0)


def _state(base: str) -> str:
    """Locust's runner state ("ready", "spawning", "running", ...) from its own stats endpoint."""
    with urllib.request.urlopen(f"{base}/stats/requests", timeout=5) as r:
        return str(json.loads(r.read())["state"])


def _start(page: _Page, base: str, timeout_s: float = 30.0) -> None:
    """Click Start until the runner leaves "ready".

    A click that lands while the React form is still setting itself up is lost (seen in CI: the form still
    on screen, status READY, 40 s later), so the click is repeated until Locust says the run began.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        page.js("document.querySelector('button[type=submit]')?.click()")
        for _ in range(10):
            if _state(base) != "ready":
                return
            time.sleep(0.3)
        assert time.monotonic() < deadline, f"Start never started the run (state still {_state(base)!r})"


_CHARTS = ("[...document.querySelectorAll('#harness-charts svg[data-chart]')]"
           ".map(e => [e.dataset.chart, e.dataset.pattern, Number(e.dataset.points)])")
_ROWS = ("[...document.querySelectorAll('table tbody tr')]"
         ".map(tr => [...tr.cells].map(c => c.textContent.trim()))")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium)")
def test_patterns_tab_shows_every_pattern_in_headless_chromium(tmp_path: Path) -> None:
    """The web UI's Start button runs all four patterns; the Patterns tab lists each with calls > 0 and draws
    every chart of every pattern, live, with a selector that narrows them to one pattern."""
    port = _port(8089)
    locust = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(ROOT / "loadtests" / "locustfile.py"), "--web-host", "127.0.0.1",
         "--web-port", str(port), "--scenario", str(ROOT / "fixtures" / "scenarios" / "smoke.toml"),
         "--users", "8", "--spawn-rate", "8", "--time-scale", "0.01", "--patterns", "all"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _wait_http(f"http://127.0.0.1:{port}/", 30)
        with tempfile.TemporaryDirectory() as profile, _chromium(profile) as page:
            page.call("Page.navigate", url=f"http://127.0.0.1:{port}/")
            assert page.wait_js("!!document.querySelector('button[type=submit]')", 20), "no Start button"
            # The custom arguments are fields of the form (shown under "Custom parameters").
            assert page.js("document.querySelector('[name=shape]') !== null")
            _start(page, f"http://127.0.0.1:{port}")
            tab = "[...document.querySelectorAll('[role=tab]')].find(b => b.textContent.trim() === 'Patterns')"
            if not page.wait_js(f"!!{tab}", 30):
                # Seen twice in CI, never locally: the run had started (the runner left "ready") and the page
                # still showed no tabs after 30 s. Say what the runner and the stats route said, then load the
                # page once more: Locust's own UI missing its switch is not what this test is about.
                state = _state(f"http://127.0.0.1:{port}")
                page.call("Page.reload")
                assert page.wait_js(f"!!{tab}", 30), f"no Patterns tab, before or after a reload (runner {state!r})"
            page.js(f"{tab}.click()")
            expression = (f"(() => {{ const rows = {_ROWS}; return rows.length === 4 && "
                          "rows.every(r => Number(r[2]) > 0 && Number(r[11]) > 0) ? rows : null; })()")
            rows = page.wait_js(expression, 40)
            assert rows, f"rows never filled: {page.js(_ROWS)}"
            # Under the table: a chart per figure and pattern, each drawn from points (queue: daemon and
            # container only), refreshed while the run goes.
            charts = page.wait_js(f"(() => {{ const c = {_CHARTS}; return c.length === 24 && c.filter(x => "
                                  "x[2] > 1).length >= 22 ? c : null; })()", 40)
            assert charts, f"charts never filled: {page.js(_CHARTS)}"
            drawn = {(k, p) for k, p, n in charts if n > 1}
            assert drawn == {(k, p) for k, p, _ in charts if k != "queue" or p in ("container", "daemon")}, charts
            first = page.js("document.querySelector('#harness-updated').textContent")
            assert page.wait_js(f"document.querySelector('#harness-updated').textContent !== {first!r}", 10)
            page.js("(() => { const s = document.querySelector('#harness-pattern'); s.value = 'container';"
                    " s.dispatchEvent(new Event('change', {bubbles: true})); })()")
            narrowed = page.wait_js(f"(() => {{ const c = {_CHARTS}; return c.length === 6 ? c : null; }})()", 10)
            assert narrowed and {p for _, p, _ in narrowed} == {"container"}, page.js(_CHARTS)
            page.js("document.querySelector('#harness-live').scrollIntoView()")
            shot = base64.b64decode(page.call("Page.captureScreenshot", format="png",
                                              captureBeyondViewport=True)["data"])
            SHOT.write_bytes(shot)
            (tmp_path / SHOT.name).write_bytes(shot)
        assert len(shot) > 20_000 and _distinct_colours(shot) > 20  # drawn charts, not a blank page
        assert sorted(r[0] for r in rows) == ["container", "daemon", "edge", "serverless"]
        for r in rows:  # calls > 0, ok > 0, a profile name, live instances from the gateway's /stats
            assert int(r[2]) > 0 and int(r[3]) > 0 and r[1], r
    except BaseException as exc:
        reap_tree(locust.pid)
        if locust.stderr is not None and isinstance(exc, AssertionError):
            exc.add_note("--- locust's stderr, last lines ---\n" + locust.stderr.read()[-4000:])
        raise
    locust.send_signal(signal.SIGTERM)  # Locust stops its users, then the engine host and its instances
    try:
        _, err = locust.communicate(timeout=60)
    finally:
        reap_tree(locust.pid)
    assert "deployments stopped" in err, err[-3000:]
