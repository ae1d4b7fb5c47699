"""Embedded long-term memory search: the pure-Python exact scan over SQLite vs sqlite-vec, at 10k and 100k.

``python -m benchmarks.vector_search [--sizes 10000,100000] [--dims 256] [--queries 20] [--json out.json]``

For each size, one namespace holds that many random unit vectors (the worst case: a search scans the
namespace, and here the namespace is everything). Reported per backend: rows written per second, and the
search latency (median and max over ``--queries`` top-5 searches, a fresh query vector each), plus the
file size per row. Backends:

- ``sqlite-scan``: ``emulators.memory.sqlite_memory.SQLiteMemory`` searched in pure Python (stdlib only);
- ``sqlite-vec``: the same store and table, searched by sqlite-vec's ``vec_distance_cosine`` (the default
  where ``apsw`` and ``sqlite-vec`` are installed);
- ``sqlite-vec vec0``: sqlite-vec's ``vec0`` virtual table with the namespace as a partition key, a KNN
  query (``MATCH ... AND k = 5``); brute force in C. It needs a SQLite that loads extensions: the
  stdlib module here is built without ``enable_load_extension``, so it runs through ``apsw`` when both
  ``apsw`` and ``sqlite-vec`` are installed (``pip install apsw sqlite-vec``), and is skipped otherwise.

Timing only: it reports and never fails. The figures and the choice are in docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from emulators.errors import MemoryStoreError
from emulators.memory import Item
from emulators.memory.sqlite_memory import SQLiteMemory, pack

BATCH = 1000


def _unit(rng: random.Random, dims: int) -> list[float]:
    v = [rng.gauss(0.0, 1.0) for _ in range(dims)]
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def _searches(search: Any, rng: random.Random, dims: int, queries: int) -> dict[str, float]:
    times = []
    for _ in range(queries):
        q = _unit(rng, dims)
        t0 = time.perf_counter()
        hits = search(q)
        times.append((time.perf_counter() - t0) * 1000.0)
        assert len(hits) == 5
    return {"search_p50_ms": statistics.median(times), "search_max_ms": max(times)}


def bench_scan(n: int, dims: int, queries: int, where: Path, search: str) -> dict[str, Any] | None:
    """The embedded store (``search``: python or sqlite-vec): write ``n`` vectors, then time top-5 searches."""
    rng = random.Random(1)
    try:
        store = SQLiteMemory(where / f"scan-{search}-{n}.sqlite3", dims, search=search)
    except MemoryStoreError:
        return None  # sqlite-vec not installed
    t0 = time.perf_counter()
    for start in range(0, n, BATCH):
        ids = range(start, min(n, start + BATCH))
        store.add("bench", [Item(f"m{i}", f"memory {i}", _unit(rng, dims)) for i in ids])
    write_s = time.perf_counter() - t0
    out = {"backend": store.mode, "rows": n, "dims": dims, "rows_per_s": n / write_s,
           **_searches(lambda q: store.search("bench", q, 5), rng, dims, queries)}
    store.close()
    out["bytes_per_row"] = (where / f"scan-{search}-{n}.sqlite3").stat().st_size / n
    return out


def bench_vec0(n: int, dims: int, queries: int, where: Path) -> dict[str, Any] | None:
    """sqlite-vec's vec0 table (through apsw), the same rows and searches; None if it cannot load."""
    try:
        import apsw
        import sqlite_vec
    except ImportError:
        return None
    rng = random.Random(1)
    path = where / f"vec0-{n}.sqlite3"
    db = apsw.Connection(str(path))
    db.enable_load_extension(True)
    db.load_extension(sqlite_vec.loadable_path())
    db.execute(f"CREATE VIRTUAL TABLE memory USING vec0(ns TEXT PARTITION KEY, embedding float[{dims}], "
               f"+id TEXT, +text TEXT)")
    t0 = time.perf_counter()
    for start in range(0, n, BATCH):
        rows = [("bench", pack(_unit(rng, dims)), f"m{i}", f"memory {i}") for i in range(start, min(n, start + BATCH))]
        with db:
            db.executemany("INSERT INTO memory (ns, embedding, id, text) VALUES (?, ?, ?, ?)", rows)
    write_s = time.perf_counter() - t0

    def search(q: list[float]) -> list[Any]:
        return list(db.execute("SELECT id, text, distance FROM memory WHERE embedding MATCH ? AND k = 5 "
                               "AND ns = ? ORDER BY distance", (pack(q), "bench")))

    out = {"backend": "sqlite-vec vec0", "rows": n, "dims": dims, "rows_per_s": n / write_s,
           **_searches(search, rng, dims, queries)}
    db.close()
    out["bytes_per_row"] = path.stat().st_size / n
    return out


def main(argv: list[str] | None = None) -> int:
    """Run and print the table (and write JSON if asked)."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.vector_search", description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--dims", type=int, default=256)
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-vectors-") as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            for row in (bench_scan(n, args.dims, args.queries, Path(tmp), "python"),
                        bench_scan(n, args.dims, args.queries, Path(tmp), "sqlite-vec"),
                        bench_vec0(n, args.dims, args.queries, Path(tmp))):
                if row is not None:
                    rows.append(row)
    print(f"{'backend':18} {'rows':>8} {'dims':>5} {'write rows/s':>13} {'search p50 ms':>14} {'max ms':>9} "
          f"{'bytes/row':>10}")
    for r in rows:
        print(f"{r['backend']:18} {r['rows']:>8,} {r['dims']:>5} {r['rows_per_s']:>13,.0f} {r['search_p50_ms']:>14.2f} "
              f"{r['search_max_ms']:>9.2f} {r['bytes_per_row']:>10,.0f}")
    if not any(r["backend"].startswith("sqlite-vec") for r in rows):
        print("sqlite-vec skipped: pip install apsw sqlite-vec (the stdlib sqlite3 here cannot load extensions)")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
