"""The record store: every record of a deployment written to SQLite as it finishes, a bounded window in memory.

A deployment's ``records`` is a ``RecordLog``. Appending a record (on the event loop, once per call) costs
a tally update, and the record's row (its JSON) is made on the loop's next turn, once the caller has its
answer; every reader makes the missing rows first. The ``Tally`` keeps the live summary (``/stats``,
``/metrics``, the status line, the Locust tab: O(1) per question), ``window`` keeps the latest ``WINDOW``
records for code that looks at recent calls, and a writer thread commits the rows to a SQLite file every
``FLUSH_S`` seconds or ``FLUSH_ROWS`` records, whichever comes first. Memory therefore stays flat however
long the run; ``iter(log)`` (``Deployment.records()``, the reports, readiness) reads every record back from
the file, the ones not yet written included, in the order they were appended.

Why SQLite: it is in the standard library, a reader sees committed rows while the writer goes on (WAL),
and ``sqlite3`` lets go of the GIL while it steps, so the writer thread does not hold the event loop up.
Measured on the 2-core CI machine (``python -m benchmarks --only soak``): see docs/performance.md.

The file holds one row per record (``seq``, outcome, trigger, latency, start, and the record as JSON) and a
``meta`` table: the pattern, the profile and, when the deployment closes, its final summary (the figures
that do not come from records: provisioned capacity, the replica timeline). ``harness report`` reads a
store back with ``read_meta`` and ``iter_records`` after its deployment has gone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import sqlite3
import tempfile
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .jsonfast import dumps
from .records import Record, record_from_json
from .tally import Tally

__all__ = ["FLUSH_ROWS", "FLUSH_S", "WINDOW", "RecordLog", "iter_records", "open_log", "read_meta", "record_json"]

WINDOW = 1000  # the latest records kept in memory
FLUSH_S = 0.5  # wall seconds between the writer's commits
FLUSH_ROWS = 5000  # or this many records waiting, whichever comes first
_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY, invocation_id TEXT NOT NULL, trigger TEXT NOT NULL, outcome TEXT NOT NULL,
    latency_ms REAL NOT NULL, started_at REAL NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


# Fields left out of a stored record while they hold their default (most of the ~45 do on any one call):
# a row is about half the size, and record_from_json fills them back in.
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Record)
             if f.default is None or isinstance(f.default, int | float | str)}


def record_json(r: Record) -> str:
    """A record as one JSON text: ``Record.to_json`` without the fields at their defaults (and no deep copy)."""
    d = {k: v for k, v in r.__dict__.items()
         if k not in _DEFAULTS or (v is not None and v != _DEFAULTS[k])}
    d["cost"] = r.cost.to_json()
    if r.events:
        d["events"] = list(r.events)
    else:
        d.pop("events", None)
    return dumps(d, default=repr).decode()


_Row = tuple[int, str, str, str, float, float, str]  # the columns of the records table


def _row(seq: int, r: Record) -> _Row:
    return (seq, r.invocation_id, r.trigger, r.outcome, r.latency_ms, r.started_at, record_json(r))


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a crash of this process loses nothing committed
    conn.executescript(_SCHEMA)
    return conn


def read_meta(path: Path) -> dict[str, Any]:
    """The ``meta`` table of a store file, values decoded from JSON."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM meta")}
    finally:
        conn.close()


class RecordLog:
    """A deployment's records: tallied and windowed in memory, every one written to a SQLite file."""

    def __init__(self, path: Path, *, meta: dict[str, Any] | None = None) -> None:
        self.path = path
        self.tally = Tally()
        self.window: deque[tuple[int, Record]] = deque(maxlen=WINDOW)
        self._count = 0
        self._unrowed: list[tuple[int, Record]] = []  # appended this loop turn: their rows are not made yet
        self._rowing = False  # a call to _make_rows is scheduled on the loop
        self._pending: list[_Row] = []  # rows made on the loop, committed by the writer
        self._plock = threading.Lock()  # the unrowed and pending lists
        self._lock = threading.Lock()  # the connection (a flush holds it from taking the pending list to commit)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = _connect(path)
        if meta:
            self.set_meta(**meta)
        self._wake = threading.Event()
        self._closed = False
        self._writer = threading.Thread(target=self._write_loop, name="harness-records", daemon=True)
        self._writer.start()

    # ---- the hot path ----------------------------------------------------------------------------------

    def append(self, record: Record) -> None:
        """One more record: tallied and windowed now; its row made once the caller has its answer."""
        self._count += 1
        item = (self._count, record)
        self.tally.add(record)
        self.window.append(item)
        # The row (its JSON, the largest part of an append) is made in a callback on the next turn of the
        # loop, after the call's caller got its answer (the gateway writes its response in this turn): the
        # cost moves off the request's critical path. It stays on the loop, not in the writer thread:
        # serializing a batch of thousands there held the GIL for tens of ms, and the loop's requests waited
        # on it (p99 +10 ms under load). The writer's executemany runs in C and lets the GIL go.
        with self._plock:  # held for an append or a swap, never while writing
            self._unrowed.append(item)
            schedule, self._rowing = not self._rowing, True
        if schedule:
            try:
                asyncio.get_running_loop().call_soon(self._make_rows)
            except RuntimeError:  # appended outside an event loop (a report, a test): make the row now
                self._make_rows()

    def _make_rows(self) -> None:
        """Make the rows of the records appended since the last call (on the loop, or in a reader)."""
        with self._plock:
            items, self._unrowed, self._rowing = self._unrowed, [], False
            if items:
                self._pending.extend([_row(seq, r) for seq, r in items])
            n = len(self._pending)
        if n >= FLUSH_ROWS:
            self._wake.set()

    def replace(self, old: Record, new: Record) -> None:
        """Put ``new`` where ``old`` was (a record relabelled after the fact: the gateway's 504)."""
        seq = 0
        for i in range(len(self.window) - 1, -1, -1):
            s, rec = self.window[i]
            if rec is old:
                seq = s
                self.window[i] = (seq, new)
                break
        self.tally.add(old, -1)
        self.tally.add(new)
        self._make_rows()
        with self._lock, self._plock:
            for j, row in enumerate(self._pending):
                if row[0] == seq or row[1] == old.invocation_id:
                    self._pending[j] = _row(row[0], new)
                    return
            # Written already: by its sequence number if it is still in the window, else by its id.
            where, key = ("seq = ?", seq) if seq else ("invocation_id = ?", old.invocation_id)
            self._conn.execute(f"UPDATE records SET outcome = ?, latency_ms = ?, data = ? WHERE {where}",
                               (new.outcome, new.latency_ms, record_json(new), key))

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def __iter__(self) -> Iterator[Record]:
        """Every record so far, oldest first, read back from the file (the unwritten ones written first)."""
        self.flush()
        return iter_records(self.path, conn=self._conn, lock=self._lock)

    def since(self, after: int) -> list[Record]:
        """The records appended after the first ``after`` (from memory while the window still holds them)."""
        if after >= self._count:
            return []
        window = list(self.window)
        if window and window[0][0] <= after + 1:
            return [r for seq, r in window if seq > after]
        self.flush()
        return list(iter_records(self.path, conn=self._conn, lock=self._lock, after=after))

    # ---- the writer ------------------------------------------------------------------------------------

    def flush(self) -> None:
        """Commit every record appended so far."""
        self._make_rows()
        self._commit()

    def _commit(self) -> None:
        """Commit the rows made so far (the writer thread's periodic work: it never makes rows itself)."""
        with self._lock:
            with self._plock:
                items, self._pending = self._pending, []
            if items:
                self._conn.execute("BEGIN")
                self._conn.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?)", items)
                self._conn.execute("COMMIT")

    def _write_loop(self) -> None:
        while not self._closed:
            self._wake.wait(FLUSH_S)
            self._wake.clear()
            try:
                self._commit()
            except sqlite3.Error:  # the disk is full or the file went: keep what is pending, try again later
                time.sleep(FLUSH_S)

    def set_meta(self, **values: Any) -> None:
        """Store JSON values in the ``meta`` table (the pattern, the profile, the final summary)."""
        with self._lock:
            self._conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                   [(k, json.dumps(v, default=repr)) for k, v in values.items()])

    def close(self) -> None:
        """Write what is pending and stop the writer; reading (``iter``) still works afterwards."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._writer.join()
        self.flush()


def iter_records(path: Path, *, conn: sqlite3.Connection | None = None,
                 lock: threading.Lock | None = None, batch: int = 2000, after: int = 0) -> Iterator[Record]:
    """The records of a store file, oldest first, in batches (a million records need not be in memory)."""
    own = conn is None
    c = sqlite3.connect(f"file:{path}?mode=ro", uri=True) if conn is None else conn
    lk = lock if lock is not None else threading.Lock()
    last = after
    try:
        while True:
            with lk:
                rows = c.execute("SELECT seq, data FROM records WHERE seq > ? ORDER BY seq LIMIT ?",
                                 (last, batch)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            for _, data in rows:
                yield record_from_json(json.loads(data))
    finally:
        if own:
            c.close()


def open_log(pattern: str, profile: str, run_id: str, records_dir: str | Path | None = None) -> RecordLog:
    """The record log of a new deployment.

    With ``records_dir`` the store is ``records_dir/<pattern>-<run id>.sqlite`` and stays for ``harness
    report``; without, it lives in a private temporary directory removed once the log is garbage (or the
    process exits), so records stay readable after the deployment closes for as long as it is referenced.
    """
    meta = {"pattern": pattern, "profile": profile, "run_id": run_id, "created_at": time.time()}
    if records_dir is not None:
        return RecordLog(Path(records_dir) / f"{pattern}-{run_id}.sqlite", meta=meta)
    tmp = Path(tempfile.mkdtemp(prefix=f"harness-records-{run_id}-"))
    log = RecordLog(tmp / "records.sqlite", meta=meta)
    weakref.finalize(log, _discard, log._conn, tmp)
    return log


def _discard(conn: sqlite3.Connection, tmp: Path) -> None:
    conn.close()
    shutil.rmtree(tmp, ignore_errors=True)
