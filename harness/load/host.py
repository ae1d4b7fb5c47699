"""The engine host: the deployments of a load test, in a process of their own (``python -m harness.load.host``).

Why a process and not a thread of the Locust process: Locust monkey-patches ``socket``, ``select``,
``subprocess``, ``os.waitpid`` and ``threading`` with gevent on import. Measured on these machines, an
engine started in a real OS thread of a patched Locust process served its gateway, but no invocation ever
finished (every ``/invoke`` answered 504 after aws-lambda's 29 platform seconds) and closing it hung for
60 s: the runtime's socketpairs and child watchers do not survive the patching. A child process keeps the
engine on plain asyncio, off Locust's GIL (Locust's own CPU use no longer delays the gateways), and is
reaped as one process group with every instance it started.

Protocol, one line each, JSON after a tag:

- stdout ``HARNESS-READY {"urls": {pattern: url}, "profiles": {pattern: name}}`` once every gateway answers;
- stdout ``HARNESS-STATS {pattern: /stats}`` every ``--sample-s`` wall seconds (live instances, summary);
- stdout ``HARNESS-SERIES {pattern: {"profile", "interval_s", "points"}}`` with it: the gateways' timeline
  points (``/_harness/timeline``) taken since the previous line, for the live charts;
- stdin ``STOP {extra}`` (or EOF, SIGTERM, SIGINT, SIGHUP): the report is written with ``extra`` under
  ``run.load``, every deployment is closed, then stdout ``HARNESS-DONE {"gateway_requests": {...}}``;
  if Locust is gone (killed: EOF on stdin, a broken stdout) the report is written all the same;
- stdout ``HARNESS-ERROR {"error": message}`` and exit 2 when a deployment cannot start (bad agent...).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from emulators import loops
from emulators.errors import HarnessError

__all__ = ["READY", "STATS", "SERIES", "DONE", "ERROR", "main"]

READY, STATS, DONE, ERROR = "HARNESS-READY", "HARNESS-STATS", "HARNESS-DONE", "HARNESS-ERROR"
SERIES = "HARNESS-SERIES"


def _emit(tag: str, payload: Any) -> None:
    try:
        sys.stdout.write(f"{tag} {json.dumps(payload, separators=(',', ':'), default=str)}\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # Locust is gone (killed, or it exited without waiting for us): nobody reads these lines, but the
        # report must still be written. Later lines, and the flush at exit, go to /dev/null.
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m harness.load.host", description=__doc__.splitlines()[0])
    p.add_argument("--agent", required=True)
    p.add_argument("--patterns", required=True, help="comma-separated pattern names")
    p.add_argument("--profile", action="append", default=[], metavar="[PATTERN=]NAME")
    p.add_argument("--time-scale", type=float, default=0.01)
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="FIELD=VALUE")
    p.add_argument("--report", action="append", default=[], help="report file(s); the suffix picks the format")
    p.add_argument("--sample-s", type=float, default=0.5)
    p.add_argument("--memory", default=None, metavar="URL", help="ctx.memory's store for every deployment")
    return p


class _Sampler:
    """Polls each gateway's public ``/stats`` and ``/_harness/timeline`` and keeps both; counts its own polls.

    The polls are HTTP requests the gateway counts in ``http_responses`` too, so the requests the load
    test made are that sum minus the polls this sampler made before the last one.
    """

    def __init__(self, urls: dict[str, str]) -> None:
        import httpx

        from emulators.timeline import TimelineBook

        self.urls = urls
        self.client = httpx.AsyncClient(timeout=10.0)
        self.polls: dict[str, int] = dict.fromkeys(urls, 0)
        self.timeline: dict[str, list[dict[str, Any]]] = {p: [] for p in urls}
        self.series = TimelineBook()  # the gateways' own timelines: the live charts and the report's
        self.t0 = time.monotonic()

    async def sample_series(self, *, now: bool = False) -> dict[str, Any]:
        """The gateways' timeline points since the last call (the first call starts their sampling); ``now``:
        with a point taken at this moment (the end of the run: every call counted)."""
        fresh: dict[str, Any] = {}
        for pattern, url in self.urls.items():
            try:
                r = await self.client.get(f"{url}/_harness/timeline", params={
                    "since": str(self.series.last(pattern)), **({"fresh": "1"} if now else {})})
                self.polls[pattern] += 1
                doc = r.json()["patterns"][pattern]
            except Exception:  # as for /stats: a slow gateway skips a sample, not the test
                continue
            fresh[pattern] = doc
        self.series.add(fresh)
        return fresh

    async def sample(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        t, at = round(time.monotonic() - self.t0, 3), time.time()
        for pattern, url in self.urls.items():
            try:
                stats: dict[str, Any] = (await self.client.get(f"{url}/stats")).json()
            except Exception:  # a slow gateway under load: skip this sample, not the test
                continue
            self.polls[pattern] += 1
            out[pattern] = stats
            s = stats.get("summary", {})
            self.timeline[pattern].append({
                "t": t, "at": at, "instances": stats.get("instances", 0), "calls": s.get("calls", 0),
                "cold_starts": s.get("cold_starts", 0), "outcomes": s.get("outcomes", {}),
                "tasks": stats.get("tasks", {})})
        return out

    async def requests_seen(self) -> dict[str, int]:
        """Requests each gateway answered, excluding this sampler's own polls."""
        final = await self.sample()
        return {p: sum(int(v) for v in s.get("http_responses", {}).values()) - (self.polls[p] - 1)
                for p, s in final.items()}


async def _stop_signal() -> dict[str, Any]:
    """Wait for ``STOP {extra}`` on stdin, EOF, SIGTERM, SIGINT or SIGHUP; return ``extra``."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[dict[str, Any]] = loop.create_future()

    def finish(extra: dict[str, Any]) -> None:
        if not done.done():
            done.set_result(extra)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, finish, {})
    fd, buf = sys.stdin.fileno(), bytearray()

    def readable() -> None:
        chunk = os.read(fd, 65536)
        if not chunk:
            finish({})
            return
        buf.extend(chunk)
        while b"\n" in buf:
            line, _, rest = bytes(buf).partition(b"\n")
            buf[:] = rest
            tag, _, payload = line.decode().partition(" ")
            if tag == "STOP":
                try:
                    finish(json.loads(payload) if payload.strip() else {})
                except json.JSONDecodeError:
                    finish({})

    loop.add_reader(fd, readable)
    try:
        return await done
    finally:
        loop.remove_reader(fd)


async def _run(args: argparse.Namespace) -> int:
    from harness.api import adeploy
    from harness.cli.main import _parse_sets  # the same FIELD=VALUE grammar as every harness command
    from harness.reports import DeploymentRun, build_report, write_report

    patterns = [p for p in args.patterns.split(",") if p]
    profiles: dict[str, str] = {}
    for item in args.profile:
        pattern, sep, name = item.partition("=")
        profiles.update({pattern: name} if sep else dict.fromkeys(patterns, item))
    overrides = _parse_sets(tuple(args.sets))
    # FIELD=VALUE applies to every pattern; PATTERN.FIELD=VALUE to one (most fields belong to one pattern).
    per_pattern: dict[str, dict[str, Any]] = {p: {} for p in patterns}
    for key in list(overrides):
        prefix, dot, name = key.partition(".")
        if dot and prefix in per_pattern:
            per_pattern[prefix][name] = overrides.pop(key)
    # Every record is kept beside the first report (records/<pattern>-<run id>.sqlite): `harness report
    # DIR/records --merge` joins several hosts' runs.
    records_dir = Path(args.report[0]).parent / "records" if args.report else None
    async with contextlib.AsyncExitStack() as stack:
        deps = []
        try:
            for p in patterns:
                d = adeploy(args.agent, p, profiles.get(p), args.time_scale, records_dir=records_dir,
                            memory=args.memory, **overrides, **per_pattern[p])
                deps.append(await stack.enter_async_context(d))
        except HarnessError as exc:
            _emit(ERROR, {"error": str(exc)})
            return 2
        sampler = _Sampler({d.pattern: d.url for d in deps})
        _emit(READY, {"urls": sampler.urls, "profiles": {d.pattern: d.profile.name for d in deps}})

        stop_sampling = asyncio.Event()

        async def sample_loop() -> None:
            while not stop_sampling.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop_sampling.wait(), args.sample_s)
                    return
                _emit(STATS, await sampler.sample())
                _emit(SERIES, await sampler.sample_series())

        await sampler.sample_series()  # the gateways sample from now on, at their own 0.5 s
        sampling = asyncio.create_task(sample_loop())
        try:
            extra = await _stop_signal()
        finally:
            # Let a poll in flight finish rather than cancel it: a /stats the gateway answered (and counted)
            # but the sampler never counted would make the gateway's total one request over Locust's.
            stop_sampling.set()
            with contextlib.suppress(asyncio.CancelledError):
                await sampling
        _emit(SERIES, await sampler.sample_series(now=True))  # the live charts end where the report does
        seen = await sampler.requests_seen()
        await sampler.client.aclose()
        load = {**extra, "gateway_requests": seen, "timeline": sampler.timeline, "series": sampler.series.to_json()}
        report = build_report([DeploymentRun(d.summary(), d.records(), d.profile.to_json(), time_scale=args.time_scale,
                                             overrides={**overrides, **per_pattern[d.pattern]}) for d in deps],
                              source="locust", agent=args.agent, extra={"load": load})
        for path in args.report:
            write_report(report, Path(path))
    _emit(DONE, {"gateway_requests": seen, "reports": args.report})
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the engine host process."""
    args = _parser().parse_args(argv)
    try:
        return loops.run(_run(args))
    except HarnessError as exc:
        _emit(ERROR, {"error": str(exc)})
        return 2


if __name__ == "__main__":
    sys.exit(main())
