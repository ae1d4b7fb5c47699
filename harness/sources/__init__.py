"""Deployment files as profiles: read the files users deploy with and map them onto pattern + profile.

``load_source(path)`` detects the format from the file's name, then its content, and returns a
``Source``: per function or service a ``Mapped`` (agent spec, pattern, profile name, overrides, env, what
was taken and what was not mapped, each with file:line). Formats: AWS SAM / CloudFormation
(``sam``), Serverless Framework (``serverless_fw``), wrangler.toml/jsonc (``wrangler``), vercel.json
(``vercel``), Kubernetes manifests (``k8s``: a file, or a folder of them as ``kubectl apply -f DIR`` reads
it), fly.toml (``fly``), Cloud Run service.yaml (``cloudrun``).
Entry points: ``harness run --from``, ``deploy(source=...)``, ``--harness-from``, ``harness profiles
--from``, ``harness readiness --from``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from emulators.errors import ConfigError

from .model import Knob, Mapped, NotMapped, Source, Taken, Where

__all__ = ["FORMATS", "Knob", "Mapped", "NotMapped", "Source", "Taken", "Where", "detect_format", "load_source"]

FORMATS = ("sam", "serverless", "wrangler", "vercel", "k8s", "fly", "cloudrun")


Loaded = list[Mapped] | tuple[list[Mapped], list[NotMapped]]


def _loader(fmt: str) -> Callable[[Path], Loaded]:
    if fmt == "sam":
        from .sam import load_sam
        return load_sam
    if fmt == "serverless":
        from .serverless_fw import load_serverless_fw
        return load_serverless_fw
    if fmt == "wrangler":
        from .wrangler import load_wrangler
        return load_wrangler
    if fmt == "vercel":
        from .vercel import load_vercel
        return load_vercel
    if fmt == "fly":
        from .fly import load_fly
        return load_fly
    if fmt == "cloudrun":
        from .cloudrun import load_cloudrun
        return load_cloudrun
    from .k8s import load_k8s
    return load_k8s


def detect_format(path: Path) -> str:
    """The format of a deployment file, from its name, else from its content; ConfigError when neither says."""
    if path.is_dir():
        return "k8s"  # a folder of manifests, as kubectl apply -f DIR (k8s.load_k8s_dir says if it is not)
    name = path.name.lower()
    by_name = {"serverless.yml": "serverless", "serverless.yaml": "serverless", "wrangler.toml": "wrangler",
               "wrangler.jsonc": "wrangler", "wrangler.json": "wrangler", "vercel.json": "vercel",
               "fly.toml": "fly"}
    if name in by_name:
        return by_name[name]
    if not path.is_file():
        raise ConfigError(f"deployment file {str(path)!r} does not exist; check the path")
    if path.suffix.lower() in (".yaml", ".yml", ".json", ".template"):
        from .cloudrun import is_cloudrun
        from .k8s import is_k8s
        from .parse import load_yaml_docs
        from .sam import is_sam
        from .serverless_fw import is_serverless_fw

        docs = [d.data for d in load_yaml_docs(path)]
        if len(docs) == 1 and is_sam(docs[0]):
            return "sam"
        if len(docs) == 1 and is_serverless_fw(docs[0]):
            return "serverless"
        if docs and all(is_cloudrun(d) for d in docs):
            return "cloudrun"
        if docs and any(is_k8s(d) for d in docs):
            return "k8s"
    raise ConfigError(
        f"{path}: not a deployment file the harness reads; expected a SAM/CloudFormation template, "
        f"serverless.yml, wrangler.toml/jsonc, vercel.json, Kubernetes manifests, fly.toml or a Cloud Run "
        f"service.yaml")


def load_source(path: str | Path) -> Source:
    """Parse and map a deployment file (or a folder of Kubernetes manifests); ConfigError naming file, key, line."""
    p = Path(path).expanduser()
    if p.is_dir():
        from .k8s import load_k8s_dir

        functions, notes = load_k8s_dir(p)
        return Source(p, "k8s", tuple(functions), tuple(notes))
    if not p.is_file():
        raise ConfigError(f"deployment file {str(path)!r} does not exist; check the path")
    fmt = detect_format(p)
    loaded = _loader(fmt)(p)
    functions, notes = loaded if isinstance(loaded, tuple) else (loaded, [])
    return Source(p, fmt, tuple(functions), tuple(notes))
