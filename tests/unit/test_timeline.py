"""The run over time: ``Timeline`` sampling (interval latency, thinning, ``since``) over a real ``Tally``, and
``timechart.render``'s charts from points (rates from cumulative counts, shared axes, the pattern filter)."""

from __future__ import annotations

import asyncio
import re
from types import SimpleNamespace
from typing import Any

from emulators.gateway.dashboard import charts_json, parse_since, timeline_json
from emulators.records import Record
from emulators.tally import Tally
from emulators.timechart import FIGURES, render, rows
from emulators.timeline import Timeline, TimelineBook


class _Deployment:
    """The parts of an Emulator a Timeline reads: a real Tally behind records, a pool, a summary."""

    def __init__(self, pattern: str = "container") -> None:
        self.pattern = pattern
        self.profile = SimpleNamespace(name="k8s-hpa")
        self.records = SimpleNamespace(tally=Tally())
        self.pool = SimpleNamespace(instances=[SimpleNamespace(alive=True), SimpleNamespace(alive=False)])
        self.desired = 3
        self.depth = 7

    def add(self, latency_ms: float, outcome: str = "ok", cold: bool = False) -> None:
        self.records.tally.add(Record(ok=outcome == "ok", outcome=outcome, latency_ms=latency_ms, cold_start=cold))

    def summary(self) -> Any:
        return self.records.tally.summary(fixed_cost_usd=0.5)

    async def queue_depth(self) -> int:
        return self.depth


def _sample(tl: Timeline) -> dict[str, Any]:
    return asyncio.run(tl.sample())


def test_a_point_has_gauges_and_the_latency_of_its_own_interval_only() -> None:
    """Latency percentiles cover the calls since the previous point; counts stay cumulative."""
    d = _Deployment()
    tl = Timeline(d)  # type: ignore[arg-type]
    for _ in range(10):
        d.add(1000.0, cold=True)
    first = _sample(tl)
    assert (first["calls"], first["cold_starts"], first["instances"], first["desired"], first["queue_depth"]) == \
        (10, 10, 1, 3, 7)
    assert abs(first["p95_ms"] - 1000.0) <= 10
    for _ in range(10):
        d.add(10.0, outcome="timeout")
    second = _sample(tl)
    assert second["calls"] == 20 and second["outcomes"] == {"ok": 10, "timeout": 10}
    assert abs(second["p95_ms"] - 10.0) <= 0.2  # the 1,000 ms calls belong to the first interval
    assert _sample(tl)["p50_ms"] is None  # nothing finished in between: no latency to draw
    assert second["compute_usd"] >= 0.5  # the fixed (idle) cost is compute


def test_a_full_buffer_thins_itself_and_since_still_answers_newer_points() -> None:
    """Past max_points every other point goes and the interval doubles; since(i) returns later points."""
    d = _Deployment("serverless")
    tl = Timeline(d, interval_s=0.5, max_points=8)  # type: ignore[arg-type]
    for _ in range(9):
        d.add(5.0)
        _sample(tl)
    assert len(tl.points) <= 8 and tl.interval_s == 1.0
    assert tl.points[0]["i"] == 1 and tl.points[-1]["i"] == 9 and tl.points[-1]["calls"] == 9
    assert [p["i"] for p in tl.since(7)] == [p["i"] for p in tl.points if p["i"] > 7]
    assert tl.since(0) == tl.points
    assert tl.points[-1]["desired"] is None and tl.points[-1]["queue_depth"] == 7  # desired: container only


def test_since_parses_one_number_or_one_per_pattern() -> None:
    """?since=12 applies to every pattern, since=serverless:3,daemon:4 to each; junk means from the start."""
    assert parse_since("12") == 12
    assert parse_since("serverless:3,daemon:4") == {"serverless": 3, "daemon": 4}
    assert parse_since("x") == 0 and parse_since(None) == 0


def _points(n: int, *, start: float = 1000.0, per_s: int = 10, fail_every: int = 0) -> list[dict[str, Any]]:
    out = []
    for k in range(n):
        calls = per_s * k
        fails = calls // fail_every if fail_every else 0
        out.append({"i": k + 1, "at": start + k, "calls": calls, "outcomes": {"ok": calls - fails, "throttled": fails},
                    "cold_starts": min(k, 3), "instances": min(k, 3), "desired": 4, "queue_depth": None,
                    "compute_usd": 0.001 * k, "llm_usd": 0.0005 * k, "p50_ms": 5.0, "p95_ms": 9.0})
    return out


def test_rows_turn_cumulative_counts_into_rates_per_second() -> None:
    """10 calls a second, one in five throttled: 10 requests/s and 2 throttled/s; cold starts per interval."""
    lines = rows(_points(5, fail_every=5), t0=1000.0)
    assert lines["rate"]["requests"] == [(1.0, 10.0), (2.0, 10.0), (3.0, 10.0), (4.0, 10.0)]
    assert [v for _, v in lines["rate"]["throttled"]] == [2.0, 2.0, 2.0, 2.0]
    assert [v for _, v in lines["cold"]["cold starts"]] == [1.0, 1.0, 1.0, 0.0]
    assert lines["queue"] == {} and lines["instances"]["desired"][0] == (0.0, 4.0)


def test_render_draws_every_figure_per_pattern_on_one_time_axis() -> None:
    """One SVG per figure and pattern, each with points; the later pattern starts later on the same axis."""
    doc = {"serverless": {"profile": "aws-lambda", "points": _points(6)},
           "daemon": {"profile": "systemd", "points": _points(6, start=1003.0)}}
    html = render(doc)
    charts = re.findall(r'data-chart="(\w+)" data-pattern="(\w+)" data-points="(\d+)"', html)
    assert len(charts) == 2 * len(FIGURES)
    assert all(int(n) > 0 for key, _, n in charts if key != "queue")
    assert "no queue figures" in html
    assert "8.0 s" in html  # the axis runs from the first point of any pattern to the last of any
    only = charts_json(doc, "daemon")
    assert only["patterns"] == ["serverless", "daemon"]
    assert 'data-pattern="serverless"' not in only["html"] and 'data-pattern="daemon"' in only["html"]


def test_render_thins_long_runs_and_escapes_names() -> None:
    """Thousands of points draw as at most a few hundred per line; names are escaped."""
    doc = {"<b>x</b>": {"profile": "<i>", "points": _points(3000)}}
    html = render(doc)
    assert "<b>x</b>" not in html and "&lt;b&gt;" in html
    drawn = int(re.search(r'data-chart="instances" data-pattern="[^"]+" data-points="(\d+)"', html).group(1))  # type: ignore[union-attr]
    assert 0 < drawn <= 2 * 400


def test_timeline_json_keeps_each_patterns_points_after_its_since() -> None:
    """The timeline document holds each pattern's profile, interval and newer points."""
    a, b = Timeline(_Deployment("container")), Timeline(_Deployment("daemon"))  # type: ignore[arg-type]
    for tl in (a, b, a):
        _sample(tl)
    doc = timeline_json([a, b], {"container": 1})
    assert [p["i"] for p in doc["patterns"]["container"]["points"]] == [2]
    assert len(doc["patterns"]["daemon"]["points"]) == 1 and doc["patterns"]["daemon"]["profile"] == "k8s-hpa"


def test_a_book_keeps_only_newer_points_and_stays_bounded() -> None:
    """TimelineBook.add appends points numbered after the last kept, thins past max_points, and clears."""
    book = TimelineBook(max_points=6)
    pts = _points(5)
    book.add({"daemon": {"profile": "systemd", "interval_s": 0.5, "points": pts[:3]}})
    book.add({"daemon": {"profile": "systemd", "interval_s": 0.5, "points": pts[1:5]}})  # overlaps: no twice
    assert [p["i"] for p in book.to_json()["daemon"]["points"]] == [1, 2, 3, 4, 5]
    assert book.last("daemon") == 5 and book.since_query() == "daemon:5" and book.last("edge") == 0
    book.add({"daemon": {"points": _points(9)[5:]}})
    kept = [p["i"] for p in book.to_json()["daemon"]["points"]]
    assert len(kept) <= 6 and kept[0] == 1 and kept[-1] == 9
    book.clear()
    assert book.to_json() == {}


def test_a_last_point_close_to_the_one_before_does_not_draw_a_rate_spike() -> None:
    """A reader's extra point 10 ms after the previous one merges into that interval: no spike of 100/s."""
    pts = _points(6)
    pts.append({**pts[-1], "i": 7, "at": pts[-1]["at"] + 0.01, "calls": pts[-1]["calls"] + 1})
    rates = [v for _, v in rows(pts, t0=1000.0)["rate"]["requests"]]
    assert max(rates) <= 11.0 and len(rates) == 5


def test_latency_uses_a_log_axis_so_one_spike_leaves_the_rest_readable() -> None:
    """A 20 s spike and 2 s calls share the latency row on whole decades; the 2 s line is not at the bottom."""
    pts = _points(4)
    pts[2] = {**pts[2], "p95_ms": 20_000.0}
    pts[1] = {**pts[1], "p50_ms": 2_000.0}
    html = render({"daemon": {"profile": "p", "points": pts}}, figures=lambda k: k == "latency")
    assert ">1e+05<" in html or ">100,000<" in html  # the top: the decade above 20,000
    assert ">1<" in html  # the bottom: the decade under the smallest value (5 ms)
