"""``harness llm``: run the LLM simulator standalone until Ctrl-C, and print its base URL.

Point any OpenAI or Anthropic SDK at it (``OPENAI_BASE_URL=<url>/v1``, ``ANTHROPIC_BASE_URL=<url>``) to try
an agent against scripted answers, latency, rate limits and faults without a deployment.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path

import click

from emulators import loops
from emulators.clock import Clock
from emulators.errors import HarnessError
from emulators.llm import LLMCall, LLMEndpoint

__all__ = ["llm_command"]


class _InputError(click.ClickException):
    """Bad input (script, port, time scale): exit 2 like a usage error, with the message alone."""

    exit_code = 2


def _describe(call: LLMCall) -> str:
    where = f"  [{call.caller}]" if call.caller else ""
    fault = f"  {call.fault}" if call.fault else ""
    return (f"{call.status} {call.provider} {call.api} {call.model or '-'}  in={call.input_tokens} "
            f"out={call.output_tokens}  {call.platform_s:.2f} s{' stream' if call.stream else ''}{fault}{where}")


async def _serve(endpoint: LLMEndpoint, host: str, port: int) -> None:
    url = await endpoint.start(host, port)
    try:
        what = "simulator" if endpoint.upstream is None else f"metering proxy to {endpoint.upstream.shown}"
        click.echo(f"LLM {what} listening on {url}")
        click.echo(f"  OPENAI_BASE_URL={url}/v1   ANTHROPIC_BASE_URL={url}   (any API key)")
        click.echo("Press Ctrl-C to stop.")
        sys.stdout.flush()
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, stopped.set)
        await stopped.wait()
    finally:
        await endpoint.stop()


@click.command("llm")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port to listen on (0: a free port).")
@click.option("--script", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A TOML script of rules, latency, limits and faults (see fixtures/llm/).")
@click.option("--time-scale", type=float, default=1.0, show_default=True,
              help="Wall seconds per platform second for every emulated wait.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for answers, jitter and faults.")
@click.option("--rpm", type=click.IntRange(min=1), default=None, help="Requests per minute per API key.")
@click.option("--tpm", type=click.IntRange(min=1), default=None, help="Tokens per minute per API key.")
@click.option("--upstream", default=None, metavar="URL",
              help="Metering proxy mode: forward to this OpenAI/Anthropic-compatible base URL instead of "
                   "simulating (the caller's API key, else OPENAI_API_KEY / ANTHROPIC_API_KEY).")
@click.option("--quiet", "-q", is_flag=True, help="Do not print a line per call.")
def llm_command(host: str, port: int, script: Path | None, time_scale: float, seed: int, rpm: int | None,
                tpm: int | None, upstream: str | None, quiet: bool) -> None:
    """Run the OpenAI/Anthropic-compatible LLM simulator (or metering proxy) until Ctrl-C."""
    try:
        endpoint = LLMEndpoint(clock=Clock(time_scale), script=script, seed=seed, rpm=rpm, tpm=tpm,
                               upstream=upstream, on_call=None if quiet else (lambda c: click.echo(_describe(c))))
        loops.run(_serve(endpoint, host, port))
    except HarnessError as exc:
        raise _InputError(str(exc)) from None
    except KeyboardInterrupt:
        click.echo("\nstopped", err=True)
        sys.exit(130)
