"""The zygote: a pre-started, single-threaded runtime process that forks instance processes on request.

Forking from a process that has imported the runtime but not the agent makes a cold start cost what the
platform and the agent cost (about 1.5 ms for the fork) instead of an interpreter start (35 ms). The
control process is multi-threaded and runs an event loop, so it never forks itself.

Protocol on the SOCK_SEQPACKET control socket (one JSON message per packet):
  control -> zygote  {"op": "spawn", "instance_id", "cfg"} with the instance's socket passed as an fd
  zygote -> control  {"op": "spawned", "instance_id", "pid"} | {"op": "exited", "pid", "status"}
``status`` is the exit code, or minus the signal number. When the control socket closes the zygote kills
its instances and exits; ``PR_SET_PDEATHSIG`` covers the control process dying without closing it.

Started as ``python -m emulators.runtime.zygote FD RUN_ID``: the run id is on every process's command line
so leftovers can be found and reaped.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import select
import signal
import socket
import sys
from typing import Any

from . import child, limits

__all__ = ["main", "set_pdeathsig"]


def set_pdeathsig(sig: int = signal.SIGKILL) -> None:
    """Ask Linux to send ``sig`` to this process when its parent dies (no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(sig), 0, 0, 0)  # PR_SET_PDEATHSIG = 1


def _send(ctrl: socket.socket, msg: dict[str, Any]) -> None:
    ctrl.send(json.dumps(msg).encode())


def _run_child(ctrl: socket.socket, wake: tuple[socket.socket, socket.socket], fd: int,
               cfg: dict[str, Any]) -> None:
    code = 0
    try:
        ctrl.close()
        for s in wake:
            s.close()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        set_pdeathsig()
        sock = socket.socket(fileno=fd)
        child.serve(sock, cfg)
    except BaseException:
        code = 70
        with contextlib.suppress(BaseException):
            import traceback

            traceback.print_exc()
    finally:
        os._exit(code)


def main(argv: list[str]) -> int:
    """Serve spawn requests until the control socket closes."""
    fd = int(argv[0])
    set_pdeathsig()
    # Joining a memory cgroup costs ~10 ms the first time for a process tree here; pay it once at start
    # so instance cold starts (which move into their own capped cgroup) do not.
    parent = os.environ.get("HARNESS_CGROUP_PARENT")
    if parent:
        with contextlib.suppress(OSError):
            limits.join_cgroup(parent)
    # Ctrl-C goes to the whole foreground process group; the control process decides what to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ctrl = socket.socket(fileno=fd)
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    wake_w.setblocking(False)
    signal.set_wakeup_fd(wake_w.fileno())
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: set[int] = set()
    # Objects that exist now move to a permanent generation, so an instance's GC never walks (and so
    # copy-on-write copies) the zygote's heap: fewer page faults per cold start.
    gc.freeze()
    try:
        _send(ctrl, {"op": "hello", "pid": os.getpid()})
        while True:
            readable, _, _ = select.select([ctrl, wake_r], [], [])
            if wake_r in readable:
                with contextlib.suppress(BlockingIOError):
                    while wake_r.recv(4096):
                        pass
            for pid, status in _reap():
                children.discard(pid)
                _send(ctrl, {"op": "exited", "pid": pid, "status": status})
            if ctrl in readable:
                data, fds, _, _ = socket.recv_fds(ctrl, 1 << 20, 1)
                if not data:
                    return 0
                msg = json.loads(data)
                if msg["op"] != "spawn" or not fds:
                    continue
                pid = os.fork()
                if pid == 0:
                    _run_child(ctrl, (wake_r, wake_w), fds[0], msg["cfg"])
                os.close(fds[0])
                children.add(pid)
                _send(ctrl, {"op": "spawned", "instance_id": msg["instance_id"], "pid": pid})
    except (BrokenPipeError, ConnectionResetError):
        return 0
    finally:
        for pid in children:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        for _ in _reap(block=bool(children)):
            pass


def _reap(block: bool = False) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    while True:
        try:
            pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return out
        if pid == 0:
            return out
        code = os.waitstatus_to_exitcode(status)
        out.append((pid, code))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
