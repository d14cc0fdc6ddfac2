"""Length-prefixed msgpack frames between the host and an isolated plugin's child.

Both directions carry untrusted data: a frame is a 4-byte big-endian length followed by
that many bytes of msgpack, and a reader refuses a length above its ``max_frame`` before
reading the body (so a hostile peer cannot make the other side allocate gigabytes), refuses
msgpack extension types, non-string map keys and trailing bytes, and never unpickles
anything.  Any of that is a ``WireError``; the caller treats the peer as broken.

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

_HEADER = struct.Struct(">I")


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
        body: bytes = msgpack.packb(message, use_bin_type=True, default=_as_text)
    except (TypeError, ValueError, OverflowError) as exc:
        raise WireError(f"cannot encode message: {exc}") from exc
    if len(body) > max_frame:
        raise WireError(f"frame of {len(body)} bytes exceeds the maximum of {max_frame}")
    return _HEADER.pack(len(body)) + body


def decode(body: bytes) -> Any:
    """The value in one frame body, parsed as untrusted data."""
    try:
        return msgpack.unpackb(
            body,
            raw=False,
            use_list=True,
            strict_map_key=True,
            ext_hook=_refuse_ext,
        )
    except WireError:
        raise
    except Exception as exc:  # msgpack raises several types, ValueError and its own
        raise WireError(f"malformed frame: {type(exc).__name__}: {exc}") from None


def _as_text(value: Any) -> Any:
    """msgpack's fallback for values it cannot encode: mappings and sequences as data,
    anything else as its text (``str(value)``)."""
    if isinstance(value, Mapping):
        return {str(k) if not isinstance(k, str) else k: v for k, v in value.items()}
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    return str(value)


def to_wire(value: Any, depth: int = 0) -> Any:
    """A copy of ``value`` that msgpack can carry: dicts with string keys, lists, text,
    numbers, booleans, None and bytes.  Anything else (a ``datetime``, a ``Path``, a
    ``ChainMap``'s non-string key, an integer beyond 64 bits, an object) becomes its text,
    so a host-side result or variable never makes a call fail for being unencodable."""
    if value is None or isinstance(value, bool | float | str | bytes):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if depth >= MAX_DEPTH:
        return str(value)
    if isinstance(value, Mapping):
        return {
            (k if isinstance(k, str) else str(k)): to_wire(v, depth + 1) for k, v in value.items()
        }
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
        self._buffer = bytearray()
        self._poll = select.poll()
        self._poll.register(read_fd, select.POLLIN | select.POLLHUP | select.POLLERR)

    def send(self, message: Any) -> None:
        data = memoryview(encode(message, max_frame=self.max_frame))
        while data:
            try:
                written = os.write(self.write_fd, data)
            except BrokenPipeError as exc:
                raise PeerClosed("the peer closed its end of the pipe") from exc
            except OSError as exc:
                raise PeerClosed(f"cannot write to the peer: {exc}") from exc
            data = data[written:]

    def receive(self, deadline: float | None = None) -> Any:
        """The next message; ``WireTimeout`` past ``deadline`` (a ``time.monotonic()``
        value), ``PeerClosed`` at end of file, ``WireError`` for a bad frame."""
        size = self._read_exactly(_HEADER.size, deadline)
        (length,) = _HEADER.unpack(size)
        if length > self.max_frame:
            raise WireError(f"frame of {length} bytes exceeds the maximum of {self.max_frame}")
        return decode(self._read_exactly(length, deadline))

    def _read_exactly(self, count: int, deadline: float | None) -> bytes:
        buffer = self._buffer
        while len(buffer) < count:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WireTimeout("no reply before the deadline")
                if not self._poll.poll(max(1, int(left * 1000) + 1)):
                    continue
            try:
                chunk = os.read(self.read_fd, max(65536, count - len(buffer)))
            except OSError as exc:
                raise PeerClosed(f"cannot read from the peer: {exc}") from exc
            if not chunk:
                raise PeerClosed("the peer closed its end of the pipe")
            buffer += chunk
        data = bytes(buffer[:count])
        del buffer[:count]
        return data

    def close(self) -> None:
        for fd in {self.read_fd, self.write_fd}:
            try:  # noqa: SIM105 (contextlib is one import more at the child's start-up)
                os.close(fd)
            except OSError:
                pass
