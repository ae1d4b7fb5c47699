"""``harness worker``: a pool of daemon workers that joins a shared queue, until Ctrl-C.

Producers anywhere (``harness.deploy(..., pattern="daemon", queue=URL, state=URL)`` or another
``harness worker``) put tasks on the named queue; every worker process on every machine takes from it and
writes results to the shared state store, where the producer reads them. The queue must be named
(``?queue=NAME``, or the SQS path) and the state store shared (``redis://``, ``postgresql://`` with a
``?namespace=``, or a SQLite file on one machine). Ctrl-C (or SIGTERM) lets running tasks finish for the
profile's ``shutdown_grace_s``, releases the rest to the queue, reaps every process and exits 130.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from typing import Any

import click

from emulators import loops
from emulators.daemon import Daemon, shared_queue
from emulators.errors import HarnessError

from ..api import AsyncDeployment, adeploy

__all__ = ["worker_command"]


class _InputError(click.ClickException):
    """Bad input (agent, URLs, profile): exit 2 like a usage error, with the message alone."""

    exit_code = 2


def _status(d: AsyncDeployment) -> str:
    emu = d._emulator
    assert isinstance(emu, Daemon)
    s = d.summary()
    busy = sum(1 for w in emu._workers if w.busy)
    up = sum(1 for w in emu._workers if w.instance is not None)
    return (f"workers {up} up, {busy} busy | tasks ok {s.ok}, dead-lettered {s.outcomes.get('dead_lettered', 0)}"
            f" | attempts {emu.attempts_total}")


async def _run(d: AsyncDeployment, quiet: bool) -> None:
    async with d:
        click.echo(f"{d.profile.workers} daemon worker(s) on {d.profile.queue} (state {d.config.state}); "
                   f"Ctrl-C to stop")
        sys.stdout.flush()
        stopped = asyncio.Event()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
        last = ""
        while not stopped.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopped.wait(), 1.0)
            line = _status(d)
            if not quiet and line != last:
                click.echo(line, err=True)
                last = line


@click.command("worker")
@click.argument("agent")
@click.option("--queue", required=True, metavar="URL",
              help="The shared queue: redis://host:6379/0?queue=NAME, sqs://host:port/NAME, "
                   "amqp://user:pass@host:5672/%2F?queue=NAME.")
@click.option("--state", required=True, metavar="URL",
              help="The shared state store: redis://...?namespace=NS, postgresql://...?namespace=NS, "
                   "or sqlite:///path on one machine.")
@click.option("--memory", default=None, metavar="URL",
              help="ctx.memory's shared store: postgresql://...?namespace=NS, or sqlite:///path on one machine. "
                   "[default: a SQLite file of this worker alone]")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Worker processes. [default: profile's]")
@click.option("--profile", default=None, help="A daemon profile name or .toml path. [default: daemon-local]")
@click.option("--time-scale", type=float, default=1.0, show_default=True,
              help="Wall seconds per platform second (1: real time).")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE", help="Override a profile field (repeatable).")
@click.option("--quiet", "-q", is_flag=True, help="No status lines.")
def worker_command(agent: str, queue: str, state: str, memory: str | None, workers: int | None,
                   profile: str | None, time_scale: float, sets: tuple[str, ...], quiet: bool) -> None:
    """Run daemon workers for AGENT on a shared queue until Ctrl-C."""
    from .main import _parse_sets  # main registers this command

    if not shared_queue(queue):
        raise _InputError(f"the queue {queue!r} is not named, so no producer could find it; add ?queue=NAME "
                          f"(or use the SQS path: sqs://host:port/NAME)")
    if state.startswith("memory"):
        raise _InputError("a memory:// state store is not shared: producers could not read the results; "
                          "use redis://, postgresql:// or sqlite:///path")
    overrides: dict[str, Any] = {**_parse_sets(sets), "queue": queue}
    if workers is not None:
        overrides["workers"] = workers
    try:
        d = adeploy(agent, "daemon", profile, time_scale, state=state, memory=memory, gateway=False, **overrides)
        loops.run(_run(d, quiet))
    except HarnessError as exc:
        raise _InputError(str(exc)) from None
    except KeyboardInterrupt:
        click.echo("\nstopped: running tasks finished or released; every worker was reaped", err=True)
        sys.exit(130)
