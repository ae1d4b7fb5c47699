"""``runtime="docker:build"``: a self-contained instance image built the way a user would deploy the agent.

Where a registry is reachable, this is the faithful image: a Python base image (``python:X.Y-slim`` for the
running interpreter's version, or ``docker:build=BASE``), the harness's runtime dependencies, the agent's own
requirements (its folder's ``requirements.txt``, else its ``pyproject.toml`` dependencies), the harness's
packages at ``/opt/harness`` and the agent's folder at ``/app``. Nothing of the host is mounted but the run
directory. The image is tagged by a hash of everything that goes into it, so an unchanged agent reuses it
across runs (``agent-deploy-harness-agent:<hash>``, kept until ``harness clean`` without ``--run``).

Where no registry is reachable (the project's own machines) the build stops at its ``FROM`` with an error
that names the base image and the ways to provide it; the assembled image (``runtime="docker"``) is the
default there.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import sys
import tarfile
import tomllib
from pathlib import Path
from typing import Any

from ...errors import InstanceStartError
from ..agent import AgentRef
from .image import PKG_ROOT, agent_root, instance_dockerfile

__all__ = ["APP_DIR", "BUILD_REPO", "HARNESS_DIR", "BuildContext", "build_context", "build_image", "default_base"]

APP_DIR = "/app"
HARNESS_DIR = "/opt/harness"
BUILD_REPO = "agent-deploy-harness-agent"
_PACKAGES = ("emulators", "harness")
_SKIP_DIRS = {".git", ".hg", ".venv", "venv", "env", "__pycache__", "node_modules", ".tox", ".mypy_cache",
              ".ruff_cache", ".pytest_cache", "build", "dist", ".eggs"}
_SKIP_SUFFIXES = (".pyc", ".pyo", ".egg-info")
_MAX_CONTEXT_BYTES = 200 * 1024 * 1024  # an agent folder bigger than this is almost surely not one


def default_base() -> str:
    """The base image matching the running interpreter: ``python:3.11-slim`` on Python 3.11."""
    return f"python:{sys.version_info.major}.{sys.version_info.minor}-slim"


def _harness_requirements(extras: tuple[str, ...] = ("llm",)) -> list[str]:
    """The harness's runtime dependencies (and ``extras``'), from its installed metadata."""
    try:
        reqs = importlib.metadata.requires("agent-deploy-harness") or []
    except importlib.metadata.PackageNotFoundError:
        return []
    kept = []
    for req in reqs:
        spec, _, marker = req.partition(";")
        if not marker.strip() or any(f'extra == "{e}"' in marker for e in extras):
            kept.append(spec.strip())
    return sorted(set(kept))


def _agent_requirements(root: Path) -> list[str]:
    """The agent's own dependencies: ``requirements.txt`` in its folder, else its project's dependencies."""
    req = root / "requirements.txt"
    if req.is_file():
        return [line.strip() for line in req.read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    project = root / "pyproject.toml"
    if project.is_file():
        try:
            data = tomllib.loads(project.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise InstanceStartError(f"cannot read the agent's {project}: {exc}; fix it or add a "
                                     f"requirements.txt beside it for runtime='docker:build'") from None
        deps = data.get("project", {}).get("dependencies", [])
        return [str(d) for d in deps]
    return []


def _files(root: Path) -> list[Path]:
    """The files of ``root`` to copy, sorted (stable hash), without VCS, caches and virtual environments."""
    found: list[Path] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in _SKIP_DIRS or part.endswith(_SKIP_SUFFIXES) for part in rel.parts):
            continue
        if path.is_file() and not path.is_symlink():
            found.append(path)
    return found


class BuildContext:
    """A Docker build context in memory (a tar), its Dockerfile and its content hash."""

    def __init__(self, dockerfile: str, files: dict[str, bytes]) -> None:
        self.dockerfile = dockerfile
        self.files = {"Dockerfile": dockerfile.encode(), **files}
        digest = hashlib.sha256()
        for name in sorted(self.files):
            digest.update(name.encode() + b"\0" + hashlib.sha256(self.files[name]).digest())
        self.hash = digest.hexdigest()[:16]

    @property
    def tag(self) -> str:
        """The image tag: the content hash, so an unchanged agent reuses its image."""
        return f"{BUILD_REPO}:{self.hash}"

    def tar(self) -> bytes:
        """The context as the engine's build API takes it."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name in sorted(self.files):
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(self.files[name]), 0o644, 0
                tar.addfile(info, io.BytesIO(self.files[name]))
        return buf.getvalue()


def _app_root(agent: AgentRef) -> Path:
    """The agent's folder: what is copied to /app (its file's folder, or its top package's parent)."""
    root = agent_root(agent)
    if root is None:
        raise InstanceStartError(f"runtime='docker:build' needs the agent's source file; {agent.spec!r} has "
                                 f"none (a callable defined in a notebook or a REPL?); pass 'path/file.py:name'")
    return root


def build_context(agent: AgentRef, base_image: str | None = None) -> BuildContext:
    """Everything the image is built from: Dockerfile, requirements, the harness and the agent's folder."""
    root = _app_root(agent)
    files: dict[str, bytes] = {}
    size = 0
    for path in _files(root):
        data = path.read_bytes()
        size += len(data)
        if size > _MAX_CONTEXT_BYTES:
            raise InstanceStartError(
                f"the agent's folder {root} holds over {_MAX_CONTEXT_BYTES // 2**20} MB of files; "
                f"runtime='docker:build' copies the whole folder: move the agent into a folder of its own")
        files[f"app/{path.relative_to(root).as_posix()}"] = data
    for package in _PACKAGES:
        for path in _files(PKG_ROOT / package):
            files[f"harness/{package}/{path.relative_to(PKG_ROOT / package).as_posix()}"] = path.read_bytes()
    harness_reqs = _harness_requirements()
    agent_reqs = _agent_requirements(root)
    files["harness-requirements.txt"] = ("\n".join(harness_reqs) + "\n").encode()
    files["agent-requirements.txt"] = ("\n".join(agent_reqs) + "\n").encode()
    body = [
        "COPY harness-requirements.txt /tmp/harness-requirements.txt",
        "RUN pip install --no-cache-dir -r /tmp/harness-requirements.txt",
        "COPY agent-requirements.txt /tmp/agent-requirements.txt",
    ]
    if agent_reqs:
        body.append("RUN pip install --no-cache-dir -r /tmp/agent-requirements.txt")
    body += [f"COPY harness {HARNESS_DIR}", f"COPY app {APP_DIR}", f"WORKDIR {APP_DIR}",
             f"ENV PYTHONPATH={HARNESS_DIR}:{APP_DIR}"]
    text = instance_dockerfile("a self-contained image for runtime='docker:build'", base_image or default_base(),
                               body, kind="build")
    return BuildContext(text, files)


def in_image_path(agent: AgentRef) -> str | None:
    """Where the agent's file is inside the built image (under /app)."""
    if agent.path is None:
        return None
    return f"{APP_DIR}/{Path(agent.path).resolve().relative_to(_app_root(agent)).as_posix()}"


def build_image(client: Any, agent: AgentRef, base_image: str | None = None) -> str:
    """Build (or reuse, by content hash) the agent's image; its tag. InstanceStartError says why it failed."""
    import docker.errors  # type: ignore[import-untyped]

    context = build_context(agent, base_image)
    try:
        client.images.get(context.tag)
        return context.tag  # built before from the same content
    except docker.errors.ImageNotFound:
        pass
    base = base_image or default_base()
    log: list[str] = []
    try:
        for chunk in client.api.build(fileobj=io.BytesIO(context.tar()), custom_context=True, tag=context.tag,
                                      rm=True, forcerm=True, decode=True):
            if "stream" in chunk:
                log.extend(line for line in str(chunk["stream"]).splitlines() if line.strip())
            if "error" in chunk:
                raise InstanceStartError(_build_error(str(chunk["error"]), base, log))
    except docker.errors.APIError as exc:
        raise InstanceStartError(_build_error(str(exc), base, log)) from None
    return context.tag


def _build_error(error: str, base: str, log: list[str]) -> str:
    """What to say about a failed build: the base image when it is the cause, else the build's last lines."""
    tail = "\n".join(log[-15:])
    # The engine's words for "FROM could not be resolved": pulled from a registry that is absent or refused.
    if any(word in error for word in ("pull access denied", "no such host", "registry", "manifest unknown")) \
            or (base in error and "not found" in error):
        return (f"runtime='docker:build' builds on the base image {base!r}, which is not in the local engine and "
                f"could not be pulled ({error.strip()}); provide it with `docker pull {base}` where a registry is "
                f"reachable or `docker load -i` from a saved copy, or pick a local one with "
                f"runtime='docker:build=IMAGE', or use runtime='docker' (the assembled image needs no registry)")
    return f"runtime='docker:build': the image build failed: {error.strip()}" + \
        (f"\n--- build log (last lines) ---\n{tail}" if tail else "")
