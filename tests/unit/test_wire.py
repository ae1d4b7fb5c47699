"""Wire framing: length-prefixed JSON frames, the raw splice, and socket receive edge cases."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest

from emulators.runtime.wire import (
    HEADER,
    MAX_FRAME,
    FrameProtocol,
    FrameReader,
    decode,
    encode,
    recv_frame,
    send_frame,
)

pytestmark = pytest.mark.both_loops  # the channel / engine thread on either loop


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    with a, b:
        yield a, b


def body(frame: bytes) -> bytes:
    (length,) = HEADER.unpack(frame[: HEADER.size])
    assert length == len(frame) - HEADER.size
    return frame[HEADER.size:]


def test_encode_decode_round_trip() -> None:
    """A message survives encode then decode, with a 4-byte big-endian length prefix."""
    msg = {"op": "invoke", "task": {"q": "hi", "n": [1, 2.5, None, True]}, "é": "ü"}
    frame = encode(msg)
    assert frame[:4] == len(frame[4:]).to_bytes(4, "big")
    assert decode(body(frame)) == msg


def test_raw_splice() -> None:
    """A pre-encoded value is spliced in under its key, first, without re-encoding."""
    frame = encode({"a": 1}, raw=("output", b"[1,2]"))
    assert body(frame) == b'{"output":[1,2],"a":1}'
    assert decode(body(frame)) == {"output": [1, 2], "a": 1}


def test_raw_splice_with_empty_message() -> None:
    """The raw splice works when the rest of the message is empty."""
    frame = encode({}, raw=("output", b'{"x":"y"}'))
    assert decode(body(frame)) == {"output": {"x": "y"}}


def test_raw_splice_key_is_escaped() -> None:
    """A raw key needing JSON escapes is encoded correctly."""
    assert decode(body(encode({}, raw=('a"b', b"1")))) == {'a"b': 1}


def test_decode_rejects_non_objects() -> None:
    """A frame whose JSON is not an object is a ValueError."""
    with pytest.raises(ValueError, match="not a JSON object"):
        decode(b"[1,2]")


def test_send_and_recv_frame(pair: tuple[socket.socket, socket.socket]) -> None:
    """send_frame then recv_frame over a socket pair returns the message, in order, frame by frame."""
    a, b = pair
    send_frame(a, {"n": 1})
    send_frame(a, {"n": 2}, raw=("output", b'"x"'))
    assert recv_frame(b) == {"n": 1}
    assert recv_frame(b) == {"output": "x", "n": 2}


@pytest.mark.parametrize("reader", ["recv_frame", "FrameReader"])
def test_recv_large_frame_in_many_chunks(pair: tuple[socket.socket, socket.socket], reader: str) -> None:
    """A frame larger than the socket buffer is reassembled from many reads, and the next frame follows it."""
    a, b = pair
    recv = FrameReader(b).recv if reader == "FrameReader" else lambda: recv_frame(b)
    msg = {"blob": "x" * (3 * 1024 * 1024)}
    sender = threading.Thread(target=lambda: (send_frame(a, msg), send_frame(a, {"after": True})))
    sender.start()
    try:
        assert recv() == msg
        assert recv() == {"after": True}
    finally:
        sender.join(timeout=10)


def test_frame_over_limit_is_rejected(pair: tuple[socket.socket, socket.socket]) -> None:
    """A header announcing more than MAX_FRAME bytes is a ValueError, before any body is read."""
    a, b = pair
    a.sendall(HEADER.pack(MAX_FRAME + 1))
    with pytest.raises(ValueError, match="exceeds"):
        recv_frame(b)


def test_eof_returns_none(pair: tuple[socket.socket, socket.socket]) -> None:
    """recv_frame returns None when the peer has closed the channel."""
    a, b = pair
    a.close()
    assert recv_frame(b) is None


def test_eof_mid_frame_returns_none(pair: tuple[socket.socket, socket.socket]) -> None:
    """A peer that closes in the middle of a frame yields None, not a partial message."""
    a, b = pair
    a.sendall(encode({"a": 1})[:-2])
    a.close()
    assert recv_frame(b) is None


def test_frame_reader_splits_frames_that_arrive_together(pair: tuple[socket.socket, socket.socket]) -> None:
    """FrameReader returns each of several frames sent in one write, in order, then None at EOF."""
    a, b = pair
    a.sendall(encode({"n": 1}) + encode({"n": 2}, raw=("output", b'"x"')) + encode({"n": 3}))
    a.close()
    reader = FrameReader(b)
    assert [reader.recv(), reader.recv(), reader.recv(), reader.recv()] == [
        {"n": 1}, {"output": "x", "n": 2}, {"n": 3}, None]


def test_frame_reader_rejects_an_oversized_header_and_a_cut_frame(pair: tuple[socket.socket, socket.socket]) -> None:
    """Over MAX_FRAME is a ValueError; a frame cut by EOF is None, as with recv_frame."""
    a, b = pair
    a.sendall(HEADER.pack(MAX_FRAME + 1))
    with pytest.raises(ValueError, match="exceeds"):
        FrameReader(b).recv()
    c, d = socket.socketpair()
    with c, d:
        c.sendall(encode({"a": 1})[:-2])
        c.close()
        assert FrameReader(d).recv() is None


def _protocol_run(chunks: list[bytes]) -> tuple[list[dict[str, object]], bool]:
    """Feed ``chunks`` from a real socket into a FrameProtocol; the frames it handed over and whether it closed."""
    async def main() -> tuple[list[dict[str, object]], bool]:
        a, b = socket.socketpair()
        got: list[dict[str, object]] = []
        _, proto = await asyncio.get_running_loop().create_unix_connection(lambda: FrameProtocol(got.append), sock=b)
        with a:
            for chunk in chunks:
                a.sendall(chunk)
                await asyncio.sleep(0.01)  # separate reads
            try:
                await asyncio.wait_for(asyncio.shield(proto.closed), 0.2)
                closed = True
            except TimeoutError:
                closed = False
        proto.close()
        return got, closed

    return asyncio.run(main())


def test_frame_protocol_hands_over_frames_split_and_joined_across_reads() -> None:
    """Frames cut at any byte and frames arriving together are decoded whole, in order."""
    data = encode({"n": 1}) + encode({"n": 2}, raw=("output", b'[1,2]')) + encode({"n": 3})
    got, closed = _protocol_run([data[:3], data[3:9], data[9:]])
    assert got == [{"n": 1}, {"output": [1, 2], "n": 2}, {"n": 3}] and not closed


def test_frame_protocol_closes_on_an_oversized_or_malformed_frame() -> None:
    """A header over MAX_FRAME or a body that is not a JSON object closes the channel; earlier frames stand."""
    got, closed = _protocol_run([encode({"ok": 1}) + HEADER.pack(MAX_FRAME + 1)])
    assert got == [{"ok": 1}] and closed
    bad = b"[1]"
    got, closed = _protocol_run([HEADER.pack(len(bad)) + bad])
    assert got == [] and closed
