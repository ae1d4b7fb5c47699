"""A small HTTP/1.1 load generator, the fallback when ``wrk`` is not installed.

``python -m benchmarks.loadgen URL --connections 8 --duration 10`` keeps ``connections`` keep-alive
connections busy for ``duration`` seconds, each sending ``POST <path>`` with the body ``{}`` as soon as the
previous answer is read, and prints one JSON object: requests, duration, requests/s, non-2xx answers,
socket errors, p50/p99 latency in ms. It runs in its own process (the server's process keeps its cores
to itself as far as two cores allow) and speaks raw HTTP/1.1 over asyncio streams: an HTTP client library
would cost more CPU per request than the servers it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from urllib.parse import urlsplit

__all__ = ["main", "run_load"]


async def _connection(host: str, port: int, request: bytes, until: float, lat: list[float],
                      counts: dict[str, int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    pc = time.perf_counter
    try:
        while True:
            t0 = pc()
            if t0 >= until:
                return
            writer.write(request)
            status_line = await reader.readline()
            if not status_line:
                counts["errors"] += 1
                return
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            lat.append(pc() - t0)
            counts["requests"] += 1
            if not status_line.split(b" ", 2)[1].startswith(b"2"):
                counts["non_2xx"] += 1
    except (OSError, asyncio.IncompleteReadError):
        counts["errors"] += 1
    finally:
        writer.close()


async def run_load(url: str, connections: int, duration_s: float) -> dict[str, float]:
    """Drive ``url`` (``http://host:port/path``) with ``connections`` connections for ``duration_s``."""
    parts = urlsplit(url)
    host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path or "/"
    request = (f"POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-type: application/json\r\n"
               f"content-length: 2\r\n\r\n{{}}").encode()
    lat: list[float] = []
    counts = {"requests": 0, "non_2xx": 0, "errors": 0}
    t0 = time.perf_counter()
    until = t0 + duration_s
    await asyncio.gather(*(_connection(host, port, request, until, lat, counts) for _ in range(connections)))
    took = time.perf_counter() - t0
    lat.sort()

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, max(0, math.ceil(p / 100 * len(lat)) - 1))] * 1000 if lat else 0.0

    return {"requests": counts["requests"], "duration_s": took, "rps": counts["requests"] / took,
            "non_2xx": counts["non_2xx"], "errors": counts["errors"], "p50_ms": pct(50), "p99_ms": pct(99)}


def main(argv: list[str] | None = None) -> int:
    """Parse options, run, print the JSON result."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadgen")
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run_load(args.url, args.connections, args.duration))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
