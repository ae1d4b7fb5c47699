"""``harness serve``: run one deployment (or one per pattern) behind its HTTP gateway until Ctrl-C.

Prints each gateway's base URL as soon as it answers, then a live one-line status (calls, outcomes,
latency, cold starts, cost) on stderr: rewritten in place on a terminal, a new line on each change
otherwise. Ctrl-C (or SIGTERM) closes every deployment, so no process is left, and exits 130.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import warnings
from pathlib import Path
from typing import Any

import click

from emulators import loops
from emulators.errors import HarnessError
from emulators.gateway import GatewayOptions, is_loopback_host
from emulators.runtime.agent import ADAPTERS, HTTP_ADAPTERS

from ..api import AsyncDeployment, adeploy

__all__ = ["serve_command"]

_ROUTES = ("POST /invoke  POST /invoke/stream  POST /tasks  GET /tasks/{id}  GET /tasks/{id}/events  "
           "WS /tasks/{id}/ws  GET /stats /metrics /healthz /openapi.json  GET /_harness/dashboard /_harness/timeline")


class _InputError(click.ClickException):
    """Bad input (agent, pattern, profile, port): exit 2 like a usage error, with the message alone."""

    exit_code = 2


def _status(deps: list[AsyncDeployment]) -> str:
    parts = []
    for d in deps:
        s = d.summary()
        failed = " ".join(f"{k} {v}" for k, v in s.outcomes.items() if k != "ok")
        parts.append(f"{d.pattern}: {s.calls} calls, ok {s.ok}" + (f", {failed}" if failed else "")
                     + f", p50 {s.latency_p50_ms:.0f} ms, cold {s.cold_starts}, ${s.cost_usd:.6f}")
    return " | ".join(parts)


async def _status_loop(deps: list[AsyncDeployment], every_s: float) -> None:
    tty = sys.stderr.isatty()
    last = ""
    while True:
        await asyncio.sleep(every_s)
        line = _status(deps)
        if tty:
            sys.stderr.write("\r\x1b[2K" + line)
            sys.stderr.flush()
        elif line != last:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
        last = line


async def _serve(deps: list[AsyncDeployment], quiet: bool, secret_given: bool) -> None:
    async with contextlib.AsyncExitStack() as stack:
        for d in deps:
            await stack.enter_async_context(d)
            click.echo(f"{d.pattern} ({d.profile.name}): {d.url}")
            sys.stdout.flush()
        # Sample from the start, and let each gateway's dashboard show every pattern served here.
        timelines = [tl for tl in (d.timeline for d in deps) if tl is not None]
        for tl in timelines:
            tl.peers = timelines
            tl.start()
        if deps and deps[0].config.adapter in HTTP_ADAPTERS:
            click.echo(f"  routes: the app's own, at the root (as API Gateway proxy events); the harness's under "
                       f"/_harness/: {_ROUTES}")
        else:
            click.echo(f"  routes: {_ROUTES}")
        click.echo(f"  live charts: {deps[0].url}/_harness/dashboard")
        if not secret_given:
            click.echo(f"  webhook secret (HMAC-SHA256, header x-harness-signature): {deps[0].webhook_secret}")
        click.echo("Press Ctrl-C to stop.")
        sys.stdout.flush()
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, stopped.set)
        status = None if quiet else asyncio.create_task(_status_loop(deps, 1.0))
        try:
            await stopped.wait()
        finally:
            if status is not None:
                status.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await status


@click.command("serve")
@click.argument("agent")
@click.option("--pattern", default=None, help="The pattern to serve. [default: serverless]")
@click.option("--patterns", default=None, help="Several patterns ('all' or comma-separated), one port each.")
@click.option("--profile", "profiles", multiple=True, metavar="[PATTERN=]NAME",
              help="Profile name or .toml path, for all patterns or one (repeatable).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback prints a warning.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port (0: a free one); with several patterns PORT, PORT+1, ...")
@click.option("--time-scale", type=float, default=1.0, show_default=True,
              help="Wall seconds per platform second (1: the platform's real timings).")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE", help="Override a profile field (repeatable).")
@click.option("--adapter", type=click.Choice(list(ADAPTERS)), default="auto",
              help="How to call the agent: agent(task, ctx), Lambda handler(event, context), an ASGI app (asgi), "
                   "or a Lambda handler behind API Gateway (apigw-v1 REST / apigw-v2 HTTP API).")
@click.option("--api-key", envvar="HARNESS_API_KEY", default=None,
              help="Require this key ('x-api-key' or 'Authorization: Bearer'). [env: HARNESS_API_KEY]")
@click.option("--webhook-secret", envvar="HARNESS_WEBHOOK_SECRET", default=None,
              help="Secret webhooks are signed with. [default: random; env: HARNESS_WEBHOOK_SECRET]")
@click.option("--webhook-allow", multiple=True, metavar="HOST|CIDR",
              help="Allow webhooks to this host or network beyond loopback (repeatable).")
@click.option("--llm", type=click.Choice(["sim", "off"]), default="sim",
              help="The LLM endpoint instances talk to: the built-in simulator, or none.")
@click.option("--llm-script", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A TOML script of scripted LLM answers (see fixtures/llm/).")
@click.option("--records-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep every record in DIR/<pattern>-<run id>.sqlite, for `harness report DIR`.")
@click.option("--memory", default=None, metavar="URL",
              help="ctx.memory's store: sqlite:///path or postgresql://... [default: a SQLite file per deployment]")
@click.option("--quiet", "-q", is_flag=True, help="No live status line.")
def serve_command(agent: str, pattern: str | None, patterns: str | None, profiles: tuple[str, ...], host: str,
                  port: int, time_scale: float, sets: tuple[str, ...], adapter: str, api_key: str | None,
                  webhook_secret: str | None, webhook_allow: tuple[str, ...], llm: str, llm_script: Path | None,
                  records_dir: Path | None, memory: str | None, quiet: bool) -> None:
    """Serve AGENT over HTTP as PATTERN would, until Ctrl-C."""
    from .main import _parse_patterns, _parse_profiles, _parse_sets  # main registers this command

    if pattern is not None and patterns is not None:
        raise click.UsageError("give --pattern or --patterns, not both")
    chosen = _parse_patterns(patterns or pattern or "serverless")
    profile_map = _parse_profiles(profiles, chosen)
    overrides: dict[str, Any] = _parse_sets(sets)
    if port and port + len(chosen) - 1 > 65535:
        raise click.BadParameter(f"{len(chosen)} patterns need ports {port}-{port + len(chosen) - 1}",
                                 param_hint="--port")
    if not is_loopback_host(host):
        click.echo(f"warning: listening on {host}: the gateway is reachable from other machines"
                   + ("" if api_key else " and has no API key (--api-key)"), err=True)
    try:
        deps = []
        for i, p in enumerate(chosen):
            extra: dict[str, Any] = {} if webhook_secret is None else {"webhook_secret": webhook_secret}
            opts = GatewayOptions(host=host, port=port + i if port else 0, api_key=api_key,
                                  webhook_allow=webhook_allow, **extra)
            deps.append(adeploy(agent, p, profile_map.get(p), time_scale, adapter=adapter, llm=llm,
                                llm_script=llm_script, gateway=opts, records_dir=records_dir, memory=memory,
                                **overrides))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the exposure warning was printed above
            loops.run(_serve(deps, quiet, webhook_secret is not None))
    except HarnessError as exc:
        raise _InputError(str(exc)) from None
    except KeyboardInterrupt:
        # loops.run cancelled _serve, whose exit stack closed every deployment and reaped its processes.
        click.echo("\nstopped: every instance was reaped", err=True)
        _kept(deps, records_dir)
        sys.exit(130)
    _kept(deps, records_dir)


def _kept(deps: list[AsyncDeployment], records_dir: Path | None) -> None:
    if records_dir is None:
        return
    for d in deps:
        click.echo(f"{d.pattern}: {d.summary().calls} calls' records in {d.records_path}", err=True)
    click.echo(f"report: harness report {records_dir} [--out report.html]", err=True)
