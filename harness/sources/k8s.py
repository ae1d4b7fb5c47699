"""Kubernetes manifests (multi-document YAML): each Deployment on the container pattern, with its HPA.

Deployment: the first container's ``resources.limits`` -> ``memory_mb`` (Mi/Gi/M/G quantities) and
``vcpus`` (``500m`` = 0.5); ``requests`` stand in only where no limit is set (a pod is not capped at its
request); ``replicas`` fixes the replica count when no HPA scales it; ``readinessProbe.initialDelaySeconds``
adds to the cold start (no traffic reaches a pod before its first probe); ``env`` values -> env; the
command/args (or a Dockerfile's CMD beside the manifest) name the agent. HorizontalPodAutoscaler
(autoscaling/v2) whose scaleTargetRef names the Deployment: minReplicas/maxReplicas, and ``behavior``:
scaleUp/scaleDown stabilizationWindowSeconds and Percent/Pods policies -> the autoscaler's fields. A CPU or
memory utilization target is reported (the harness scales on concurrency, ``target_concurrency``).

A directory is read as ``kubectl apply -f DIR`` reads it (``load_k8s_dir``): every ``.yaml``, ``.yml`` and
``.json`` file directly in it, in name order (kubectl accepts JSON and YAML and descends into subdirectories
only with ``--recursive``; a subdirectory holding manifests is reported as not read), as one set of objects:
an HPA in one file scales a Deployment in another, and every error and taken key names its own file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from emulators.distributions import Distribution
from emulators.errors import ConfigError
from emulators.profiles import load_profile

from .common import Builder, dig, number
from .model import Mapped, NotMapped, Where
from .parse import Doc, load_yaml_docs

__all__ = ["MANIFEST_SUFFIXES", "is_k8s", "load_k8s", "load_k8s_dir", "manifest_files", "parse_cpu",
           "parse_memory_mb"]

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")  # the files kubectl apply -f DIR reads (JSON and YAML)

_UNITS = {"Ki": 1 / 1024, "Mi": 1.0, "Gi": 1024.0, "Ti": 1024.0 ** 2, "k": 1e3 / 2 ** 20, "M": 1e6 / 2 ** 20,
          "G": 1e9 / 2 ** 20, "T": 1e12 / 2 ** 20, "": 1 / 2 ** 20}


def parse_memory_mb(value: Any, where: Where, key: str) -> float:
    """A Kubernetes memory quantity (``512Mi``, ``1Gi``, ``1G``, bytes) in MiB, the harness's MB."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*(Ki|Mi|Gi|Ti|k|M|G|T|)\s*", str(value))
    if m is None:
        raise ConfigError(f"{where.full}: {key} = {value!r} is not a memory quantity (e.g. 512Mi, 1Gi)")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_cpu(value: Any, where: Where, key: str) -> float:
    """A Kubernetes CPU quantity (``500m``, ``1``, ``0.5``) in vCPUs."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*(m?)\s*", str(value))
    if m is None:
        raise ConfigError(f"{where.full}: {key} = {value!r} is not a CPU quantity (e.g. 500m, 1)")
    return float(m.group(1)) / (1000.0 if m.group(2) else 1.0)


def is_k8s(data: Any) -> bool:
    """Whether a parsed document is a Kubernetes object."""
    return isinstance(data, Mapping) and "apiVersion" in data and "kind" in data


def manifest_files(folder: Path) -> list[Path]:
    """The manifest files directly in ``folder``, in name order (as kubectl's directory walk visits them)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in MANIFEST_SUFFIXES)


def load_k8s(file: Path) -> tuple[list[Mapped], list[NotMapped]]:
    """Every Deployment of a manifest file, with the HPA that scales it."""
    return _objects([d for d in load_yaml_docs(file) if d.data is not None], str(file))


def load_k8s_dir(folder: Path) -> tuple[list[Mapped], list[NotMapped]]:
    """Every Deployment of the manifest files in ``folder`` (not its subdirectories), with the HPAs that scale them."""
    files = manifest_files(folder)
    if not files:
        raise ConfigError(f"{folder}: a directory is read as Kubernetes manifests (kubectl apply -f DIR), and it "
                          f"holds no {', '.join(MANIFEST_SUFFIXES)} file; pass a deployment file or such a folder")
    docs = [d for f in files for d in load_yaml_docs(f) if d.data is not None]  # JSON parses as YAML, with lines
    for d in docs:
        if not is_k8s(d.data):
            raise ConfigError(f"{_start(d).full}: a document without apiVersion and kind; every manifest file of "
                              f"{folder} is read as kubectl apply -f reads a folder; move other files out, or pass "
                              f"a deployment file (a SAM template, serverless.yml...) by itself")
    functions, notes = _objects(docs, str(folder))
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if any(f.suffix.lower() in MANIFEST_SUFFIXES for f in sub.rglob("*") if f.is_file()):
            why = "a subdirectory: kubectl apply -f reads it only with --recursive; not read (pass it with --from)"
            notes.append(NotMapped(f"{sub.name}/", Where(sub), why))
    return functions, notes


def _start(d: Doc) -> Where:
    """Where a document begins: its first key's line (the file alone when it has no keys)."""
    return d.where(next(iter(d.data))) if isinstance(d.data, Mapping) and d.data else d.where()


def _objects(docs: list[Doc], origin: str) -> tuple[list[Mapped], list[NotMapped]]:
    """Every Deployment among ``docs`` (of one file or a folder's files), with the HPA that scales it."""
    for d in docs:
        if not is_k8s(d.data):
            raise ConfigError(f"{_start(d).full}: a document without apiVersion and kind; not a Kubernetes object")
    hpas = {dig(d.data, "spec", "scaleTargetRef", "name"): d for d in docs
            if d.data["kind"] == "HorizontalPodAutoscaler"}
    out: list[Mapped] = []
    seen: dict[str, Doc] = {}
    for d in docs:
        if d.data["kind"] == "Deployment":
            name = dig(d.data, "metadata", "name")
            if name in seen:  # kubectl would apply the second over the first: say so rather than pick one
                raise ConfigError(f"{d.where('metadata', 'name').full}: Deployment {name!r} is declared again (first "
                                  f"at {seen[name].where('metadata', 'name').full}); kubectl apply would replace the "
                                  f"first with it: keep one")
            seen[name] = d
            out.append(_deployment(d, hpas.pop(name, None)))
    if not out:
        raise ConfigError(f"{origin}: no Deployment in the manifests; nothing to deploy")
    notes = [NotMapped(f"HorizontalPodAutoscaler {dig(h.data, 'metadata', 'name')!r}",
                       h.where("spec", "scaleTargetRef"), f"it scales {target!r}, which is no Deployment here")
             for target, h in hpas.items()]
    for d in docs:
        if d.data["kind"] not in ("Deployment", "HorizontalPodAutoscaler"):
            notes.append(NotMapped(f"{d.data['kind']} {dig(d.data, 'metadata', 'name')!r}", d.where("kind"),
                                   "not emulated: the harness's gateway stands in for Services and Ingresses"
                                   if d.data["kind"] in ("Service", "Ingress") else "not emulated"))
    return out, notes


def _deployment(doc: Doc, hpa: Doc | None) -> Mapped:
    data = doc.data
    name = str(dig(data, "metadata", "name") or "deployment")
    b = Builder(doc, "k8s", name, "container", "k8s-hpa")
    containers = dig(data, "spec", "template", "spec", "containers") or []
    if not containers:
        raise ConfigError(f"{doc.where('spec').full}: Deployment {name!r} has no containers")
    cp: tuple[str | int, ...] = ("spec", "template", "spec", "containers", 0)
    c = containers[0]
    if len(containers) > 1:
        b.skip(("spec", "template", "spec", "containers", 1), "sidecars are not emulated: the first container runs")
    agent = b.container_agent(cp, c)
    _resources(b, cp, c)
    _probe(b, cp, c)
    b.container_env(cp, c, "valueFrom (secrets, config maps, fields) is resolved only in a cluster")
    b.container_keys(cp, c, ("name", "command", "args", "resources", "readinessProbe", "env", "ports"))
    if hpa is None:
        if "replicas" in (data.get("spec") or {}):
            n = number(data["spec"]["replicas"], b.where(("spec", "replicas")), "replicas", integer=True)
            b.limit(("spec", "replicas"), n, 1, None, "1 or more")
            b.take(("spec", "replicas"), "min_replicas", data["spec"]["replicas"], int(n), "no HPA: a fixed count")
            b.overrides["max_replicas"] = int(n)
            b.knob_unset("max_replicas", "replicas", ("spec", "replicas"))
    else:
        if "replicas" in (data.get("spec") or {}):
            b.skip(("spec", "replicas"), "the HPA sets the replica count")
        _hpa(b, hpa)
    b.knob_unset("memory_mb", "resources.limits.memory", (*cp, "resources"), 1.0, "Mi")
    return b.build(agent)


def _resources(b: Builder, cp: tuple[str | int, ...], c: Mapping[str, Any]) -> None:
    limits = dig(c, "resources", "limits") or {}
    requests = dig(c, "resources", "requests") or {}
    for kind in ("memory", "cpu"):
        src, value = ("limits", limits[kind]) if kind in limits else ("requests", requests.get(kind))
        if value is None:
            continue
        path = (*cp, "resources", src, kind)
        where = b.where(path)
        if kind == "memory":
            mb = parse_memory_mb(value, where, f"resources.{src}.memory")
            b.take(path, "memory_mb", value, round(mb, 3), "MiB" if src == "limits" else
                   "no limit: the request stands in (a pod may use more)", knob=(1.0, "Mi"),
                   label=f"resources.{src}.memory")
        else:
            cpus = parse_cpu(value, where, f"resources.{src}.cpu")
            b.take(path, "vcpus", value, cpus, "the pod's CPU share", knob=(0.001, "m"), label=f"resources.{src}.cpu")
        if src == "limits" and kind in requests:
            b.skip((*cp, "resources", "requests", kind), "requests reserve node capacity; the harness caps at the "
                                                         "limit")


def _probe(b: Builder, cp: tuple[str | int, ...], c: Mapping[str, Any]) -> None:
    probe = c.get("readinessProbe")
    if not isinstance(probe, Mapping):
        return
    pp = (*cp, "readinessProbe")
    delay = probe.get("initialDelaySeconds", 0)
    d = number(delay, b.where((*pp, "initialDelaySeconds")), "initialDelaySeconds")
    base = load_profile(b.profile, b.pattern).cold_start_overhead_ms
    if d > 0:
        # no traffic reaches a pod before its first probe: the profile's start plus the delay
        dist = Distribution(base.dist, tuple((k, v + d * 1000.0 if k in ("value", "low", "high", "median", "mean")
                                               else v) for k, v in base.params))
        b.take((*pp, "initialDelaySeconds"), "cold_start_overhead_ms", delay, dist.to_json(),
               "the first probe runs after it (K15): added to the pod start")
    for k in probe:
        if k != "initialDelaySeconds":
            b.skip((*pp, k), "probe timing beyond the first delay is not emulated (the harness's replica is ready "
                             "once the agent is imported)")


def _hpa(b: Builder, hpa: Doc) -> None:
    spec = hpa.data.get("spec") or {}
    hb = Builder(hpa, "k8s", b.name, b.pattern, b.profile)  # lines from the HPA's own document
    if "minReplicas" in spec:
        n = number(spec["minReplicas"], hb.where(("spec", "minReplicas")), "minReplicas", integer=True)
        hb.take(("spec", "minReplicas"), "min_replicas", spec["minReplicas"], int(n), "K21: default 1",
                knob=(1.0, ""), label="minReplicas")
    if "maxReplicas" in spec:
        n = number(spec["maxReplicas"], hb.where(("spec", "maxReplicas")), "maxReplicas", integer=True)
        hb.limit(("spec", "maxReplicas"), n, 1, None, "1 or more")
        hb.take(("spec", "maxReplicas"), "max_replicas", spec["maxReplicas"], int(n), "", knob=(1.0, ""),
                label="maxReplicas")
    for i, m in enumerate(spec.get("metrics") or []):
        path = ("spec", "metrics", i)
        target = dig(m, "resource", "target") or dig(m, "pods", "target") or {}
        metric = dig(m, "resource", "name") or dig(m, "pods", "metric", "name")
        if m.get("type") == "Pods" and "averageValue" in target and "concurren" in str(metric):
            v = number(target["averageValue"], hb.where((*path, "pods", "target", "averageValue")), "averageValue")
            hb.take((*path, "pods", "target", "averageValue"), "target_concurrency", target["averageValue"], v,
                    f"in-flight requests per pod ({metric})", knob=(1.0, ""), label="averageValue")
        else:
            hb.skip(path, f"scaling on {metric or m.get('type')!r} is not emulated: the harness scales on in-flight "
                          f"requests per replica (target_concurrency)")
    for direction in ("scaleUp", "scaleDown"):
        rules = dig(spec, "behavior", direction)
        if isinstance(rules, Mapping):
            _behavior(hb, ("spec", "behavior", direction), direction, rules)
    for k in spec:
        if k not in ("scaleTargetRef", "minReplicas", "maxReplicas", "metrics", "behavior"):
            hb.skip(("spec", k), "not emulated")
    b.overrides.update(hb.overrides)
    b.taken += hb.taken
    b.skipped += hb.skipped
    b.knobs.update(hb.knobs)


def _behavior(b: Builder, path: tuple[str | int, ...], direction: str, rules: Mapping[str, Any]) -> None:
    up = direction == "scaleUp"
    if "stabilizationWindowSeconds" in rules:
        p = (*path, "stabilizationWindowSeconds")
        s = number(rules["stabilizationWindowSeconds"], b.where(p), "stabilizationWindowSeconds", integer=True)
        b.limit(p, s, 0, 3600, "Kubernetes' 0-3,600 s")
        b.take(p, "scale_up_stabilization_s" if up else "scale_down_stabilization_s",
               rules["stabilizationWindowSeconds"], s, "K20")
    select = rules.get("selectPolicy", "Max")
    if select != "Max":
        b.skip((*path, "selectPolicy"), f"{select!r}: the harness applies the policies as Max (the default)")
    for i, pol in enumerate(rules.get("policies") or []):
        p = (*path, "policies", i)
        kind, value, period = pol.get("type"), pol.get("value"), pol.get("periodSeconds")
        if kind not in ("Percent", "Pods") or value is None or period is None:
            b.skip(p, "a policy needs type (Percent or Pods), value and periodSeconds")
            continue
        v = number(value, b.where((*p, "value")), "value")
        per = number(period, b.where((*p, "periodSeconds")), "periodSeconds")
        b.limit((*p, "periodSeconds"), per, 1, 1800, "Kubernetes' 1-1,800 s")
        if up:
            b.take((*p, "value"), "scale_up_percent" if kind == "Percent" else "scale_up_pods", value,
                   v if kind == "Percent" else int(v), "K20")
            b.take((*p, "periodSeconds"), "scale_up_period_s", period, per, "K20")
        elif kind == "Percent":
            b.take((*p, "value"), "scale_down_percent", value, v, "K20")
            b.take((*p, "periodSeconds"), "scale_down_period_s", period, per, "K20")
        else:
            b.skip(p, "a Pods scale-down policy is not emulated (Percent is)")
