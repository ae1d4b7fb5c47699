"""The control process's side of the zygote: start it, ask it for instances, learn how they exited."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..errors import InstanceStartError

__all__ = ["Spawner", "describe_status"]

_PKG_ROOT = str(Path(__file__).resolve().parents[2])


def describe_status(status: int) -> str:
    """Human text for a zygote-reported exit status (code, or minus the signal number)."""
    if status < 0:
        import signal

        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        return f"killed by {name}"
    return f"exited with code {status}"


class Spawner:
    """One zygote process and the bookkeeping of the instances it forked."""

    def __init__(self, run_id: str, run_dir: Path, env: dict[str, str] | None = None) -> None:
        self.run_id = run_id
        self.run_dir = run_dir
        self.env = env or {}
        self.proc: asyncio.subprocess.Process | None = None
        self._sock: socket.socket | None = None
        self._reader: asyncio.Task[None] | None = None
        self._spawning: dict[str, asyncio.Future[int]] = {}
        self._exits: dict[int, asyncio.Future[int]] = {}
        self._lock = asyncio.Lock()
        self._hello: asyncio.Future[int] | None = None

    async def start(self) -> None:
        """Start the zygote."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {**os.environ, **self.env, "HARNESS_RUN_ID": self.run_id}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PKG_ROOT, env.get("PYTHONPATH")) if p)
        log = open(self.run_dir / "zygote.log", "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "emulators.runtime.zygote", str(theirs.fileno()), self.run_id,
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
            )
        except OSError as exc:
            ours.close()
            raise InstanceStartError(f"cannot start the instance runtime ({sys.executable}): {exc}") from exc
        finally:
            theirs.close()
            log.close()
        ours.setblocking(False)
        self._sock = ours
        self._hello = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read(), name=f"zygote-{self.run_id}")
        # The zygote's own start (interpreter + runtime imports) is the deployment's, not a cold start's.
        try:
            await asyncio.wait_for(asyncio.shield(self._hello), 30.0)
        except (TimeoutError, InstanceStartError) as exc:
            await self.close()
            raise InstanceStartError(self._died_message()) from exc

    async def _read(self) -> None:
        sock = self._sock  # close() drops the attribute while this may still be waiting on the socket
        assert sock is not None
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await loop.sock_recv(sock, 65536)
                if not data:
                    break
                msg = json.loads(data)
                if msg["op"] == "hello" and self._hello is not None and not self._hello.done():
                    self._hello.set_result(msg["pid"])
                elif msg["op"] == "spawned":
                    fut = self._spawning.pop(msg["instance_id"], None)
                    if fut is not None and not fut.done():
                        fut.set_result(msg["pid"])
                elif msg["op"] == "exited":
                    fut_exit = self.exit_future(msg["pid"])
                    if not fut_exit.done():
                        fut_exit.set_result(msg["status"])
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            # The zygote is gone: nothing more will spawn or report; wake everyone waiting.
            if self._hello is not None and not self._hello.done():
                self._hello.set_exception(InstanceStartError(self._died_message()))
            for fut in self._spawning.values():
                if not fut.done():
                    fut.set_exception(InstanceStartError(self._died_message()))
            for f in self._exits.values():
                if not f.done():
                    f.set_result(-9)

    def init_hint(self, error: str) -> str:
        """What to do about an agent's failed import, where this runtime can tell ("": nothing to add)."""
        return ""

    def _died_message(self) -> str:
        tail = ""
        with contextlib.suppress(OSError):
            lines = (self.run_dir / "zygote.log").read_text(errors="replace").splitlines()[-10:]
            tail = "\n".join(lines)
        return "the instance runtime (zygote) exited" + (f"; its last log lines:\n{tail}" if tail else "")

    def exit_future(self, pid: int) -> asyncio.Future[int]:
        """A future resolved with the exit status of instance ``pid``."""
        fut = self._exits.get(pid)
        if fut is None:
            fut = self._exits[pid] = asyncio.get_running_loop().create_future()
        return fut

    def forget(self, pid: int) -> None:
        """Drop the bookkeeping of an instance whose exit was handled."""
        self._exits.pop(pid, None)

    async def spawn(self, instance_id: str, cfg: dict[str, Any]) -> tuple[int, socket.socket]:
        """Fork an instance; return its pid and the control end of its channel."""
        if self._sock is None or self._reader is None or self._reader.done():
            raise InstanceStartError(self._died_message())
        ours, theirs = socket.socketpair()
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._spawning[instance_id] = fut
        try:
            payload = json.dumps({"op": "spawn", "instance_id": instance_id, "cfg": cfg}).encode()
            async with self._lock:
                await self._send(payload, theirs.fileno())
            pid = await fut
        except BaseException:
            ours.close()
            self._spawning.pop(instance_id, None)
            raise
        finally:
            theirs.close()
        self.exit_future(pid)
        return pid, ours

    async def _send(self, payload: bytes, fd: int) -> None:
        """Send a spawn request; a burst of cold starts can fill the socket's queue, so wait for room."""
        loop = asyncio.get_running_loop()
        while True:
            sock = self._sock
            if sock is None:
                raise InstanceStartError(self._died_message())
            try:
                socket.send_fds(sock, [payload], [fd])
                return
            except BlockingIOError:
                # The SEQPACKET queue holds about 10 unread requests (net.unix.max_dgram_qlen); wait until
                # the zygote has read some, then send again.
                ready: asyncio.Future[None] = loop.create_future()

                def writable(fut: asyncio.Future[None] = ready) -> None:
                    if not fut.done():
                        fut.set_result(None)

                loop.add_writer(sock.fileno(), writable)
                try:
                    await asyncio.wait_for(ready, 1.0)
                except TimeoutError:
                    pass
                finally:
                    loop.remove_writer(sock.fileno())

    async def close(self) -> None:
        """Stop the zygote; it kills and reaps every instance it forked."""
        # The reader goes first: under uvloop a socket closed while sock_recv still polls it stays open
        # underneath, so the zygote never saw the end of its control socket and was killed after 5 s.
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)  # the end of the channel whoever still holds the fd
            self._sock.close()
            self._sock = None
        if self.proc is not None and self.proc.returncode is None:
            try:
                await asyncio.wait_for(self.proc.wait(), 5.0)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
