"""Cloud Run ``service.yaml`` (``serving.knative.dev/v1`` Service): one service on the container pattern.

``spec.template.spec``: ``containerConcurrency`` -> ``replica_concurrency`` (max 1,000, R14) and the
default autoscaling target of 60 % of it -> ``target_concurrency`` (R13); ``timeoutSeconds`` ->
``timeout_s`` and ``gateway_timeout_s`` (max 3,600 s, R1, R15); the first container's
``resources.limits`` memory (max 32 GiB, R16) and cpu (max 8, R5) -> ``memory_mb`` / ``vcpus``; env values
-> env. Template annotations ``autoscaling.knative.dev/minScale`` / ``maxScale`` -> ``min_replicas`` /
``max_replicas`` (R6). The gcp-cloud-run profile is instance-based billing; without
``run.googleapis.com/cpu-throttling: "false"`` the service is request-based (R20), which is reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from emulators.errors import ConfigError

from .common import Builder, dig, number
from .k8s import parse_cpu, parse_memory_mb
from .model import Mapped
from .parse import load_yaml_docs

__all__ = ["is_cloudrun", "load_cloudrun"]


def is_cloudrun(data: Any) -> bool:
    """Whether a parsed document is a Knative/Cloud Run Service."""
    return (isinstance(data, Mapping) and str(data.get("apiVersion", "")).startswith("serving.knative.dev")
            and data.get("kind") == "Service")


def load_cloudrun(file: Path) -> list[Mapped]:
    """The service(s) of a Cloud Run service.yaml."""
    docs = load_yaml_docs(file)
    out = []
    for doc in docs:
        if not is_cloudrun(doc.data):
            raise ConfigError(f"{doc.where().full}: not a Cloud Run service (apiVersion serving.knative.dev/v1, "
                              f"kind Service)")
        out.append(_service(doc))
    return out


def _service(doc: Any) -> Mapped:
    data = doc.data
    name = str(dig(data, "metadata", "name") or doc.file.parent.name)
    b = Builder(doc, "cloudrun", name, "container", "gcp-cloud-run")
    tp: tuple[str | int, ...] = ("spec", "template")
    sp = (*tp, "spec")
    spec = dig(data, *sp) or {}
    containers = spec.get("containers") or []
    if not containers:
        raise ConfigError(f"{doc.where(*sp).full}: the service has no containers")
    cp = (*sp, "containers", 0)
    c = containers[0]
    agent = b.container_agent(cp, c)
    if "containerConcurrency" in spec:
        n = number(spec["containerConcurrency"], b.where((*sp, "containerConcurrency")), "containerConcurrency",
                   integer=True)
        b.limit((*sp, "containerConcurrency"), n, 1, 1000, "Cloud Run's 1-1,000 (R14)")
        b.take((*sp, "containerConcurrency"), "replica_concurrency", spec["containerConcurrency"], int(n), "R14",
               knob=(1.0, ""), label="containerConcurrency")
        b.overrides["target_concurrency"] = max(1.0, 0.6 * n)  # R13: 60 % of max concurrency by default
    if "timeoutSeconds" in spec:
        t = number(spec["timeoutSeconds"], b.where((*sp, "timeoutSeconds")), "timeoutSeconds", integer=True)
        b.limit((*sp, "timeoutSeconds"), t, 1, 3600, "Cloud Run's 1-3,600 s (R1, R15)")
        b.take((*sp, "timeoutSeconds"), "timeout_s", spec["timeoutSeconds"], t, "R1, R15", knob=(1.0, ""),
               label="timeoutSeconds")
        b.overrides["gateway_timeout_s"] = t
    limits = dig(c, "resources", "limits") or {}
    if "memory" in limits:
        mb = parse_memory_mb(limits["memory"], b.where((*cp, "resources", "limits", "memory")), "memory")
        b.limit((*cp, "resources", "limits", "memory"), mb, 128, 32768, "Cloud Run's up to 32 GiB (R16)")
        b.take((*cp, "resources", "limits", "memory"), "memory_mb", limits["memory"], round(mb, 3), "R10, R16",
               knob=(1.0, "Mi"), label="resources.limits.memory")
    if "cpu" in limits:
        cpus = parse_cpu(limits["cpu"], b.where((*cp, "resources", "limits", "cpu")), "cpu")
        b.limit((*cp, "resources", "limits", "cpu"), cpus, 0.08, 8, "Cloud Run's up to 8 vCPUs (R5)")
        b.take((*cp, "resources", "limits", "cpu"), "vcpus", limits["cpu"], cpus, "R5", knob=(1.0, ""),
               label="resources.limits.cpu")
    b.container_env(cp, c, "valueFrom (Secret Manager) is resolved only on deploy")
    b.container_keys(cp, c, ("command", "args", "resources", "env", "ports", "name"))
    for k in spec:
        if k not in ("containers", "containerConcurrency", "timeoutSeconds"):
            b.skip((*sp, k), "not emulated")
    _annotations(b, (*tp, "metadata", "annotations"), dig(data, *tp, "metadata", "annotations") or {})
    _annotations(b, ("metadata", "annotations"), dig(data, "metadata", "annotations") or {})
    b.knob_unset("memory_mb", "resources.limits.memory", (*cp, "resources"), 1.0, "Mi")
    b.knob_unset("timeout_s", "timeoutSeconds", sp)
    return b.build(agent)


def _annotations(b: Builder, ap: tuple[str | int, ...], notes: Mapping[str, Any]) -> None:
    throttled = True
    for k, v in notes.items():
        path = (*ap, k)
        if k in ("autoscaling.knative.dev/minScale", "autoscaling.knative.dev/maxScale",
                 "run.googleapis.com/minScale", "run.googleapis.com/maxScale"):
            n = number(v, b.where(path), k, integer=True)
            fld = "min_replicas" if k.endswith("minScale") else "max_replicas"
            b.limit(path, n, 0 if fld == "min_replicas" else 1, None, "a replica count")
            b.take(path, fld, v, int(n), "R6", knob=(1.0, ""), label=k)
        elif k == "run.googleapis.com/cpu-throttling":
            throttled = str(v).lower() != "false"
        else:
            b.skip(path, "annotation not emulated")
    if ap[0] == "spec" and throttled:
        b.skip(ap, "CPU is throttled between requests (request-based billing, R20): the gcp-cloud-run profile "
                   "prices instance-based billing; set run.googleapis.com/cpu-throttling: \"false\" to match")
