"""End to end: the HTML report from a real run renders offline in headless Chromium, charts included."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
AGENTS = ROOT / "fixtures" / "agents"
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


def _distinct_colours(png: bytes) -> int:
    """Distinct pixel colours in an 8-bit RGB(A) PNG (enough to tell a drawn page from a blank one)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 4
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        data = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, _, colour_type = struct.unpack(">IIBB", data[:10])
            channels = {2: 3, 6: 4}[colour_type]
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    raw, stride = zlib.decompress(idat), width * channels + 1
    # Unfiltered bytes are enough for a count: filtered rows still differ wherever the picture does.
    return len({raw[r * stride + 1 + c * channels:r * stride + 1 + (c + 1) * channels]
                for r in range(0, height, 7) for c in range(0, width, 5)})


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium)")
def test_html_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    """A report with failures renders offline; the screenshot is a drawn page, not a blank one."""
    json_path = tmp_path / "out.json"
    run = subprocess.run([sys.executable, "-m", "harness.cli", "run", f"{AGENTS / 'sleeper.py'}:agent", "-n", "16",
                          "-c", "4", "--task", '{"seconds": 1}', "--set", "max_concurrency=3", "--time-scale",
                          "0.001", "-q", "--json", str(json_path)], capture_output=True, text=True, timeout=120,
                         cwd=ROOT)
    assert run.returncode == 0, run.stderr
    from harness.reports import load_report, write_report

    html = write_report(load_report(json_path), tmp_path / "report.html")
    text = html.read_text()
    assert "Over time" in text and text.count('data-chart="') == 6  # rebuilt from the records: no sampler ran
    shot = tmp_path / "report.png"
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
             f"--screenshot={shot}", "--window-size=1280,2000", html.as_uri()],
            capture_output=True, text=True, timeout=90)
    assert shot.is_file(), proc.stderr[-2000:]
    png = shot.read_bytes()
    assert len(png) > 20_000  # a blank 1280x2000 page compresses to a few KB
    assert _distinct_colours(png) > 20  # text, table rules, bars in several colours
