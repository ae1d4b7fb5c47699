"""``fly.toml``: one Fly app on the container pattern (the fly-machines profile).

``[http_service]``: ``concurrency.hard_limit`` -> ``replica_concurrency`` (requests one Machine serves),
``concurrency.soft_limit`` -> ``target_concurrency`` (the load the proxy balances and autostops against;
default 20, F15), ``auto_stop_machines`` ("off"/false keeps Machines running: scale to zero is off;
"stop"/"suspend"/true lets them stop, F2, F16), ``min_machines_running`` -> ``min_replicas`` (F16). ``[[vm]]``:
``memory``/``memory_mb`` -> ``memory_mb``, ``cpus`` -> ``vcpus``, a ``size`` preset ``shared-cpu-Nx`` -> N
vCPUs and 256 MB per 1x when no memory is given (F10). ``[env]`` -> env. The agent is named by
``[processes]``, ``[experimental] cmd`` or the Dockerfile's CMD beside the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from emulators.errors import ConfigError

from .common import Builder, agent_from_command, dockerfile_cmd, number
from .model import Mapped, Where
from .parse import load_toml

__all__ = ["load_fly", "parse_fly_memory"]

_KNOWN_TOP = {"app", "primary_region", "kill_signal", "kill_timeout", "http_service", "vm", "env", "processes",
              "experimental", "build"}


def parse_fly_memory(value: Any, where: Where) -> float:
    """``512`` (MB), ``"512mb"``, ``"1gb"`` in MB."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    m = re.fullmatch(r"\s*([0-9.]+)\s*(mb|gb)?\s*", str(value).lower())
    if m is None:
        raise ConfigError(f"{where.full}: memory = {value!r} is not a size (e.g. 512, '512mb', '1gb')")
    return float(m.group(1)) * (1024.0 if m.group(2) == "gb" else 1.0)


def load_fly(file: Path) -> list[Mapped]:
    """The app a fly.toml declares."""
    doc = load_toml(file)
    data = doc.data
    name = str(data.get("app") or file.parent.name)
    b = Builder(doc, "fly", name, "container", "fly-machines")
    words: list[str] = []
    procs = data.get("processes")
    if isinstance(procs, Mapping) and procs:
        words = [str(next(iter(procs.values())))]
        if len(procs) > 1:
            b.skip(("processes",), "several process groups: the first is run")
    elif isinstance(data.get("experimental"), Mapping) and data["experimental"].get("cmd"):
        cmd = data["experimental"]["cmd"]
        words = [str(w) for w in cmd] if isinstance(cmd, list) else [str(cmd)]
    else:
        words = dockerfile_cmd(file.parent)
    agent, how, app = agent_from_command(words, file.parent)
    if agent is not None:
        b.command_agent(("processes",) if procs else ("app",), " ".join(words), agent, how, app)
    else:
        b.skip(("app",), how + "; pass the agent yourself")
    _service(b, data.get("http_service"))
    _vm(b, data.get("vm"))
    if isinstance(data.get("env"), Mapping):
        b.add_env(("env",), data["env"])
    for k in data:
        if k not in _KNOWN_TOP:
            b.skip((k,), "not emulated")
    for k in ("kill_signal", "kill_timeout", "build", "primary_region"):
        if k in data:
            b.skip((k,), "not emulated")
    return [b.build(agent)]


def _service(b: Builder, svc: Any) -> None:
    if not isinstance(svc, Mapping):
        b.skip(("app",), "no [http_service]: the fly-machines profile's concurrency and autostop apply")
        return
    hp = ("http_service",)
    raw = svc.get("concurrency")
    conc: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    if "hard_limit" in conc:
        n = number(conc["hard_limit"], b.where((*hp, "concurrency", "hard_limit")), "hard_limit", integer=True)
        b.limit((*hp, "concurrency", "hard_limit"), n, 1, None, "1 or more")
        b.take((*hp, "concurrency", "hard_limit"), "replica_concurrency", conc["hard_limit"], int(n),
               "F15: no hard limit by default", knob=(1.0, ""), label="http_service.concurrency.hard_limit")
    soft = conc.get("soft_limit", 20)
    n = number(soft, b.where((*hp, "concurrency", "soft_limit")), "soft_limit", integer=True)
    b.limit((*hp, "concurrency", "soft_limit"), n, 1, None, "1 or more")
    b.take((*hp, "concurrency", "soft_limit"), "target_concurrency", soft, float(n),
           "F15 (default 20)" if "soft_limit" not in conc else "F15", knob=(1.0, ""),
           label="http_service.concurrency.soft_limit")
    for k in conc:
        if k not in ("hard_limit", "soft_limit"):
            b.skip((*hp, "concurrency", k), "the harness counts requests" if k == "type" else "not emulated")
    stop = svc.get("auto_stop_machines", "off")  # F16: "off" by default
    min_running = svc.get("min_machines_running", 0)  # F16: 0 by default
    m = number(min_running, b.where((*hp, "min_machines_running")), "min_machines_running", integer=True)
    if stop in (False, "off"):
        b.take((*hp, "auto_stop_machines"), "min_replicas", stop, max(1, int(m)),
               "F16: Machines keep running (no scale to zero)")
    elif stop in (True, "stop", "suspend"):
        b.take((*hp, "min_machines_running"), "min_replicas", min_running, int(m), "F2, F16",
               knob=(1.0, ""), label="http_service.min_machines_running")
        if stop == "suspend":
            b.skip((*hp, "auto_stop_machines"), "suspend resumes in a few hundred ms (F1); the profile's ~2 s "
                                                "cold start (F1) is used for every start")
    else:
        raise ConfigError(f"{b.where((*hp, 'auto_stop_machines')).full}: auto_stop_machines = {stop!r}; expected "
                          f"'off', 'stop', 'suspend', true or false (F2)")
    for k in svc:
        if k not in ("concurrency", "auto_stop_machines", "min_machines_running", "internal_port", "force_https",
                     "auto_start_machines"):
            b.skip((*hp, k), "not emulated")
    if svc.get("auto_start_machines") is False:
        b.skip((*hp, "auto_start_machines"), "false: stopped Machines stay stopped; the harness starts them on load")


def _vm(b: Builder, vm: Any) -> None:
    vms = vm if isinstance(vm, list) else [vm] if isinstance(vm, Mapping) else []
    if not vms:
        return
    v = vms[0]
    vp: tuple[str | int, ...] = ("vm",)
    if len(vms) > 1:
        b.skip(vp, "several [[vm]] sections: the first is used")
    size = v.get("size")
    n_shared = None
    if isinstance(size, str):
        m = re.fullmatch(r"shared-cpu-(\d+)x", size)
        if m is not None:
            n_shared = int(m.group(1))
            b.take((*vp, "size"), "vcpus", size, float(n_shared), "shared vCPUs: their 6.25 % quota (F14) is not "
                                                                   "emulated")
        else:
            b.skip((*vp, "size"), f"{size!r}: only shared-cpu-Nx presets are in platform-facts.md; set cpus and "
                                  f"memory")
    if "cpus" in v:
        c = number(v["cpus"], b.where((*vp, "cpus")), "cpus")
        b.take((*vp, "cpus"), "vcpus", v["cpus"], c, "", knob=(1.0, ""), label="vm.cpus")
    mem_key = "memory" if "memory" in v else "memory_mb" if "memory_mb" in v else None
    if mem_key is not None:
        mb = parse_fly_memory(v[mem_key], b.where((*vp, mem_key)))
        b.take((*vp, mem_key), "memory_mb", v[mem_key], mb, "", knob=(1.0, ""), label=f"vm.{mem_key}")
    elif n_shared is not None:
        b.take((*vp, "size"), "memory_mb", size, 256.0 * n_shared, "F10: shared-cpu-1x 256 MB")
    for k in v:
        if k not in ("size", "cpus", "memory", "memory_mb", "cpu_kind", "processes"):
            b.skip((*vp, k), "not emulated")
    b.knob_unset("memory_mb", "vm.memory", vp)
