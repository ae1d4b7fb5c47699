"""Cloudflare ``wrangler.toml`` / ``wrangler.jsonc`` / ``wrangler.json``: one Worker on the edge pattern.

``main`` -> the agent (its ``agent``/``handler`` callable; a fetch handler needs part 2 of issue 21);
``limits.cpu_ms`` -> ``cpu_limit_ms`` (Paid only, up to 300,000 ms: C2), which also picks the Paid
profile; ``usage_model`` "standard"/"unbound" -> Paid, "bundled" (the legacy model) is reported; ``vars``
-> env. The plan is not in the file: without a Paid-only setting the Free profile (10 ms CPU, C1) is used,
and a warning says how to change it. Bindings (KV, D1, R2, Durable Objects, queues) are reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from emulators.errors import ConfigError

from .common import Builder, agent_from_file, number
from .model import Mapped
from .parse import Doc, load_json, load_toml

__all__ = ["load_wrangler"]

_IGNORED = {"name", "compatibility_date", "compatibility_flags", "account_id", "workers_dev", "$schema"}


def load_wrangler(file: Path) -> list[Mapped]:
    """The Worker a wrangler file declares."""
    doc: Doc = load_toml(file) if file.suffix == ".toml" else load_json(file, comments=True)
    data = doc.data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{file}: expected a table of settings at the top level")
    name = str(data.get("name") or file.parent.name)
    raw_limits = data.get("limits")
    limits: Mapping[str, Any] = raw_limits if isinstance(raw_limits, Mapping) else {}
    usage = data.get("usage_model")
    paid = "cpu_ms" in limits or usage in ("standard", "unbound")
    b = Builder(doc, "wrangler", name, "edge", "cloudflare-workers-paid" if paid else "cloudflare-workers-free")
    if not paid:
        b.skip(("name",), "the plan is not in the file: the Free plan's limits apply (10 ms CPU, C1); "
                          "--profile edge=cloudflare-workers-paid for Paid")
    agent = None
    if isinstance(data.get("main"), str):
        where = b.where(("main",))
        agent = agent_from_file(doc.file.parent / data["main"], where)
        b.take(("main",), "agent", data["main"], agent, "the Worker's entry module")
    else:
        b.skip(("main",), "no main: pass the agent yourself")
    if "cpu_ms" in limits:
        ms = number(limits["cpu_ms"], b.where(("limits", "cpu_ms")), "limits.cpu_ms", integer=True)
        b.limit(("limits", "cpu_ms"), ms, 1, 300000, "Workers' up to 300,000 ms (C2)")
        b.take(("limits", "cpu_ms"), "cpu_limit_ms", limits["cpu_ms"], ms, "C1, C2", knob=(1.0, ""),
               label="limits.cpu_ms")
    for k in limits:
        if k != "cpu_ms":
            b.skip(("limits", k), "not emulated")
    if usage is not None:
        if usage in ("standard", "unbound"):
            b.take(("usage_model",), "profile", usage, b.profile, "the Paid plan's limits and prices (C1, C4)")
        else:
            b.skip(("usage_model",), f"{usage!r}: the legacy model's limits are not in platform-facts.md")
    vars_ = data.get("vars")
    if vars_ is not None:
        b.add_env(("vars",), vars_)
    for k, v in data.items():
        if k in ("main", "limits", "usage_model", "vars") or k in _IGNORED:
            continue
        why = "bindings are not emulated" if isinstance(v, list | Mapping) else "not emulated"
        if k == "env":
            why = "environments are not read: the top-level settings are used"
        b.skip((k,), why)
    b.knob_unset("cpu_limit_ms", "limits.cpu_ms", ("limits",) if limits else ())
    return [b.build(agent)]


def is_wrangler(file: Path) -> bool:
    """Whether the file name says it is a wrangler file."""
    return file.name in ("wrangler.toml", "wrangler.jsonc", "wrangler.json")
