"""Framing for the control <-> instance channel: a 4-byte big-endian length, then one JSON object.

A frame may carry pre-encoded JSON for one key (``raw``) so a large agent output is encoded once in the
instance and decoded once in the control process.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

__all__ = ["HEADER", "MAX_FRAME", "decode", "encode", "recv_frame", "send_frame"]

HEADER = struct.Struct(">I")
# Large enough for the biggest platform payload (Lambda's 6 MB, JSON-escaped) with room to spare; a frame
# beyond it is a protocol error, not something to buffer.
MAX_FRAME = 64 * 1024 * 1024


def encode(msg: dict[str, Any], raw: tuple[str, bytes] | None = None) -> bytes:
    """One frame: ``msg`` as JSON, with ``raw = (key, json_bytes)`` spliced in as an already-encoded value."""
    body = json.dumps(msg, separators=(",", ":")).encode()
    if raw is not None:
        key, value = raw
        prefix = b"{" + json.dumps(key).encode() + b":" + value
        body = prefix + (b"}" if body == b"{}" else b"," + body[1:])
    return HEADER.pack(len(body)) + body


def decode(body: bytes) -> dict[str, Any]:
    """Parse one frame body."""
    msg = json.loads(body)
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
