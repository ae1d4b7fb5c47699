"""The image an instance container runs: assembled locally, or built from a generated Dockerfile.

No registry is reachable on the machines this runs on, so nothing is pulled. The default image is a tiny
root imported with ``docker import`` (a few directories, ``/etc/passwd``, the merged-/usr symlinks
``bin``, ``lib``, ``lib64`` -> ``usr/...``), and the container bind-mounts read-only, at their host paths:
``/usr`` (the C libraries the interpreter links), the interpreter's prefix (and the venv's), the project
(``emulators``), the agent's own directory and the working directory. So the same interpreter and
packages run inside as in the process runtime: outcomes can be compared, and the image takes ~50 ms.

For a registry-backed deployment, ``dockerfile()`` writes a Dockerfile on a configurable base image that
installs the harness and the agent's project; build it and pass ``runtime="docker:IMAGE"``.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

from ..agent import AgentRef
from .engine import LABEL
from .interp import Layout

__all__ = ["PKG_ROOT", "agent_root", "dockerfile", "host_mounts", "import_runtime_image", "python_path"]

PKG_ROOT = Path(__file__).resolve().parents[3]  # the directory holding the `emulators` package
# sbin is a directory, not a link into the read-only /usr: the engine mounts its init at /sbin/docker-init.
_DIRS = ("tmp", "proc", "sys", "dev", "etc", "run", "usr", "root", "home", "var", "var/tmp", "sbin")
_LINKS = (("bin", "usr/bin"), ("lib", "usr/lib"), ("lib64", "usr/lib64"))
_FILES = (
    ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"),
    ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
)


def _root_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in _DIRS:
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d in ("tmp", "var/tmp") else 0o755
            tar.addfile(info)
        for name, target in _LINKS:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
        for name, text in _FILES:
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def import_runtime_image(client: Any, run_id: str) -> str:
    """Import the tiny root as ``agent-deploy-harness-runtime:<run id>``, labelled with the run; its tag."""
    repo, tag = "agent-deploy-harness-runtime", run_id
    client.api.import_image_from_data(_root_tar(), repository=repo, tag=tag, changes=[f"LABEL {LABEL}={run_id}"])
    return f"{repo}:{tag}"


def agent_root(agent: AgentRef) -> Path | None:
    """The directory that must be on sys.path for the agent to import (its file's, or its top package's)."""
    if agent.path is None:
        return None
    root = Path(agent.path).resolve().parent
    if agent.module is not None:
        for _ in range(agent.module.count(".") + (agent.path.endswith("__init__.py"))):
            root = root.parent
    return root


def python_path(agent: AgentRef, layout: Layout | None = None) -> list[str]:
    """PYTHONPATH inside the container: the project, the agent's root, then the host's own PYTHONPATH."""
    root = agent_root(agent)
    extra = layout.python_path if layout is not None else []
    return list(dict.fromkeys([str(PKG_ROOT), *([str(root)] if root is not None else []), *extra]))


def host_mounts(agent: AgentRef, run_dir: Path, layout: Layout | None, *, own_code: bool = True) -> list[Any]:
    """Bind mounts: read-only host paths (the interpreter's, when ``layout`` is given; the harness's and the
    agent's code unless the image has its own), the run dir read-write."""
    from docker.types import Mount  # type: ignore[import-untyped]

    ro: set[Path] = set()
    root = agent_root(agent)
    cwd = Path.cwd().resolve()
    if own_code:
        ro.add(PKG_ROOT)
        if root is not None:
            ro.add(root)
        if cwd != Path("/"):
            ro.add(cwd)  # `module:callable` agents import from the working directory, as in the process runtime
    if layout is not None:
        ro.add(Path("/usr"))
        ro.update(layout.paths)
        if Path("/etc/ssl").is_dir():
            ro.add(Path("/etc/ssl"))
    rw = run_dir.resolve()
    # A path inside another mounted path needs no mount of its own (and may not be writable under it).
    kept = [p for p in sorted(ro) if not any(p != q and p.is_relative_to(q) for q in ro) and p.exists()]
    mounts = [Mount(str(p), str(p), type="bind", read_only=True) for p in kept if not rw.is_relative_to(p)]
    mounts.append(Mount(str(rw), str(rw), type="bind", read_only=False))
    return mounts


def dockerfile(base_image: str = "python:3.11-slim", project_dir: str | Path = ".", *,
               extras: str = "llm", agent_requirements: str | None = "requirements.txt") -> str:
    """A Dockerfile for an instance image on ``base_image`` (for machines that can reach a registry).

    It installs the harness (with ``extras``) and the agent project's requirements, copies the project to
    ``/app`` and leaves ``CMD`` empty: the runtime gives the entry command. Build it in ``project_dir``
    and deploy with ``runtime="docker:<tag>"``.
    """
    spec = f"agent-deploy-harness[{extras}]" if extras else "agent-deploy-harness"
    body = [f"RUN pip install --no-cache-dir '{spec}'"]
    if agent_requirements and (Path(project_dir) / agent_requirements).is_file():
        body += [f"COPY {agent_requirements} /tmp/agent-requirements.txt",
                 "RUN pip install --no-cache-dir -r /tmp/agent-requirements.txt"]
    body += ["WORKDIR /app", "COPY . /app"]
    return instance_dockerfile("an instance image for runtime='docker:<tag>'", base_image, body, kind="instance")


def instance_dockerfile(purpose: str, base_image: str, body: list[str], *, kind: str) -> str:
    """The Dockerfile shape every instance image shares: its base, ``body``'s lines, the label and entry point.

    ``dockerfile()`` (installs the harness from PyPI) and ``docker:build`` (copies this harness in) differ
    only in ``body``; the entry point the runtime starts and the label ``harness clean`` finds are one.
    """
    return "\n".join([
        f"# Generated by agent-deploy-harness: {purpose}.",
        f"FROM {base_image}",
        "ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1",
        *body,
        f"LABEL {LABEL}.image={kind}",
        'ENTRYPOINT ["python", "-m", "emulators.runtime.docker.entry"]',
    ]) + "\n"

