"""``vercel.json``: each entry of ``functions`` (a path or glob under the project) on the serverless pattern.

``maxDuration`` -> ``timeout_s`` and the request's own limit ``gateway_timeout_s`` (the vercel-functions
profile bounds a request by the function's duration, V1; Pro max 800 s, V1); ``memory`` -> ``memory_mb``
(up to 4,096 MB on Pro, V1); ``regions`` (one) -> ``region`` by the metro its code names (iad1 -> us-east
...); rewrites, headers, crons and the like are reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from emulators.errors import ConfigError

from .common import Builder, agent_from_file, number
from .model import Mapped
from .parse import Doc, load_json

__all__ = ["load_vercel"]

# Vercel region codes name airports; the harness's regions name the AWS region in the same metro.
REGIONS = {"iad1": "us-east", "cle1": "us-east", "sfo1": "us-west", "pdx1": "us-west", "dub1": "eu-west",
           "lhr1": "eu-west", "cdg1": "eu-west", "fra1": "eu-central", "arn1": "eu-central", "hnd1": "ap-northeast",
           "kix1": "ap-northeast", "icn1": "ap-northeast", "sin1": "ap-southeast", "syd1": "ap-sydney",
           "gru1": "sa-east"}


def load_vercel(file: Path) -> list[Mapped]:
    """Every function a vercel.json configures."""
    doc = load_json(file)
    data = doc.data
    functions = data.get("functions") if isinstance(data, Mapping) else None
    if not isinstance(functions, Mapping) or not functions:
        raise ConfigError(f"{file}: no 'functions' entries; add one per function file, e.g. "
                          f'"functions": {{"api/agent.py": {{"maxDuration": 60}}}}')
    out = []
    for pattern_path, spec in functions.items():
        files = sorted(file.parent.glob(pattern_path)) if any(c in pattern_path for c in "*?[") else [
            file.parent / pattern_path]
        if not files:
            raise ConfigError(f"{doc.where('functions', pattern_path).full}: {pattern_path!r} matches no file")
        for f in files:
            name = str(f.relative_to(file.parent))
            out.append(_function(doc, name, pattern_path, f, spec or {}, data))
    return out


def _function(doc: Doc, name: str, key: str, f: Path, spec: Mapping[str, Any], data: Mapping[str, Any]) -> Mapped:
    b = Builder(doc, "vercel", name, "serverless", "vercel-functions")
    fp = ("functions", key)
    agent = agent_from_file(f, b.where(fp))
    b.take(fp, "agent", key, agent, "the function's file")
    if "maxDuration" in spec:
        t = number(spec["maxDuration"], b.where((*fp, "maxDuration")), "maxDuration", integer=True)
        b.limit((*fp, "maxDuration"), t, 1, 800, "Vercel's 1-800 s (Pro max, V1)")
        b.take((*fp, "maxDuration"), "timeout_s", spec["maxDuration"], t, "V1", knob=(1.0, ""), label="maxDuration")
        b.overrides["gateway_timeout_s"] = t
    if "memory" in spec:
        m = number(spec["memory"], b.where((*fp, "memory")), "memory", integer=True)
        b.limit((*fp, "memory"), m, 128, 4096, "Vercel's up to 4,096 MB (Pro, V1)")
        b.take((*fp, "memory"), "memory_mb", spec["memory"], m, "V1", knob=(1.0, ""), label="memory")
    for k in spec:
        if k not in ("maxDuration", "memory"):
            b.skip((*fp, k), "not emulated (the function runs on the local Python)")
    regions = data.get("regions")
    if isinstance(regions, list) and regions:
        code = str(regions[0])
        if code in REGIONS:
            b.take(("regions",), "region", regions, REGIONS[code], f"{code}'s metro")
        else:
            b.skip(("regions",), f"region {code!r} has no counterpart in the harness's regions")
        if len(regions) > 1:
            b.skip(("regions",), "several regions: the first is used")
    for k in data:
        if k not in ("functions", "regions", "$schema", "version"):
            b.skip((k,), "not emulated")
    b.knob_unset("timeout_s", "maxDuration", fp)
    b.knob_unset("memory_mb", "memory", fp)
    return b.build(agent)
