"""End to end in a real browser: ``harness serve``'s ``/_harness/dashboard`` draws the served patterns over time
while a user's own client drives them, and its selector narrows the charts to one pattern."""

from __future__ import annotations

import base64
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from harness.load.runner import reap_tree

from .test_html_report import _distinct_colours
from .test_load_web import _CHARTS, CHROMIUM, _chromium
from .test_serve import URL

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
SLEEPER = f"{ROOT / 'fixtures' / 'agents' / 'sleeper.py'}:agent"


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium)")
def test_serve_dashboard_draws_every_served_pattern_in_headless_chromium(tmp_path: Path) -> None:
    """Calls from a plain HTTP client show up in every chart of both patterns; the selector keeps one."""
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "serve", SLEEPER, "--patterns",
                             "serverless,container", "--time-scale", "0.01", "-q"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None
        urls: list[str] = []
        while len(urls) < 2:
            line = proc.stdout.readline()
            assert line, "harness serve exited before printing its URLs"
            m = URL.match(line.strip())
            if m:
                urls.append(m.group(3))
        with httpx.Client(timeout=30) as c, ThreadPoolExecutor(6) as pool:
            for _ in range(3):  # a few bursts a second apart: several intervals with calls
                list(pool.map(lambda i: c.post(f"{urls[i % 2]}/invoke", json={"seconds": 1}), range(12)))
                time.sleep(0.6)
        with tempfile.TemporaryDirectory() as profile, _chromium(profile) as page:
            page.call("Page.navigate", url=f"{urls[1]}/_harness/dashboard")
            charts = page.wait_js(f"(() => {{ const c = {_CHARTS}; return c.length === 12 && "
                                  "c.filter(x => x[2] > 1).length >= 11 ? c : null; })()", 30)
            assert charts, page.js(_CHARTS)
            assert {(k, p) for k, p, n in charts if n <= 1} <= {("queue", "serverless")}, charts
            shot = base64.b64decode(page.call("Page.captureScreenshot", format="png",
                                              captureBeyondViewport=True)["data"])
            (tmp_path / "dashboard.png").write_bytes(shot)
            Path("/tmp/harness_dashboard.png").write_bytes(shot)  # for a human to look at
            page.js("(() => { const s = document.querySelector('#harness-pattern'); s.value = 'serverless';"
                    " s.dispatchEvent(new Event('change', {bubbles: true})); })()")
            one = page.wait_js(f"(() => {{ const c = {_CHARTS}; return c.length === 6 ? c : null; }})()", 10)
            assert one and {p for _, p, _ in one} == {"serverless"}, page.js(_CHARTS)
        assert len(shot) > 20_000 and _distinct_colours(shot) > 20  # drawn charts, not a blank page
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        finally:
            reap_tree(proc.pid)
