"""The child's audit hook: deny and record what the plugin's grants do not cover.

Installed in the child before the plugin is imported (PEP 578 ``sys.addaudithook``; a hook
cannot be removed once added).  It raises ``PermissionError`` for, and records, socket
connect/bind to an address no ``network`` grant covers, opening a file for writing outside
every ``filesystem:write`` grant, process creation without ``subprocess``, and ctypes
(``dlopen``, foreign calls, raw memory) without ``native_code``.  The child turns a recorded
denial into a ``permission_denied`` error of the call during which it happened (even when
the plugin caught the ``PermissionError``).

This is policy and telemetry, not a security boundary: code in the child can reach around
an audit hook (see the README's "Security model"); the ``sandbox`` tier adds kernel
enforcement.  Like ``wire.py`` this module imports nothing from the host.
"""

from __future__ import annotations

import os
import sys

#: The child imports this module: ``typing`` (~5 ms at start-up) is for the type checker only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC

#: Audit events that start a process.
_PROCESS_EVENTS = frozenset(
    {
        "subprocess.Popen",
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "os.startfile",
        "pty.spawn",
    }
)
#: Audit events of ctypes that load or run native code or touch raw memory.
_NATIVE_EVENTS = frozenset(
    {
        "ctypes.dlopen",
        "ctypes.dlsym",
        "ctypes.dlsym/handle",
        "ctypes.call_function",
        "ctypes.cdata",
        "ctypes.cdata/buffer",
        "ctypes.string_at",
        "ctypes.wstring_at",
        "ctypes.addressof",
        "ctypes.create_string_buffer",
        "ctypes.create_unicode_buffer",
        "ctypes.set_errno",
        "ctypes.get_errno",
        "ctypes.seh_exception",
        "ctypes.PyObj_FromPtr",
    }
)

#: Audit events that change the file system, and how many leading arguments are paths.
_CHANGE_EVENTS = {
    "os.remove": 1,
    "os.rmdir": 1,
    "os.mkdir": 1,
    "os.rename": 2,
    "os.link": 2,
    "os.symlink": 2,
    "os.truncate": 1,
    "os.chmod": 1,
    "os.chown": 1,
    "os.utime": 1,
}


class Policy:
    """What the grants allow, from their wire form ``[kind, mode, target, port]``."""

    def __init__(self, grants: Iterable[Sequence[Any]]) -> None:
        self.network_any = False
        self.hosts: list[tuple[str, int | None]] = []
        self.write_roots: list[str] = []
        self.subprocess = False
        self.native_code = False
        for kind, mode, target, port in grants:
            if kind == "network":
                if target:
                    self.hosts.append((str(target).lower(), port))
                else:
                    self.network_any = True
            elif kind == "filesystem" and mode == "write":
                self.write_roots.append(os.path.realpath(str(target)))
            elif kind == "subprocess":
                self.subprocess = True
            elif kind == "native_code":
                self.native_code = True

    def network_allows(self, address: Any) -> bool:
        if self.network_any:
            return True
        if not isinstance(address, tuple) or len(address) < 2:
            return False  # AF_UNIX paths and other families need the general grant
        host, port = str(address[0]).lower(), address[1]
        return any(h == host and (p is None or p == port) for h, p in self.hosts)

    def write_allows(self, path: str) -> bool:
        real = os.path.realpath(path)
        return any(
            real == root or real.startswith(root.rstrip("/") + "/") for root in self.write_roots
        )


def _opened_for_writing(mode: Any, flags: Any) -> bool:
    if isinstance(mode, str) and any(c in mode for c in "wax+"):
        return True
    return isinstance(flags, int) and bool(flags & _WRITE_FLAGS)


def install(grants: Iterable[Sequence[Any]], record: Callable[[str], None]) -> Policy:
    """Add the hook; ``record(action)`` is called for each denial before it raises."""
    policy = Policy(grants)
    process_events = _PROCESS_EVENTS
    native_events = _NATIVE_EVENTS

    def deny(action: str) -> None:
        record(action)
        raise PermissionError(f"denied by the isolation policy: {action}")

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path, mode, flags = args[0], args[1], args[2]
            if isinstance(path, int) or not _opened_for_writing(mode, flags):
                return
            text = os.fsdecode(path) if isinstance(path, str | bytes) else str(path)
            if not policy.write_allows(text):
                deny(f"open {text!r} for writing (no filesystem:write grant covers it)")
        elif event in _CHANGE_EVENTS:
            for path in args[: _CHANGE_EVENTS[event]]:
                if isinstance(path, str | bytes) and not policy.write_allows(os.fsdecode(path)):
                    deny(f"{event} {os.fsdecode(path)!r} (no filesystem:write grant covers it)")
        elif event in ("socket.connect", "socket.bind"):
            address = args[1]
            if not policy.network_allows(address):
                verb = event.partition(".")[2]
                deny(f"socket {verb} to {address!r} (no network grant covers it)")
        elif event in process_events:
            if not policy.subprocess:
                deny(f"process creation ({event}) without the subprocess grant")
        elif event in native_events and not policy.native_code:
            deny(f"native code ({event}) without the native_code grant")

    sys.addaudithook(hook)
    return policy
