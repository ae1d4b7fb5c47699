"""Enforcing and measuring memory and CPU on instance processes, from outside the agent.

Memory caps use a cgroup where this machine lets us create one (v1 ``memory`` controller or v2 with the
``memory`` controller delegated): the kernel OOM-kills the instance (SIGKILL) the moment it passes the cap,
as Lambda and Docker do. Where no cgroup is writable (macOS, unprivileged containers) a poller kills the
instance when its RSS passes the cap, and the instance's own peak (VmHWM) is checked after each call: the
same outcomes, at lower precision. ``RLIMIT_AS`` is not used: it raises ``MemoryError`` inside the agent,
which an agent's ``except Exception`` can swallow, and it counts virtual memory, not what platforms cap.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil

__all__ = [
    "CpuClock",
    "MemoryCap",
    "PeakMemory",
    "QueuedClock",
    "cpu_seconds",
    "join_cgroup",
    "make_memory_cap",
    "peak_rss_mb",
    "rss_mb",
]

_LINUX = sys.platform.startswith("linux")
_V1_ROOT = Path("/sys/fs/cgroup/memory")
_V2_ROOT = Path("/sys/fs/cgroup")


# ---- instance side -------------------------------------------------------------------------------------

def join_cgroup(path: str | None) -> None:
    """Move the calling process into the cgroup at ``path`` (first thing an instance does)."""
    if path:
        Path(path, "cgroup.procs").write_text(str(os.getpid()))


def peak_rss_mb(pid: int | str = "self") -> float:
    """Peak resident memory (VmHWM: since the process started or ``PeakMemory.reset``), in MB."""
    if _LINUX:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024.0
        except OSError:
            return 0.0
    return rss_mb(os.getpid() if pid == "self" else int(pid))


class PeakMemory:
    """This process's peak RSS per invocation: VmHWM reset and read through two /proc files kept open.

    Opening, using and closing ``/proc/self/clear_refs`` and ``/proc/self/status`` on every call of an
    instance cost four more system calls than re-writing and ``pread``-ing descriptors kept open. Create it
    in the process it measures (``/proc/self`` is resolved when opened). Elsewhere than Linux: psutil's RSS.
    """

    def __init__(self) -> None:
        self._clear: int | None = None
        self._status: int | None = None
        if _LINUX:
            with contextlib.suppress(OSError):
                self._clear = os.open("/proc/self/clear_refs", os.O_WRONLY)
            with contextlib.suppress(OSError):
                self._status = os.open("/proc/self/status", os.O_RDONLY)

    def reset(self) -> None:
        """Start a new peak from the current RSS."""
        if self._clear is not None:
            with contextlib.suppress(OSError):
                os.write(self._clear, b"5")

    def mb(self) -> float:
        """Peak resident memory since the last ``reset``, in MB."""
        if self._status is None:
            return peak_rss_mb()
        try:
            text = os.pread(self._status, 8192, 0)
            at = text.index(b"VmHWM:")
            return int(text[at + 6:text.index(b"kB", at)]) / 1024.0
        except (OSError, ValueError):
            return peak_rss_mb()


def rss_mb(pid: int) -> float:
    """Current resident memory of ``pid`` in MB (0 when it is gone)."""
    try:
        return float(psutil.Process(pid).memory_info().rss) / (1024 * 1024)
    except psutil.Error:
        return 0.0


# ---- control side --------------------------------------------------------------------------------------

class QueuedClock:
    """Seconds a thread has waited in the host's run queue for a core (``/proc/<id>/schedstat``, field 2).

    The file stays open and is re-read with ``pread``: this is read on every call's warm path, and an
    open/read/close of a /proc file costs several times more. 0 where unknown (non-Linux).
    """

    def __init__(self, pid: int | str = "thread-self") -> None:
        self._fd: int | None = None
        if _LINUX:
            with contextlib.suppress(OSError):
                self._fd = os.open(f"/proc/{pid}/schedstat", os.O_RDONLY)

    def __call__(self) -> float:
        if self._fd is None:
            return 0.0
        try:
            return int(os.pread(self._fd, 128, 0).split()[1]) / 1e9
        except (OSError, ValueError, IndexError):
            return 0.0

    def close(self) -> None:
        """Release the file descriptor."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


class CpuProbe:
    """Whether any thread of process ``pid`` is running or runnable (state R): it is doing real work.

    Used by the virtual clock before it jumps over an instance's LLM wait: an agent that fires several
    requests at once is still sending the next one while the first already waits. The threads' ``stat``
    files stay open and are re-read with ``pread`` (this runs once per jump); the thread list is read again
    every ``REFRESH`` probes, as a pool may start threads. Unreadable (gone, or not Linux): never running.
    """

    REFRESH = 64

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._fds: list[int] = []
        self._uses = 0

    def _refresh(self) -> None:
        self.close()
        try:
            tids = os.listdir(f"/proc/{self.pid}/task")
        except OSError:
            return
        for tid in tids:
            with contextlib.suppress(OSError):
                self._fds.append(os.open(f"/proc/{self.pid}/task/{tid}/stat", os.O_RDONLY))

    def running(self) -> bool:
        """Whether a thread of the process is on a CPU or waiting for one now."""
        if self._uses % self.REFRESH == 0:
            self._refresh()
        self._uses += 1
        for fd in self._fds:
            try:
                stat = os.pread(fd, 512, 0)
            except OSError:
                continue
            end = stat.rfind(b")")
            if stat[end + 2:end + 3] == b"R":
                return True
        return False

    def close(self) -> None:
        """Release the file descriptors."""
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []


def cpu_seconds(pid: int) -> float:
    """CPU seconds used by all threads of ``pid``: nanosecond schedstat on Linux, psutil elsewhere."""
    if _LINUX:
        total = 0
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            return total / 1e9
        except (OSError, ValueError, IndexError):
            pass
    try:
        t = psutil.Process(pid).cpu_times()
        return float(t.user + t.system)
    except psutil.Error:
        return 0.0


class CpuClock:
    """CPU seconds used by one instance, read on every call's path (CPU factor, CPU limit, ``cpu_ms``).

    Where the instance has its own cgroup v2 (the memory cap's): its ``cpu.stat`` ``usage_usec``, one
    ``pread`` of a file kept open (it also counts processes the agent started, as the platform's sandbox
    would). Otherwise the sum of the threads' ``schedstat`` as ``cpu_seconds`` reads it, but through
    files kept open: the directory of threads is listed again only when ``/proc/<pid>/stat`` shows another
    thread count or a thread's file fails (it ended). ``cpu_seconds`` lists and opens them on every read:
    about eight system calls where this makes two.
    """

    def __init__(self, pid: int, cap: MemoryCap) -> None:
        self.pid = pid
        self._cg: int | None = None
        self._stat: int | None = None
        self._threads: dict[str, int] = {}  # tid -> its open schedstat
        self._count = -1
        if not _LINUX:
            return
        if cap.cgroup is not None and cap.version == 2:
            with contextlib.suppress(OSError):
                self._cg = os.open(cap.cgroup / "cpu.stat", os.O_RDONLY)
            if self._cg is not None and self._cgroup() is None:  # not the format expected: don't use it
                os.close(self._cg)
                self._cg = None
        if self._cg is None:
            with contextlib.suppress(OSError):
                self._stat = os.open(f"/proc/{pid}/stat", os.O_RDONLY)

    def _cgroup(self) -> float | None:
        assert self._cg is not None
        try:
            data = os.pread(self._cg, 256, 0)
            return int(data[11:data.index(b"\n")]) / 1e6 if data.startswith(b"usage_usec ") else None
        except (OSError, ValueError):
            return None

    def _relist(self) -> None:
        tids = set(os.listdir(f"/proc/{self.pid}/task"))
        for tid in [t for t in self._threads if t not in tids]:
            os.close(self._threads.pop(tid))
        for tid in tids - self._threads.keys():
            with contextlib.suppress(OSError):  # it may have ended since the listing
                self._threads[tid] = os.open(f"/proc/{self.pid}/task/{tid}/schedstat", os.O_RDONLY)

    def _sum_threads(self) -> float | None:
        assert self._stat is not None
        try:
            stat = os.pread(self._stat, 1024, 0)
            count = int(stat[stat.rindex(b")") + 2:].split()[17])  # field 20, num_threads
            for attempt in range(2):
                if count != self._count or attempt:
                    self._relist()
                    self._count = count
                try:
                    return sum(int(os.pread(fd, 128, 0).split()[0]) for fd in self._threads.values()) / 1e9
                except (OSError, ValueError, IndexError):
                    continue  # a thread ended: list them again
        except (OSError, ValueError, IndexError):
            pass
        return None

    def __call__(self) -> float:
        value = self._cgroup() if self._cg is not None else self._sum_threads() if self._stat is not None else None
        return cpu_seconds(self.pid) if value is None else value

    def close(self) -> None:
        """Release the file descriptors."""
        for fd in [self._cg, self._stat, *self._threads.values()]:
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._cg = self._stat = None
        self._threads.clear()


@dataclass
class MemoryCap:
    """The memory cap of one instance: a cgroup directory, or ``None`` when the poller must do it."""

    limit_mb: float
    cgroup: Path | None
    version: int = 0

    @property
    def kernel_enforced(self) -> bool:
        """Whether the kernel kills the instance at the cap (a cgroup), or a poller must."""
        return self.cgroup is not None

    def oom_killed(self) -> bool:
        """Whether the kernel OOM-killed a process of this cgroup."""
        if self.cgroup is None:
            return False
        try:
            if self.version == 1:
                text = (self.cgroup / "memory.oom_control").read_text()
                counts = dict(line.split() for line in text.splitlines() if line.strip())
                if int(counts.get("oom_kill", "0")) > 0:
                    return True
                return int((self.cgroup / "memory.failcnt").read_text()) > 0 and \
                    int(counts.get("under_oom", "0")) > 0
            text = (self.cgroup / "memory.events").read_text()
            counts = dict(line.split() for line in text.splitlines() if line.strip())
            return int(counts.get("oom_kill", "0")) > 0
        except (OSError, ValueError):
            return False

    def at_limit(self, slack_mb: float = 1.0) -> bool:
        """Whether the cgroup's usage is within ``slack_mb`` of its cap right now."""
        if self.cgroup is None:
            return False
        name = "memory.usage_in_bytes" if self.version == 1 else "memory.current"
        try:
            used = int((self.cgroup / name).read_text()) / (1024 * 1024)
        except (OSError, ValueError):
            return False
        return used >= self.limit_mb - slack_mb

    def peak_mb(self) -> float:
        """Highest usage the cgroup saw, in MB (0 when unknown)."""
        if self.cgroup is None:
            return 0.0
        name = "memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"
        try:
            return int((self.cgroup / name).read_text()) / (1024 * 1024)
        except (OSError, ValueError):
            return 0.0

    def remove(self) -> None:
        """Delete the cgroup (after its processes are gone)."""
        if self.cgroup is not None:
            with contextlib.suppress(OSError):
                self.cgroup.rmdir()


def _own_cgroup_v1() -> Path | None:
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if "memory" in controllers.split(","):
                return _V1_ROOT / path.lstrip("/")
    except OSError:
        return None
    return None


def _own_cgroup_v2() -> Path | None:
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                return _V2_ROOT / line[3:].lstrip("/")
    except OSError:
        return None
    return None


def cgroup_parent(run_id: str) -> tuple[Path, int] | None:
    """Create (once per run) the directory that holds the run's instance cgroups; None if not possible."""
    if not _LINUX or os.environ.get("HARNESS_NO_CGROUP"):
        return None
    own = _own_cgroup_v1()
    if own is not None and own.is_dir():
        parent = own / f"harness-{run_id}"
        with contextlib.suppress(OSError):
            parent.mkdir(exist_ok=True)
            return parent, 1
    own = _own_cgroup_v2()
    if own is not None and "memory" in _read(_V2_ROOT / "cgroup.controllers").split():
        parent = own / f"harness-{run_id}"
        with contextlib.suppress(OSError):
            parent.mkdir(exist_ok=True)
            (parent / "cgroup.subtree_control").write_text("+memory")
            return parent, 2
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def make_memory_cap(parent: tuple[Path, int] | None, instance_id: str, limit_mb: float) -> MemoryCap:
    """A cgroup capped at ``limit_mb`` with no swap, or a poller-enforced cap when cgroups are unavailable."""
    if parent is None:
        return MemoryCap(limit_mb, None)
    root, version = parent
    path = root / instance_id
    limit = str(int(limit_mb * 1024 * 1024))
    try:
        path.mkdir()
        if version == 1:
            (path / "memory.limit_in_bytes").write_text(limit)
            with contextlib.suppress(OSError):  # absent without swap accounting
                (path / "memory.memsw.limit_in_bytes").write_text(limit)
            with contextlib.suppress(OSError):
                (path / "memory.swappiness").write_text("0")
        else:
            (path / "memory.max").write_text(limit)
            with contextlib.suppress(OSError):
                (path / "memory.swap.max").write_text("0")
    except OSError:
        with contextlib.suppress(OSError):
            path.rmdir()
        return MemoryCap(limit_mb, None)
    return MemoryCap(limit_mb, path, version)


def remove_cgroup_parent(parent: tuple[Path, int] | None) -> None:
    """Remove the run's cgroup directory and any instance cgroups left in it."""
    if parent is None:
        return
    root = parent[0]
    with contextlib.suppress(OSError):
        for child in root.iterdir():
            if child.is_dir():
                with contextlib.suppress(OSError):
                    child.rmdir()
        root.rmdir()
