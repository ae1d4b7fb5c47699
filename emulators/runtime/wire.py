"""Framing for the control <-> instance channel: a 4-byte big-endian length, then one JSON object.

A frame may carry pre-encoded JSON for one key (``raw``) so a large agent output is encoded once in the
instance and decoded once in the control process.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable
from typing import Any, cast

from ..jsonfast import dumps, loads

__all__ = ["HEADER", "MAX_FRAME", "FrameProtocol", "FrameReader", "decode", "encode", "recv_frame", "send_frame"]

HEADER = struct.Struct(">I")
# Large enough for the biggest platform payload (Lambda's 6 MB, JSON-escaped) with room to spare; a frame
# beyond it is a protocol error, not something to buffer.
MAX_FRAME = 64 * 1024 * 1024


def encode(msg: dict[str, Any], raw: tuple[str, bytes] | None = None) -> bytes:
    """One frame: ``msg`` as JSON, with ``raw = (key, json_bytes)`` spliced in as an already-encoded value."""
    body = dumps(msg)
    if raw is not None:
        key, value = raw
        prefix = b"{" + dumps(key) + b":" + value
        body = prefix + (b"}" if body == b"{}" else b"," + body[1:])
    return HEADER.pack(len(body)) + body


def decode(body: bytes) -> dict[str, Any]:
    """Parse one frame body."""
    msg = loads(body)
    if not isinstance(msg, dict):
        raise ValueError(f"frame is not a JSON object: {body[:80]!r}")
    return msg


def send_frame(sock: socket.socket, msg: dict[str, Any], raw: tuple[str, bytes] | None = None) -> None:
    """Blocking send of one frame (instance side)."""
    sock.sendall(encode(msg, raw))


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def recv_frame(sock: socket.socket) -> dict[str, Any] | None:
    """Blocking receive of one frame; None when the peer closed the channel."""
    head = _recv_exact(sock, HEADER.size)
    if head is None:
        return None
    (length,) = HEADER.unpack(head)
    if length > MAX_FRAME:
        raise ValueError(f"frame of {length} bytes exceeds the {MAX_FRAME}-byte limit")
    body = _recv_exact(sock, length)
    return None if body is None else decode(body)


class FrameReader:
    """Blocking frame reader with its own buffer (instance side): one ``recv`` per frame rather than two.

    A warm call's frame arrives whole, so this halves the instance's system calls per call. Once used on
    a socket, every read of that socket must go through it (it may hold the start of the next frame).
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buf = bytearray()

    def recv(self) -> dict[str, Any] | None:
        """The next frame; None when the peer closed the channel."""
        buf = self._buf
        while True:
            need = HEADER.size
            if len(buf) >= HEADER.size:
                (length,) = HEADER.unpack_from(buf)
                if length > MAX_FRAME:
                    raise ValueError(f"frame of {length} bytes exceeds the {MAX_FRAME}-byte limit")
                need = HEADER.size + length
                if len(buf) >= need:
                    body = bytes(buf[HEADER.size:need])
                    del buf[:need]
                    return decode(body)
            chunk = self.sock.recv(max(65536, need - len(buf)))
            if not chunk:
                return None
            buf += chunk


class FrameProtocol(asyncio.Protocol):
    """Control side: frames are decoded and handed to ``on_frame`` as their bytes arrive.

    A protocol rather than a ``StreamReader`` and a task awaiting ``readexactly`` twice per frame: the
    frame is handled in the same event-loop turn that read it (one task wake-up less per call on the
    engine's loop). A malformed or oversized frame closes the channel (the instance is then treated as
    ended); ``closed`` resolves when the connection is gone.
    """

    def __init__(self, on_frame: Callable[[dict[str, Any]], None]) -> None:
        self.on_frame = on_frame
        self.transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buf = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports have the Transport methods without subclassing
        # asyncio.Transport (an assert here made every invocation under uvloop end in gateway_timeout).
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        while len(buf) >= HEADER.size:
            (length,) = HEADER.unpack_from(buf)
            if length > MAX_FRAME:
                self._abort()
                return
            end = HEADER.size + length
            if len(buf) < end:
                return
            body = bytes(buf[HEADER.size:end])
            del buf[:end]
            try:
                msg = decode(body)
            except ValueError:
                self._abort()
                return
            self.on_frame(msg)

    def _abort(self) -> None:
        self._buf.clear()
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def write(self, data: bytes) -> None:
        """Send bytes (dropped once the channel is closing)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        """Close the channel."""
        if self.transport is not None:
            self.transport.close()
