"""Length-prefixed msgpack frames between the host and an isolated plugin's child.

Both directions carry untrusted data: a frame is a 4-byte big-endian length followed by
that many bytes of msgpack, and a reader refuses a length above its ``max_frame`` before
reading the body (so a hostile peer cannot make the other side allocate gigabytes), refuses
msgpack extension types (the timestamp type included), non-string map keys and trailing
bytes, and never unpickles anything.  Any of that is a ``WireError``; the caller treats the
peer as broken.

A call is one round trip over two pipes, so the fixed cost per frame is what matters: a
frame goes out in one ``write`` from a ``Packer`` the channel keeps, and comes in with one
``read`` that usually holds all of it (the body is parsed where it lies, without copying
it out of a buffer).  ``to_wire`` checks plain data by exact type before it falls back to
the general (``isinstance``) walk, and the packers take exact types only (``strict_types``,
see ``_as_wire``).

This module must import nothing from ``pipeline_ex`` outside this package: the child loads
it under a private package name without importing the host (see ``child.py``).
"""

from __future__ import annotations

import os
import select
import struct
import time
from collections.abc import Mapping

import msgpack

#: The child imports this module: ``typing`` (~5 ms at start-up) is for the type checker only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: Default largest frame either side accepts (bytes of msgpack after the length prefix).
MAX_FRAME = 16 * 1024 * 1024
#: Deepest nesting ``to_wire`` keeps; anything deeper becomes text.
MAX_DEPTH = 64
#: Bytes asked of one ``read``: a typical frame arrives whole.
READ_SIZE = 65536
#: Most bytes asked of one ``read`` while a large frame comes in: ``read`` allocates what
#: it is asked for, and a pipe hands over at most its buffer (64 KiB) at a time.
_READ_MAX = 1 << 20
#: Frames up to this size are sent as one joined ``bytes``; larger ones with ``writev``
#: (joining would copy the body once more).
_JOIN_LIMIT = 65536

_HEADER = struct.Struct(">I")
_unpack_header = _HEADER.unpack_from
_pack_header = _HEADER.pack
#: Types whose values msgpack carries as they are (exact types: subclasses take the
#: general path in ``to_wire``).
_PLAIN = frozenset({str, float, bool, bytes, type(None)})
_monotonic = time.monotonic
_unpackb = msgpack.unpackb
_EVENTS = select.POLLIN | select.POLLHUP | select.POLLERR


class WireError(Exception):
    """The peer sent something that is not a valid frame, or the pipe closed."""


class PeerClosed(WireError):
    """End of file: the peer closed its end of the pipe (or died)."""


class WireTimeout(WireError):
    """No complete frame arrived before the deadline."""


def _refuse_ext(code: int, data: bytes) -> Any:
    raise WireError(f"msgpack extension type {code} is not accepted")


def encode(message: Any, *, max_frame: int = MAX_FRAME) -> bytes:
    """One frame: the length prefix and the msgpack body; ``WireError`` if too large."""
    try:
        body: bytes = msgpack.packb(message, use_bin_type=True, default=_as_wire, strict_types=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise WireError(f"cannot encode message: {exc}") from exc
    if len(body) > max_frame:
        raise WireError(f"frame of {len(body)} bytes exceeds the maximum of {max_frame}")
    return _pack_header(len(body)) + body


def decode(body: bytes | memoryview) -> Any:
    """The value in one frame body, parsed as untrusted data.

    ``max_ext_len=0`` refuses the timestamp extension (type -1), which msgpack decodes
    itself without asking ``ext_hook``; other extension types reach ``_refuse_ext``."""
    try:
        return _unpackb(
            body,
            raw=False,
            use_list=True,
            strict_map_key=True,
            ext_hook=_refuse_ext,
            max_ext_len=0,
        )
    except Exception as exc:  # msgpack raises several types, ValueError and its own
        raise _malformed(exc) from None


def _malformed(exc: Exception) -> WireError:
    if isinstance(exc, WireError):
        return exc
    return WireError(f"malformed frame: {type(exc).__name__}: {exc}")


def _as_wire(value: Any) -> Any:
    """msgpack's fallback for what its packer does not take as it is.

    The packers run with ``strict_types``: they take exact types only, so that packing a
    list or a map does not ask ``isinstance(item, ExtType)`` (a Python-level class check)
    for every value.  What a non-strict packer would have taken leaves here as the same
    data in its exact type (a ``str`` or ``int`` subclass such as an enum member as its
    plain value, tuples, sets and list subclasses as lists); mappings become dicts with
    string keys; an integer beyond 64 bits and anything else become their text."""
    if isinstance(value, str):
        return str.__str__(value)  # an exact copy of the characters, whatever __str__ says
    if isinstance(value, int):
        return _int_on_wire(int.__int__(value))
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, bytes):
        return bytes.__bytes__(value)
    if isinstance(value, Mapping):
        return {_key(k): v for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return list(value)
    return str(value)


def to_wire(value: Any, depth: int = 0) -> Any:
    """``value`` as data msgpack can carry: dicts with string keys, lists, text, numbers,
    booleans, None and bytes.  Anything else (a ``datetime``, a ``Path``, a ``ChainMap``'s
    non-string key, an integer beyond 64 bits, an object) becomes its text, so a host-side
    result or variable never makes a call fail for being unencodable.

    A dict or list that is plain data already (the usual case) is returned as it is, not
    copied: it is packed right away."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is dict and depth < MAX_DEPTH:
        for k, v in value.items():
            if type(k) is not str or type(v) not in _PLAIN:
                break
        else:
            return value
        return {
            (k if type(k) is str else _key(k)): (v if type(v) in _PLAIN else to_wire(v, depth + 1))
            for k, v in value.items()
        }
    if kind is list and depth < MAX_DEPTH:
        for v in value:
            if type(v) not in _PLAIN:
                break
        else:
            return value
        return [v if type(v) in _PLAIN else to_wire(v, depth + 1) for v in value]
    return _to_wire_general(value, depth)


def _key(key: Any) -> str:
    return key if isinstance(key, str) else str(key)


def _int_on_wire(value: int) -> int | str:
    """An integer msgpack can carry (64 bits, signed or not), else its text."""
    return value if -(2**63) <= value < 2**64 else str(value)


def _to_wire_general(value: Any, depth: int) -> Any:
    """``to_wire`` for what is not an exact plain type: subclasses, other mappings and
    collections, large integers, objects."""
    if value is None or isinstance(value, bool | float | str | bytes):
        return value
    if isinstance(value, int):
        return _int_on_wire(value)
    if depth >= MAX_DEPTH:
        return str(value)
    if isinstance(value, Mapping):
        return {_key(k): to_wire(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_wire(v, depth + 1) for v in value]
    return str(value)


class Channel:
    """One end of a framed, bidirectional link over two pipe file descriptors.

    Not thread-safe: one thread at a time sends, and one receives (the host serialises
    calls per plugin; the child serves one request at a time).
    """

    def __init__(self, read_fd: int, write_fd: int, *, max_frame: int = MAX_FRAME) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        self.max_frame = max_frame
        #: Bytes read past the last frame (a frame that arrived in pieces, or the start of
        #: the next one).
        self._buffer = b""
        self._packer = msgpack.Packer(use_bin_type=True, default=_as_wire, strict_types=True)
        self._poll = select.poll()
        self._poll.register(read_fd, _EVENTS)

    def send(self, message: Any) -> None:
        try:  # a pack that fails leaves nothing behind in the packer
            body: bytes = self._packer.pack(message)
        except (TypeError, ValueError, OverflowError) as exc:
            raise WireError(f"cannot encode message: {exc}") from exc
        size = len(body)
        if size > self.max_frame:
            raise WireError(f"frame of {size} bytes exceeds the maximum of {self.max_frame}")
        try:
            if size <= _JOIN_LIMIT:
                data = _pack_header(size) + body
                written = os.write(self.write_fd, data)
                if written == size + 4:
                    return
                self._write_all(memoryview(data)[written:])
            else:
                header = _pack_header(size)
                written = os.writev(self.write_fd, (header, body))
                if written < 4:
                    self._write_all(memoryview(header)[written:])
                    written = 4
                self._write_all(memoryview(body)[written - 4 :])
        except BrokenPipeError as exc:
            raise PeerClosed("the peer closed its end of the pipe") from exc
        except OSError as exc:
            raise PeerClosed(f"cannot write to the peer: {exc}") from exc

    def _write_all(self, data: memoryview) -> None:
        while data:
            data = data[os.write(self.write_fd, data) :]

    def receive(self, deadline: float | None = None) -> Any:
        """The next message; ``WireTimeout`` past ``deadline`` (a ``time.monotonic()``
        value), ``PeerClosed`` at end of file, ``WireError`` for a bad frame.

        Without a deadline the read blocks; with one, ``poll`` waits first, so the
        deadline holds however the peer behaves.  Its timeout is milliseconds as a float:
        ``poll`` rounds it up, so it never returns before the deadline, and the builtin
        ``max``/``int`` (~1,000 instructions a call in CPython 3.11) are not needed.
        (Reading first on a non-blocking descriptor and polling only when nothing is there
        yet measured no faster, with the child on the caller's CPU or on another: the reply
        is often not there yet, and a failed read costs more than the poll.)  The usual
        case, one read bringing exactly one whole frame, is parsed here; anything else
        goes the long way."""
        if self._buffer:
            return self._receive_pieces(deadline)
        if deadline is not None:
            left = (deadline - _monotonic()) * 1000.0
            if not self._poll.poll(left if left > 0.0 else 0):
                return self._receive_pieces(deadline)  # raises ``WireTimeout``, or reads
        try:
            data = os.read(self.read_fd, READ_SIZE)
        except OSError as exc:
            raise PeerClosed(f"cannot read from the peer: {exc}") from exc
        size = len(data)
        if size > 4:
            (length,) = _unpack_header(data)
            if size == length + 4 and length <= self.max_frame:
                try:  # ``decode``, written out: this is every call's path
                    return _unpackb(
                        data[4:],
                        raw=False,
                        use_list=True,
                        strict_map_key=True,
                        ext_hook=_refuse_ext,
                        max_ext_len=0,
                    )
                except Exception as exc:
                    raise _malformed(exc) from None
        elif not size:
            raise PeerClosed("the peer closed its end of the pipe")
        self._buffer = data
        return self._receive_pieces(deadline)

    def _receive_pieces(self, deadline: float | None) -> Any:
        """A frame that arrives in pieces, or after others (see ``receive``)."""
        data: bytes | bytearray = self._buffer
        while True:
            size = len(data)
            if size >= 4:
                (length,) = _unpack_header(data)
                if length > self.max_frame:
                    raise WireError(
                        f"frame of {length} bytes exceeds the maximum of {self.max_frame}"
                    )
                end = 4 + length
                if size >= end:
                    self._buffer = bytes(data[end:]) if size > end else b""
                    return decode(memoryview(data)[4:end])
                need = end - size
            else:
                need = 4 - size
            if type(data) is bytes:  # gather the pieces without copying them again
                data = bytearray(data)
            data += self._read(need, deadline)

    def _read(self, need: int, deadline: float | None) -> bytes:
        if deadline is not None:
            while True:
                left = deadline - _monotonic()
                if left <= 0:
                    raise WireTimeout("no reply before the deadline")
                if self._poll.poll(left * 1000.0):
                    break
        try:
            chunk = os.read(self.read_fd, min(max(need, READ_SIZE), _READ_MAX))
        except OSError as exc:
            raise PeerClosed(f"cannot read from the peer: {exc}") from exc
        if not chunk:
            raise PeerClosed("the peer closed its end of the pipe")
        return chunk

    def close(self) -> None:
        for fd in {self.read_fd, self.write_fd}:
            try:  # noqa: SIM105 (contextlib is one import more at the child's start-up)
                os.close(fd)
            except OSError:
                pass
