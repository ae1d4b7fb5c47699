"""``DockerSpawner``: the zygote's seam (spawn, exit futures, close), with one container per instance.

``Instance`` is unchanged: it gets a connected socket and the host pid of the agent's process, measures
CPU from ``/proc/<pid>`` as before and SIGKILLs that pid for a time limit. What differs is who enforces:
the engine caps memory (``mem_limit`` = ``memswap_limit``: no swap) and CPU (CFS quota), and tells how a
container ended through its event stream; ``State.OOMKilled`` decides ``oom``. The container runs under
the engine's init, so the agent is not PID 1 and a signal it sends itself acts as on a host.

CPU: the quota is the profile's vCPUs (Lambda's memory-to-vCPU rule, or ``vcpus``). The real quota slows
CPU-bound work, so the instance's CPU factor is 1 (no emulated stretch on top). Where the platform runs
init at full speed below one vCPU (Lambda), the container starts unthrottled and gets its quota once the
agent's import is done (an engine update, ~10 ms).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import json
import os
import re
import socket
import sys
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ...errors import InstanceStartError
from ...profiles import Profile
from ..agent import AgentRef
from ..limits import MemoryCap
from ..spawner import Spawner
from .build import APP_DIR, HARNESS_DIR, build_image, in_image_path
from .engine import LABEL, clean, connect
from .image import host_mounts, import_runtime_image, python_path
from .interp import Layout, interpreter_layout

__all__ = ["TMP_MB", "DockerMemoryCap", "DockerSpawner", "cpu_quota", "start_hint"]

T = TypeVar("T")
TMP_MB = 512  # Lambda's default ephemeral /tmp; a tmpfs, so what is written there counts as memory too
_PERIOD_US = 100_000  # the CFS period Docker's --cpus uses
_CONNECT_TIMEOUT_S = 60.0  # container start + interpreter start + runtime import, on a loaded host
_CORES = max(1, os.cpu_count() or 1)
_MISSING_MODULE = re.compile(r"ModuleNotFoundError: No module named '([\w.]+)'")


def cpu_quota(profile: Profile) -> float | None:
    """vCPUs the profile gives an instance (None: no CPU limit), clamped to what Docker accepts here."""
    if profile.mb_per_vcpu:
        vcpus = profile.memory_mb / profile.mb_per_vcpu
        if profile.max_vcpus:
            vcpus = min(vcpus, profile.max_vcpus)
    elif profile.vcpus:
        vcpus = profile.vcpus
    else:
        return None
    return min(float(_CORES), max(0.01, vcpus))


@dataclass
class DockerMemoryCap(MemoryCap):
    """A container's memory cap: enforced by the engine; OOM as the engine reports it (``State.OOMKilled``)."""

    engine_oom: bool = False
    exit_code: int | None = None

    @property
    def kernel_enforced(self) -> bool:
        """Always: the container's cgroup kills at the cap, no poller needed."""
        return True

    def oom_killed(self) -> bool:
        """Whether the engine said the container was OOM-killed."""
        return self.engine_oom

    def remove(self) -> None:
        """Nothing to do: the engine removes the container's cgroup."""


def _memory_cgroup(pid: int) -> tuple[Path, int] | None:
    """The memory cgroup directory of ``pid`` as seen from here (v1 or v2), or None."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            found = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
            return (found, 1) if found.is_dir() else None
    for line in lines:
        if line.startswith("0::"):
            found = Path("/sys/fs/cgroup") / line[3:].lstrip("/")
            return (found, 2) if found.is_dir() else None
    return None


def _agent_pid(init_pid: int) -> int:
    """The host pid of the agent's interpreter: the engine init's child (the init itself if none is seen)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(Path(f"/proc/{init_pid}/task/{init_pid}/children").read_text().split()[0])
    return init_pid


def _status(code: int) -> int:
    """An engine exit code as the zygote reports one: the code, or minus the signal (128 + n)."""
    return -(code - 128) if 128 < code < 160 else code


def start_hint(logs: str, *, built: bool) -> str:
    """What to do about a container that died before connecting, read from its last log lines ("" if unknown)."""
    missing = _MISSING_MODULE.findall(logs)
    if not missing:
        return ""
    name = missing[-1]
    top = name.split(".")[0]
    if built:
        return (f"the module {name!r} is not importable inside the image; add the package that provides it to "
                f"the image (its requirements.txt or the project's dependencies) and rebuild")
    if importlib.util.find_spec(top) is not None:
        return (f"the module {name!r} is importable here but not inside the container: its directory is not "
                f"among the mounted ones (the interpreter's prefix, its sys.path and editable sources); put it "
                f"on PYTHONPATH or install it into this interpreter ({sys.executable})")
    return (f"the module {name!r} is not installed for this interpreter ({sys.executable}) either; install "
            f"it there (e.g. `{sys.executable} -m pip install {top}`)")


def _sweep(run_id: str) -> None:
    """Last resort at interpreter exit: remove whatever the run still has in the engine."""
    with contextlib.suppress(Exception):
        clean(run_id)


class DockerSpawner(Spawner):
    """Starts each instance as a container of one run; removes them all on close."""

    def __init__(self, run_id: str, run_dir: Path, env: dict[str, str] | None = None, *, profile: Profile,
                 agent: AgentRef, image: str | None = None) -> None:
        super().__init__(run_id, run_dir, env)
        self.profile = profile
        self.agent = agent
        # "build" / "build=BASE": an image built from the agent's folder and requirements (docker:build).
        kind, _, base = (image or "").partition("=")
        self.build = kind == "build"
        self.build_base = base or None if self.build else None
        self.image = None if self.build else image
        # Our imported root + the caller's interpreter (derived from the running one), vs a built image.
        self.layout: Layout | None = interpreter_layout() if image is None else None
        self.quota = cpu_quota(profile)
        self.deferred_quota = bool(self.quota is not None and profile.init_cpu_full_speed and self.quota < 1.0)
        self.client: Any = None
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix=f"docker-{run_id}")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._caps: dict[str, DockerMemoryCap] = {}  # instance id -> its cap
        self._containers: dict[str, Any] = {}  # instance id -> docker Container
        self._instance_of: dict[str, str] = {}  # container id -> instance id
        self._pids: dict[str, int] = {}  # container id -> agent's host pid
        self._deaths: dict[str, asyncio.Future[tuple[int, bool]]] = {}  # container id -> (exit code, OOMKilled)
        self._events: Any = None
        self._watcher: threading.Thread | None = None
        self._closing = False
        self._closed = False
        self._blind: str | None = None  # why the event stream ended early (no exit would be seen)
        self._finalizer: weakref.finalize[Any, Any] | None = None

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking SDK call on this runtime's own threads (never the loop's default executor)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    # ---- lifecycle --------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Reach the engine, import the runtime image, and follow the run's container deaths."""
        self._loop = asyncio.get_running_loop()
        self.client = await self._call(connect)
        self._finalizer = weakref.finalize(self, _sweep, self.run_id)
        try:
            if self.build:
                self.image = await self._call(build_image, self.client, self.agent, self.build_base)
            elif self.image is None:
                self.image = await self._call(import_runtime_image, self.client, self.run_id)
            filters = {"type": "container", "event": "die", "label": f"{LABEL}={self.run_id}"}
            self._events = await self._call(self.client.events, decode=True, filters=filters)
            self._watcher = threading.Thread(target=self._watch_events, name=f"docker-events-{self.run_id}",
                                             daemon=True)
            self._watcher.start()
        except BaseException:
            await self.close()
            raise

    def prepare(self, instance_id: str, cfg: dict[str, Any]) -> DockerMemoryCap:
        """Adapt an instance's config to the container (the quota is real: no emulated CPU stretch); its cap."""
        if self.quota is not None:
            cfg["cpu_factor"] = cfg["init_cpu_factor"] = 1.0
        # Run-queue waits are not subtracted as host contention: a throttled container waits there too.
        cfg["queue_correction"] = False
        cfg["cgroup"] = None
        if self.build:  # the agent's folder is inside the image, at /app
            cfg["agent"] = {**cfg["agent"], "path": in_image_path(self.agent)}
        cap = self._caps[instance_id] = DockerMemoryCap(float(self.profile.memory_mb), None)
        return cap

    async def started(self, instance_id: str) -> None:
        """The instance finished init: from now on it runs under the profile's CPU quota."""
        container = self._containers.get(instance_id)
        if self.deferred_quota and self.quota is not None and container is not None:
            with contextlib.suppress(Exception):  # it may have died meanwhile: its death tells the rest
                await self._call(container.update, cpu_period=_PERIOD_US, cpu_quota=int(self.quota * _PERIOD_US))

    async def spawn(self, instance_id: str, cfg: dict[str, Any]) -> tuple[int, socket.socket]:
        """Create and start the instance's container; return the agent's host pid and its connected socket."""
        if self.client is None or self._closing or self._blind:
            raise InstanceStartError(self._blind or "the Docker runtime is not running; no container starts")
        sock_path = self.run_dir / f"{instance_id}.sock"
        cfg_path = self.run_dir / f"{instance_id}.json"
        cfg_path.write_text(json.dumps(cfg))
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        container: Any = None
        try:
            listener.bind(str(sock_path))
            listener.listen(1)
            listener.setblocking(False)
            container, init_pid = await self._call(self._run_container, instance_id, sock_path, cfg_path)
            self._containers[instance_id] = container
            self._instance_of[container.id] = instance_id
            died = self._death(container.id)
            accept = asyncio.ensure_future(asyncio.get_running_loop().sock_accept(listener))
            waiting: set[asyncio.Future[Any]] = {accept, died}
            done, _ = await asyncio.wait(waiting, timeout=_CONNECT_TIMEOUT_S,
                                         return_when=asyncio.FIRST_COMPLETED)
            if accept not in done:
                accept.cancel()
                raise await self._start_error(instance_id, container, died)
            conn, _ = accept.result()
        except BaseException:
            if container is not None:
                await asyncio.shield(self._call(self._remove, container))
            raise
        finally:
            listener.close()
            with contextlib.suppress(OSError):
                sock_path.unlink()
        pid = _agent_pid(init_pid)
        self._pids[container.id] = pid
        cap = self._caps.get(instance_id)
        if cap is not None:
            found = _memory_cgroup(pid)
            if found is not None:
                cap.cgroup, cap.version = found
        self.exit_future(pid)
        if died.done():
            self._settle(container.id)
        return pid, conn

    def init_hint(self, error: str) -> str:
        """A missing module in the container: whether it is a mount or an install problem, and the fix."""
        return start_hint(error, built=self.layout is None)

    async def _start_error(self, instance_id: str, container: Any,
                           died: asyncio.Future[tuple[int, bool]]) -> InstanceStartError:
        why = (f"exited with code {died.result()[0]} before connecting" if died.done()
               else f"did not connect within {_CONNECT_TIMEOUT_S:g} s")
        logs = ""
        with contextlib.suppress(Exception):
            logs = await self._call(lambda: container.logs(tail=15).decode(errors="replace").strip())
        message = f"instance {instance_id}: its container {container.name} ({self.image}) {why}"
        hint = start_hint(logs, built=self.layout is None)
        if hint:
            message += f": {hint}"
        if logs:  # in the message itself: a record's error and a CLI line show str(exc), not notes
            message += "\n--- container log (last lines) ---\n" + logs
        return InstanceStartError(message)

    def _run_container(self, instance_id: str, sock_path: Path, cfg_path: Path) -> tuple[Any, int]:
        """Blocking: create and start the container; its engine-side init pid."""
        cap = int(self.profile.memory_mb * 1024 * 1024)
        cwd = Path.cwd().resolve()
        layout = self.layout
        python = layout.executable if layout is not None else "python"
        env = {
            "PATH": f"{Path(python).parent}:/usr/local/bin:/usr/bin:/bin",
            "PYTHONPATH": os.pathsep.join([HARNESS_DIR, APP_DIR] if self.build else python_path(self.agent, layout)),
            **(layout.env if layout is not None else {}),
            "PYTHONDONTWRITEBYTECODE": "1",  # the mounts are read-only
            "HOME": "/tmp",
            "LANG": "C.UTF-8",
            "HARNESS_RUN_ID": self.run_id,
            **self.env,
        }
        kwargs: dict[str, Any] = {
            "image": self.image,
            "entrypoint": [python, "-m", "emulators.runtime.docker.entry"],
            "command": [str(sock_path), str(cfg_path)],
            "name": f"harness-{self.run_id}-{instance_id}",
            "labels": {LABEL: self.run_id, f"{LABEL}.instance": instance_id},
            "detach": True,
            "init": True,  # the agent must not be PID 1 (PID 1 ignores signals it has no handler for)
            # The LLM endpoint listens on 127.0.0.1: host networking reaches it with the same URL.
            "network_mode": "host",
            "read_only": True,
            "tmpfs": {"/tmp": f"size={TMP_MB}m,mode=1777"},
            # A built image carries the agent and the harness: only the run directory is shared.
            "mounts": host_mounts(self.agent, self.run_dir, layout, own_code=not self.build),
            "environment": env,
            "working_dir": APP_DIR if self.build else str(cwd) if cwd != Path("/") else "/tmp",
            "user": f"{os.getuid()}:{os.getgid()}",  # the files it writes in the run dir stay the caller's
            "mem_limit": cap,
            "memswap_limit": cap,  # equal: no swap, as on the platforms
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
        }
        if self.quota is not None and not self.deferred_quota:
            kwargs["nano_cpus"] = int(self.quota * 1e9)
        try:
            container = self.client.containers.create(**kwargs)
        except Exception as exc:
            raise InstanceStartError(f"instance {instance_id}: the engine did not create its container: {exc}") \
                from None
        try:
            container.start()
            container.reload()
            return container, int(container.attrs["State"]["Pid"])
        except BaseException as exc:
            self._remove(container)
            if isinstance(exc, Exception) and not isinstance(exc, InstanceStartError):
                raise InstanceStartError(f"instance {instance_id}: its container did not start: {exc}") from None
            raise

    @staticmethod
    def _remove(container: Any) -> None:
        with contextlib.suppress(Exception):
            container.remove(force=True, v=True)

    # ---- exits ------------------------------------------------------------------------------------------

    def _death(self, container_id: str) -> asyncio.Future[tuple[int, bool]]:
        fut = self._deaths.get(container_id)
        if fut is None:
            assert self._loop is not None
            fut = self._deaths[container_id] = self._loop.create_future()
        return fut

    def _watch_events(self) -> None:
        """Thread: turn the engine's ``die`` events into exit statuses (reading OOMKilled from its state)."""
        loop = self._loop
        assert loop is not None
        try:
            for ev in self._events:
                cid = ev.get("id") or ev.get("Actor", {}).get("ID", "")
                code = int(ev.get("Actor", {}).get("Attributes", {}).get("exitCode", -1))
                oom = False
                with contextlib.suppress(Exception):
                    state = self.client.api.inspect_container(cid)["State"]
                    oom, code = bool(state.get("OOMKilled")), int(state.get("ExitCode", code))
                with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
                    loop.call_soon_threadsafe(self._died, cid, code, oom)
        except Exception:  # the stream was closed (ours, at close) or the engine went away
            pass
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._stream_ended)

    def _died(self, container_id: str, code: int, oom: bool) -> None:
        fut = self._death(container_id)
        if not fut.done():
            fut.set_result((code, oom))
        self._settle(container_id)

    def _settle(self, container_id: str) -> None:
        """Tell the instance how its container ended (once its pid is known)."""
        pid = self._pids.get(container_id)
        fut = self._deaths.get(container_id)
        if pid is None or fut is None or not fut.done():
            return
        code, oom = fut.result()
        cap = self._caps.get(self._instance_of.get(container_id, ""))
        if cap is not None:
            cap.engine_oom, cap.exit_code = oom, code
        exit_fut = self.exit_future(pid)
        if not exit_fut.done():
            exit_fut.set_result(_status(code))

    def _stream_ended(self) -> None:
        if not self._closing:
            self._blind = ("lost the Docker engine's event stream; containers' exits can no longer be seen, so "
                           "no new instance starts")
        for f in self._exits.values():
            if not f.done():
                f.set_result(-9)

    def forget(self, pid: int) -> None:
        """The instance's end was handled: remove its container (in the background)."""
        super().forget(pid)
        for cid, p in list(self._pids.items()):
            if p == pid:
                del self._pids[cid]
                iid = self._instance_of.pop(cid, "")
                self._caps.pop(iid, None)
                self._deaths.pop(cid, None)
                container = self._containers.pop(iid, None)
                if container is not None and not self._closing:
                    self._executor.submit(self._remove, container)

    async def close(self) -> None:
        """Remove every container, network, volume and image of the run; stop following events (once)."""
        if self._closed:
            return
        self._closing = self._closed = True
        try:
            if self.client is not None:
                await self._call(clean, self.run_id, self.client)
        finally:
            if self._events is not None:
                with contextlib.suppress(Exception):
                    self._events.close()
            if self._watcher is not None:
                await asyncio.get_running_loop().run_in_executor(None, self._watcher.join, 5.0)
            for f in self._exits.values():
                if not f.done():
                    f.set_result(-9)
            if self.client is not None:
                with contextlib.suppress(Exception):
                    self.client.close()
            self._executor.shutdown(wait=False)
            if self._finalizer is not None:
                self._finalizer.detach()

    def _died_message(self) -> str:
        return self._blind or "the Docker runtime is closed"
