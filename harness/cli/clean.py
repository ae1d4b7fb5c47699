"""``harness clean``: remove the Docker containers, networks, volumes and images runs left behind.

Everything the Docker runtime and the container backends create carries the label
``agent-deploy-harness.run=<run id>``; a run that was killed (SIGKILL, a crash of the machine's power)
could not remove its own, and this finds them by that label.
"""

from __future__ import annotations

import click

__all__ = ["clean_command"]


@click.command("clean")
@click.option("--run", "run_id", default=None, metavar="RUN_ID", help="Only this run's leftovers. [default: every run]")
def clean_command(run_id: str | None) -> None:
    """Remove the Docker containers, networks, volumes and images of harness runs (by their run-id label)."""
    from emulators.errors import HarnessError
    from emulators.runtime.docker import LABEL, clean

    try:
        removed = clean(run_id)
    except HarnessError as exc:
        raise click.ClickException(str(exc)) from None
    total = sum(len(v) for v in removed.values())
    for kind, names in removed.items():
        for name in names:
            click.echo(f"removed {kind[:-1]} {name}")
    where = f"run {run_id}" if run_id else f"label {LABEL}"
    click.echo(f"{total} object(s) removed ({where})" if total else f"nothing to remove ({where})")
