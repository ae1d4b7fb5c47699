"""Queue and state backends in containers, started with testcontainers for a run and removed after it.

``start_backend("redis", run_id)`` starts the backend's image, waits until it answers and returns its URL
(``redis://``, ``amqp://``, ``postgresql://``, ``sqs://`` for LocalStack). Nothing is pulled where the
image is absent: no registry may be reachable, so the error names the image and how to provide it. The
containers carry the run-id label, so ``harness clean`` removes them too.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from ...errors import BackendUnavailableError, ConfigError, close_matches_hint
from .engine import LABEL, connect

__all__ = ["BACKENDS", "Backend", "ROLES", "start_backend"]


@dataclass(frozen=True)
class _Kind:
    image: str
    port: int
    url: str  # format with host, port
    env: tuple[tuple[str, str], ...] = ()
    ready_log: str = ""  # a log line that says it accepts connections


BACKENDS: dict[str, _Kind] = {
    "redis": _Kind("redis:7-alpine", 6379, "redis://{host}:{port}/0", ready_log="Ready to accept connections"),
    "rabbitmq": _Kind("rabbitmq:3-alpine", 5672, "amqp://guest:guest@{host}:{port}/%2F",
                      ready_log="Server startup complete"),
    "postgres": _Kind("postgres:16-alpine", 5432, "postgresql://postgres:harness@{host}:{port}/postgres",
                      env=(("POSTGRES_PASSWORD", "harness"),),
                      ready_log="database system is ready to accept connections"),
    "sqs": _Kind("localstack/localstack:3", 4566, "sqs://{host}:{port}", env=(("SERVICES", "sqs"),),
                 ready_log="Ready."),
}
# Which deployment setting each backend provides: the daemon's queue, the state store, or both.
ROLES: dict[str, tuple[str, ...]] = {"redis": ("queue", "state"), "rabbitmq": ("queue",),
                                     "postgres": ("state",), "sqs": ("queue",)}


@dataclass
class Backend:
    """A running backend container: its URL, and how to remove it."""

    kind: str
    image: str
    url: str
    container: Any

    def stop(self) -> None:
        """Stop and remove the container (safe to call twice)."""
        with contextlib.suppress(Exception):
            self.container.stop()


def image_missing_message(kind: str, image: str) -> str:
    """What to say when ``image`` is not in the local engine (and may not be pullable)."""
    return (f"the {kind} backend needs the image {image!r}, which is missing from the local Docker engine "
            f"(image missing; no registry is used); provide it with `docker pull {image}` where a registry "
            f"is reachable, or `docker load -i {kind}.tar` from a saved copy, or point the harness at a running "
            f"server instead (e.g. --harness-backend {kind}=URL)")


def start_backend(kind: str, run_id: str, *, image: str | None = None, timeout_s: float = 60.0) -> Backend:
    """Start ``kind`` (redis, rabbitmq, postgres, sqs) from a locally available image; its URL when ready."""
    if kind not in BACKENDS:
        raise ConfigError(f"unknown backend {kind!r}{close_matches_hint(kind, BACKENDS)}; expected one of: "
                          f"{', '.join(BACKENDS)}")
    spec = BACKENDS[kind]
    image = image or spec.image
    client = connect()
    try:
        import docker.errors  # type: ignore[import-untyped]

        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            raise BackendUnavailableError(image_missing_message(kind, image)) from None
    finally:
        client.close()
    try:
        from testcontainers.core.config import testcontainers_config
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.waiting_utils import wait_for_logs
    except ImportError:
        raise BackendUnavailableError("container backends need testcontainers; install it with: pip install "
                                      "'agent-deploy-harness[docker]'") from None
    # Ryuk (testcontainers' reaper) is itself an image to pull; the run-id label and `harness clean` reap.
    testcontainers_config.ryuk_disabled = True
    container = DockerContainer(image).with_exposed_ports(spec.port).with_kwargs(
        labels={LABEL: run_id, f"{LABEL}.backend": kind})
    for key, value in spec.env:
        container = container.with_env(key, value)
    try:
        container.start()
        if spec.ready_log:
            wait_for_logs(container, spec.ready_log, timeout=timeout_s)
        url = spec.url.format(host=container.get_container_host_ip(), port=container.get_exposed_port(spec.port))
    except Exception as exc:
        logs: list[str] = []
        with contextlib.suppress(Exception):
            out, err = container.get_logs()
            logs = (out + err).decode(errors="replace").strip().splitlines()[-10:]
        with contextlib.suppress(Exception):
            container.stop()
        error = BackendUnavailableError(f"the {kind} backend container ({image}) did not become ready: {exc}")
        if logs:
            error.add_note("--- container log (last lines) ---\n" + "\n".join(logs))
        raise error from None
    return Backend(kind, image, url, container)
