"""The wire module: frames are bounded, parsed as untrusted data, never unpickled."""

from __future__ import annotations

import contextlib
import datetime
import enum
import os
import pickle
import struct
import threading
import time
from collections import ChainMap
from pathlib import Path

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline_ex.plugins.isolation import wire


@pytest.fixture
def pair() -> tuple[wire.Channel, int]:
    """A channel reading from a pipe whose write end the test holds."""
    read_fd, write_fd = os.pipe()
    sink_r, sink_w = os.pipe()
    channel = wire.Channel(read_fd, sink_w, max_frame=1024)
    yield channel, write_fd
    channel.close()
    for fd in (write_fd, sink_r):
        with contextlib.suppress(OSError):
            os.close(fd)


def test_round_trip_through_a_pipe() -> None:
    a_r, a_w = os.pipe()
    b_r, b_w = os.pipe()
    left, right = wire.Channel(b_r, a_w), wire.Channel(a_r, b_w)
    message = [0, 7, "execute", [{"text": "héllo", "n": 3, "f": 1.5, "b": b"\x00", "x": None}]]
    left.send(message)
    assert right.receive(time.monotonic() + 5) == message
    left.close()
    right.close()


def test_oversized_frame_is_refused_on_send() -> None:
    with pytest.raises(wire.WireError, match="exceeds the maximum"):
        wire.encode("x" * 2000, max_frame=1024)


def test_oversized_length_prefix_is_refused_before_reading_the_body(pair) -> None:
    channel, write_fd = pair
    os.write(write_fd, struct.pack(">I", 2**31))  # no body follows: must not wait for it
    with pytest.raises(wire.WireError, match="exceeds the maximum of 1024"):
        channel.receive(time.monotonic() + 5)


@pytest.mark.parametrize(
    "body",
    [
        b"\xc1",  # never-used msgpack byte
        b"\x92\x01",  # array of two, one element
        msgpack.packb([1, 2]) + b"\x00",  # trailing bytes
        msgpack.packb({1: "int key"}),
        msgpack.packb(msgpack.ExtType(5, b"data")),
        msgpack.packb([msgpack.Timestamp(1, 0)]),  # msgpack decodes type -1 itself
        msgpack.packb(msgpack.ExtType(6, b"")),
        pickle.dumps({"a": 1}),
    ],
    ids=[
        "reserved",
        "truncated",
        "trailing",
        "int-key",
        "ext-type",
        "timestamp",
        "empty-ext",
        "pickle",
    ],
)
def test_malformed_frames_are_refused(pair, body: bytes) -> None:
    channel, write_fd = pair
    os.write(write_fd, struct.pack(">I", len(body)) + body)
    with pytest.raises(wire.WireError):
        channel.receive(time.monotonic() + 5)


def test_an_oversized_frame_that_arrives_whole_is_refused(pair) -> None:
    channel, write_fd = pair
    body = msgpack.packb("x" * 2000)
    os.write(write_fd, struct.pack(">I", len(body)) + body)
    with pytest.raises(wire.WireError, match="exceeds the maximum of 1024"):
        channel.receive(time.monotonic() + 5)


def test_frames_split_joined_and_larger_than_one_read_all_arrive() -> None:
    a_r, a_w = os.pipe()
    b_r, b_w = os.pipe()
    sender, receiver = wire.Channel(b_r, a_w), wire.Channel(a_r, b_w)
    try:
        first, second = wire.encode(["one", 1]), wire.encode({"two": [2]})
        os.write(a_w, first + second)  # two frames in one read
        assert receiver.receive(time.monotonic() + 5) == ["one", 1]
        assert receiver.receive(time.monotonic() + 5) == {"two": [2]}
        for byte in range(len(first)):  # one frame a byte at a time
            os.write(a_w, first[byte : byte + 1])
        assert receiver.receive() == ["one", 1]
        os.write(a_w, second[:3])  # half a header, then the rest with the next frame
        os.write(a_w, second[3:] + first)
        assert receiver.receive(time.monotonic() + 5) == {"two": [2]}
        assert receiver.receive(time.monotonic() + 5) == ["one", 1]
        big = {"blob": b"\x01" * (3 * wire.READ_SIZE), "n": 7}  # more than the pipe holds
        writer = threading.Thread(target=sender.send, args=(big,))
        writer.start()
        assert receiver.receive(time.monotonic() + 5) == big
        writer.join()
    finally:
        sender.close()
        receiver.close()


def test_an_unencodable_message_leaves_the_channel_usable() -> None:
    a_r, a_w = os.pipe()
    channel = wire.Channel(a_r, a_w, max_frame=1024)
    try:
        channel.send([3])
        with pytest.raises(wire.WireError, match="cannot encode"):
            channel.send([1, "\ud800"])  # a lone surrogate has no UTF-8
        with pytest.raises(wire.WireError, match="exceeds the maximum"):
            channel.send("x" * 2000)
        channel.send([4, 2**70])  # msgpack's fallback turns a huge integer into text
        assert channel.receive(time.monotonic() + 5) == [3]
        assert channel.receive(time.monotonic() + 5) == [4, str(2**70)]
    finally:
        channel.close()


class _Colour(str, enum.Enum):  # noqa: UP042 (not StrEnum: its str() is not its value)
    RED = "red"


class _Level(enum.IntEnum):
    HIGH = 3


class _Text(str):
    def __str__(self) -> str:
        return "not the characters"


class _Ratio(float):
    pass


class _Blob(bytes):
    pass


class _Items(list[object]):
    pass


class _Table(dict[object, object]):
    pass


def test_subclasses_of_plain_types_travel_as_their_exact_plain_value() -> None:
    """The packers take exact types only (``strict_types``); what a non-strict packer
    took from a subclass must arrive the same, as the exact type, on both paths (a
    channel's packer and ``encode``), inside containers and as map keys."""
    value = {
        "colour": _Colour.RED,
        "level": _Level.HIGH,
        "text": _Text("abc"),
        "ratio": _Ratio(0.5),
        "blob": _Blob(b"\x01"),
        "items": _Items([_Level.HIGH, (1, _Colour.RED)]),
        "table": _Table({"k": _Ratio(1.5), 2: "two"}),
        "set": frozenset({1}),
        _Text("key"): True,
        "big": _Level.HIGH * 2**70,
    }
    expected = {
        "colour": "red",
        "level": 3,
        "text": "abc",
        "ratio": 0.5,
        "blob": b"\x01",
        "items": [3, [1, "red"]],
        "table": {"k": 1.5, "2": "two"},
        "set": [1],
        "key": True,
        "big": str(3 * 2**70),
    }
    a_r, a_w = os.pipe()
    channel = wire.Channel(a_r, a_w)
    try:
        for message in (value, wire.to_wire(value)):
            channel.send(message)
            got = channel.receive(time.monotonic() + 5)
            assert got == expected
            assert wire.decode(wire.encode(message)[4:]) == expected
            assert [type(got[k]) for k in ("colour", "level", "text", "ratio", "blob")] == [
                str,
                int,
                str,
                float,
                bytes,
            ]
    finally:
        channel.close()


def test_plain_data_is_passed_through_and_anything_else_copied() -> None:
    flat = {"text": "x", "n": None, "f": 1.5, "b": b"b", "ok": True}
    assert wire.to_wire(flat) is flat
    nested = {"text": "x", "items": ["a", 1, 1.5]}
    assert wire.to_wire(nested) == nested
    mixed = {"text": "x", "items": ["a", (1, 2)], 3: "k"}
    assert wire.to_wire(mixed) == {"text": "x", "items": ["a", [1, 2]], "3": "k"}
    assert mixed == {"text": "x", "items": ["a", (1, 2)], 3: "k"}  # the input is untouched


def test_closed_pipe_is_peer_closed(pair) -> None:
    channel, write_fd = pair
    os.write(write_fd, b"\x00\x00")  # half a header, then end of file
    os.close(write_fd)
    with pytest.raises(wire.PeerClosed):
        channel.receive(time.monotonic() + 5)


def test_silence_is_a_timeout(pair) -> None:
    channel, _ = pair
    with pytest.raises(wire.WireTimeout):
        channel.receive(time.monotonic() + 0.05)


def test_host_values_that_msgpack_cannot_carry_become_text() -> None:
    when = datetime.date(2026, 1, 2)
    value = {
        "when": when,
        "path": Path("/tmp/x"),
        "big": 2**70,
        1: "int key",
        "chain": ChainMap({"a": 1}, {"b": 2}),
        "tuple": (1, 2),
        "obj": object,
    }
    out = wire.to_wire(value)
    assert out["when"] == "2026-01-02"
    assert out["path"] == "/tmp/x"
    assert out["big"] == str(2**70)
    assert out["1"] == "int key"
    assert out["chain"] == {"a": 1, "b": 2}
    assert out["tuple"] == [1, 2]
    assert out["obj"] == str(object)
    assert wire.decode(wire.encode(out)[4:]) == out


def test_deep_nesting_is_cut_to_text() -> None:
    value: object = "leaf"
    for _ in range(wire.MAX_DEPTH + 10):
        value = [value]
    out = wire.to_wire(value)
    depth = 0
    while isinstance(out, list):
        out, depth = out[0], depth + 1
    assert depth == wire.MAX_DEPTH
    assert isinstance(out, str)


json_like = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text() | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(json_like)
def test_plain_data_survives_a_frame_unchanged(value: object) -> None:
    assert wire.decode(wire.encode(wire.to_wire(value))[4:]) == value


@given(st.binary(max_size=64))
def test_arbitrary_bytes_never_escape_as_anything_but_wire_error(body: bytes) -> None:
    with contextlib.suppress(wire.WireError):
        wire.decode(body)
