"""The record store and the running tally: percentiles within 1 %, merging, records written and read back."""

from __future__ import annotations

import gc
import random
import sqlite3
from pathlib import Path

import pytest

from emulators import store
from emulators.records import Cost, Record, percentile, record_from_json, summarize
from emulators.store import RecordLog, iter_records, open_log, read_meta, record_json
from emulators.tally import RELATIVE_ERROR, Histogram, Tally


def rec(outcome: str = "ok", latency: float = 10.0, **kw: object) -> Record:
    return Record(ok=outcome == "ok", outcome=outcome, latency_ms=latency, pattern="serverless",
                  profile="aws-lambda", invocation_id=f"inv-{random.random()}", **kw)  # type: ignore[arg-type]


def test_histogram_percentiles_within_one_percent_of_exact() -> None:
    """On 20,000 log-normal latencies every percentile is within 1 % of the exact nearest-rank one."""
    rng = random.Random(7)
    values = [rng.lognormvariate(3, 1.5) for _ in range(20_000)]
    h = Histogram()
    for v in values:
        h.add(v)
    for q in (1, 10, 50, 90, 95, 99, 99.9):
        exact = percentile(values, q)
        assert abs(h.percentile(q) - exact) <= RELATIVE_ERROR * exact + 1e-12, q
    assert (h.min, h.max, h.count) == (min(values), max(values), len(values))
    assert h.percentile(100) == max(values) and h.percentile(0) == min(values)


def test_histogram_is_exact_for_equal_values_and_handles_zero() -> None:
    """Equal values come back exactly (clamped to min/max); zeros and an empty histogram answer 0."""
    h = Histogram()
    assert h.percentile(50) == 0.0
    for _ in range(5):
        h.add(12.345)
    assert h.percentile(50) == 12.345
    z = Histogram()
    for v in (0.0, 0.0, 0.0, 5.0):
        z.add(v)
    assert z.percentile(50) == 0.0 and z.percentile(100) == 5.0


def test_histogram_merge_equals_one_histogram_and_survives_json() -> None:
    """Two halves merged (also through JSON) answer exactly what one histogram of all values answers."""
    rng = random.Random(3)
    values = [rng.expovariate(0.1) for _ in range(5000)]
    whole, a, b = Histogram(), Histogram(), Histogram()
    for i, v in enumerate(values):
        whole.add(v)
        (a if i % 2 else b).add(v)
    merged = Histogram.from_json(a.to_json())
    merged.merge(Histogram.from_json(b.to_json()))
    for q in (50, 95, 99):
        assert merged.percentile(q) == whole.percentile(q)
    assert merged.count == whole.count and merged.total == pytest.approx(whole.total)


def test_tally_matches_summarize_and_takes_a_record_back() -> None:
    """The tally's summary is summarize()'s; a relabelled record moves from one outcome to the other."""
    records = [rec("ok", 10, cold_start=True, cost=Cost(compute_usd=0.001), input_tokens=3),
               rec("agent_error", 30), rec("throttled", 0.0),
               rec("ok", 999, trigger="warmup", cost=Cost(compute_usd=0.002))]
    t = Tally().add_all(records)
    assert t.summary() == summarize(records)
    s = t.summary()
    assert (s.calls, s.cold_starts, s.warmup_pings, s.input_tokens) == (3, 1, 1, 3)
    assert s.cost_usd == pytest.approx(0.003)
    relabelled = Record(**{**records[1].__dict__, "outcome": "gateway_timeout", "latency_ms": 5.0})
    t.add(records[1], -1)
    t.add(relabelled)
    assert t.summary().outcomes == {"gateway_timeout": 1, "ok": 1, "throttled": 1}


def test_record_json_round_trip() -> None:
    """A record written to the store reads back equal, cost and events included."""
    r = rec("ok", 12.5, cost=Cost(compute_usd=1e-7, requests_usd=2e-7, llm_usd=3e-5), events=({"step": 1}, "x"),
            session_id="s1", region="us-east-1", cpu_limit_ms=50.0)
    import json

    assert record_from_json(json.loads(record_json(r))) == r
    assert record_from_json(r.to_json()) == r


def test_log_writes_every_record_and_reads_them_back_in_order(tmp_path: Path) -> None:
    """Records appended to a log are all in its SQLite file, oldest first, pending ones included."""
    log = RecordLog(tmp_path / "r.sqlite", meta={"pattern": "serverless"})
    records = [rec("ok", float(i)) for i in range(1, 2501)]
    for r in records:
        log.append(r)
    assert len(log) == 2500
    assert list(log) == records  # read back before the writer committed them all
    assert [r for _, r in log.window] == records[-store.WINDOW:]
    log.close()
    assert list(iter_records(tmp_path / "r.sqlite", batch=700)) == records
    assert read_meta(tmp_path / "r.sqlite")["pattern"] == "serverless"
    assert log.tally.calls == 2500


def test_log_replace_updates_the_file_and_the_tally(tmp_path: Path) -> None:
    """replace() relabels a record whether it is pending, committed and in the window, or only in the file."""
    log = RecordLog(tmp_path / "r.sqlite")
    first, mid = rec("ok", 1.0), rec("ok", 2.0)
    log.append(first)
    log.flush()
    for _ in range(store.WINDOW + 5):
        log.append(rec("ok", 3.0))
    log.append(mid)
    log.flush()
    late = rec("ok", 4.0)
    log.append(late)
    for old in (first, mid, late):  # only in the file; committed and in the window; pending
        log.replace(old, Record(**{**old.__dict__, "outcome": "gateway_timeout", "ok": False}))
    got = {r.latency_ms: r.outcome for r in log if r.latency_ms != 3.0}
    assert got == {1.0: "gateway_timeout", 2.0: "gateway_timeout", 4.0: "gateway_timeout"}
    assert log.tally.outcomes["gateway_timeout"] == 3
    log.close()


def test_temporary_log_is_removed_when_dropped_and_kept_in_records_dir(tmp_path: Path) -> None:
    """Without records_dir the store goes with the log; with it, the file stays named by pattern and run."""
    log = open_log("serverless", "aws-lambda", "abc123")
    log.append(rec())
    log.close()
    path = log.path
    assert path.exists() and [r.outcome for r in log] == ["ok"]
    del log
    gc.collect()
    assert not path.parent.exists()
    kept = open_log("daemon", "sqs", "r1", tmp_path / "runs")
    kept.append(rec())
    kept.close()
    del kept
    gc.collect()
    f = tmp_path / "runs" / "daemon-r1.sqlite"
    assert f.exists() and sqlite3.connect(f).execute("SELECT COUNT(*) FROM records").fetchone() == (1,)


def test_since_reads_from_the_window_or_the_file(tmp_path: Path) -> None:
    """since(n) gives the records after the first n, from memory while it holds them, else from the file."""
    log = RecordLog(tmp_path / "r.sqlite")
    records = [rec("ok", float(i)) for i in range(1, store.WINDOW + 501)]
    for r in records:
        log.append(r)
    assert log.since(len(records) - 3) == records[-3:]  # in the window
    assert log.since(10) == records[10:]  # older than the window: read from the file
    assert log.since(len(records)) == []
    log.close()


def test_rows_are_made_after_the_callers_turn_and_readers_see_every_record(tmp_path: Path) -> None:
    """Inside a loop a record's row waits for the next turn, yet tally, iteration and replace see it at once."""
    import asyncio

    log = RecordLog(tmp_path / "r.sqlite")

    async def run() -> None:
        first, second = rec(latency=1.0), rec(latency=2.0)
        log.append(first)
        log.append(second)
        assert log._pending == [] and len(log._unrowed) == 2  # nothing serialized in the appending turn
        assert log.tally.summary(pattern="serverless", profile="aws-lambda").calls == 2
        relabelled = Record(**{**first.__dict__, "outcome": "gateway_timeout", "ok": False})
        log.replace(first, relabelled)  # before its row was made
        assert [r.outcome for r in log] == ["gateway_timeout", "ok"]
        log.append(rec(latency=3.0))
        await asyncio.sleep(0)  # the loop turns: the row of the third is made
        assert log._unrowed == [] and len(log._pending) == 1

    asyncio.run(run())
    log.close()
    assert [r.latency_ms for r in iter_records(log.path)] == [1.0, 2.0, 3.0]
