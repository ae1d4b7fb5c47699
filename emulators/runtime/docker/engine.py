"""Reaching the Docker engine, the run-id label, and removing what a run left behind.

Every container, image, network and volume the harness creates is labelled ``LABEL=<run id>``; ``clean``
removes them by that label (one run's, or every run's), whatever happened to the process that made them.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ...errors import ConfigError, InstanceStartError, close_matches_hint

__all__ = ["LABEL", "RUNTIMES", "clean", "connect", "engine_problem", "parse_runtime"]

LABEL = "agent-deploy-harness.run"
RUNTIMES = ("process", "docker")
_INSTALL_HINT = "install it with: pip install 'agent-deploy-harness[docker]'"


def parse_runtime(spec: str) -> tuple[str, str | None]:
    """``"process"`` / ``"docker"`` / ``"docker:IMAGE"`` / ``"docker:build[=BASE]"`` -> (runtime, image or None).

    ``docker:build`` comes back as the image ``"build"`` (``"build=BASE"``), which the spawner builds.
    """
    if not isinstance(spec, str):
        raise ConfigError(f"runtime must be a string, got {spec!r}; expected one of: {', '.join(RUNTIMES)}")
    kind, sep, image = spec.partition(":")
    if kind not in RUNTIMES or (sep and (kind != "docker" or not image or image == "build=")):
        raise ConfigError(f"unknown runtime {spec!r}{close_matches_hint(kind, RUNTIMES)}; expected one of: "
                          f"{', '.join(RUNTIMES)}, 'docker:IMAGE' (your own image), 'docker:build' or "
                          f"'docker:build=BASE' (an image built from the agent's folder and requirements)")
    return kind, image or None


def connect(timeout_s: float = 10.0) -> Any:
    """A ``docker.DockerClient`` for the engine of the environment (DOCKER_HOST or the local socket).

    Raises InstanceStartError saying what is missing: the SDK, or a running engine.
    """
    try:
        import docker  # type: ignore[import-untyped]
    except ImportError:
        raise InstanceStartError(f"the Docker runtime needs the 'docker' package; {_INSTALL_HINT}") from None
    try:
        client = docker.from_env(timeout=int(timeout_s))
        client.ping()
    except Exception as exc:
        raise InstanceStartError(
            f"no Docker engine is reachable ({exc}); start one (e.g. `dockerd > /tmp/dockerd.log 2>&1 &` as "
            f"root) or point DOCKER_HOST at it, or use runtime='process'") from None
    return client


def engine_problem() -> str | None:
    """Why the Docker runtime cannot run here (None: it can); for skips that say their reason."""
    try:
        client = connect(timeout_s=5.0)
    except InstanceStartError as exc:
        return str(exc)
    client.close()
    return None


def clean(run_id: str | None = None, client: Any = None) -> dict[str, list[str]]:
    """Remove the containers, networks, volumes and images of one run (``None``: of every run).

    Returns what was removed, by kind (names or short ids). Safe to call when nothing is left.
    """
    own = client is None
    if client is None:
        client = connect()
    selector = LABEL if run_id is None else f"{LABEL}={run_id}"
    filters = {"label": selector}
    removed: dict[str, list[str]] = {"containers": [], "networks": [], "volumes": [], "images": []}
    api = client.api  # the low-level API: a listed object may vanish meanwhile (a removal in flight)
    try:
        for c in api.containers(all=True, filters=filters):
            with contextlib.suppress(Exception):
                api.remove_container(c["Id"], force=True, v=True)
                removed["containers"].append((c.get("Names") or [c["Id"][:12]])[0].lstrip("/"))
        for n in api.networks(filters=filters):
            with contextlib.suppress(Exception):
                api.remove_network(n["Id"])
                removed["networks"].append(n.get("Name", n["Id"][:12]))
        for v in api.volumes(filters=filters).get("Volumes") or []:
            with contextlib.suppress(Exception):
                api.remove_volume(v["Name"], force=True)
                removed["volumes"].append(v["Name"])
        images = api.images(filters=filters)
        if run_id is None:  # every run's: the cached docker:build images too (they belong to no one run)
            images += api.images(filters={"label": f"{LABEL}.image=build"})
        for image in images:
            with contextlib.suppress(Exception):
                api.remove_image(image["Id"], force=True)
                tags = image.get("RepoTags") or [image["Id"][7:19]]
                removed["images"].append(tags[0])
    finally:
        if own:
            client.close()
    return removed
