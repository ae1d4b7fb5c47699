"""The ``--time-scale`` option every command shares: ``virtual`` (the default) or wall seconds per platform second."""

from __future__ import annotations

from typing import Any

import click

from emulators.errors import HarnessError

from ..config import parse_time_scale

__all__ = ["TIME_SCALE", "scale_of"]


class _TimeScale(click.ParamType):  # type: ignore[type-arg]  # generic in click >= 8.5 only
    """``virtual`` or a positive number of wall seconds per platform second."""

    name = "virtual|SCALE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            scale = parse_time_scale(value)
        except HarnessError as exc:
            self.fail(str(exc), param, ctx)
        return _VIRTUAL if scale is None else scale


_VIRTUAL = "virtual"  # what --time-scale virtual converts to (None means: not given)
TIME_SCALE = _TimeScale()


def _default_scale(defaults: dict[str, Any]) -> float | None:
    """``[tool.harness] time_scale`` (a number or "virtual"), else the virtual clock."""
    try:
        return parse_time_scale(defaults.get("time_scale"))
    except HarnessError as exc:
        raise click.UsageError(f"pyproject.toml [tool.harness]: {exc}") from None


def scale_of(value: float | str | None, defaults: dict[str, Any] | None = None) -> float | None:
    """What a --time-scale option gave: None (virtual) for 'virtual' or, when not given, the project default."""
    if value is None:
        return _default_scale(defaults or {})
    return None if value == _VIRTUAL else float(value)
