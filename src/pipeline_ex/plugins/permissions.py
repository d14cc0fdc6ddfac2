"""The permission vocabulary plugins declare and plugin configs grant.

A plugin lists what it needs in its metadata (or directory manifest) ``permissions``; the
plugin config grants permissions per plugin under ``security: {grants: {PLUGIN: [...],
"*": [...]}}``.  Declaring more than is granted is refused at load (``permission_denied``,
naming what is missing).  The vocabulary:

=========================  =====================================================
``network``                any outgoing connection
``network:HOST[:PORT]``    connections to one host (any port, or one port)
``filesystem:read:PATH``   reading files under PATH
``filesystem:write:PATH``  writing (and reading) files under PATH
``subprocess``             starting processes
``env:NAME``               reading one environment variable (``env:PREFIX_*`` a prefix)
``native_code``            loading native code (ctypes, cffi, extension modules)
=========================  =====================================================

Checking grants at load is all an ``in_process`` plugin gets: code running in the host can
do whatever the host can.  Enforcement needs the ``process`` and ``sandbox`` tiers.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from pipeline_ex.errors import PluginError

KINDS = ("network", "filesystem", "subprocess", "env", "native_code")


@dataclass(frozen=True, order=True)
class Permission:
    """One parsed permission: ``kind`` plus what it is about (host, port, path, name)."""

    kind: str
    mode: str = ""  # filesystem: read or write
    target: str = ""  # host, path or variable name; empty means "any"
    port: int | None = None

    def __str__(self) -> str:
        if self.kind == "network":
            if not self.target:
                return "network"
            return f"network:{self.target}" + (f":{self.port}" if self.port is not None else "")
        if self.kind == "filesystem":
            return f"filesystem:{self.mode}:{self.target}"
        if self.kind == "env":
            return f"env:{self.target}"
        return self.kind

    def covers(self, other: Permission) -> bool:
        """Whether holding ``self`` allows what ``other`` asks for."""
        if self.kind != other.kind:
            return False
        if self.kind in ("subprocess", "native_code"):
            return True
        if self.kind == "network":
            if not self.target:
                return True
            return self.target == other.target and (self.port is None or self.port == other.port)
        if self.kind == "env":
            if self.target.endswith("*"):
                return other.target.startswith(self.target[:-1])
            return self.target == other.target
        # filesystem: write implies read; a grant covers its folder and everything below
        if self.mode == "read" and other.mode == "write":
            return False
        granted, wanted = PurePosixPath(self.target), PurePosixPath(other.target)
        return wanted == granted or granted in wanted.parents


def parse(text: object, *, plugin: str) -> Permission:
    """A permission string, or ``validation_failed`` naming the plugin and the string."""

    def refuse(why: str) -> PluginError:
        return PluginError(
            f"plugin {plugin!r}: unknown permission {text!r} ({why}); known: network, "
            "network:HOST[:PORT], filesystem:read:PATH, filesystem:write:PATH, subprocess, "
            "env:NAME, native_code",
            code="validation_failed",
            plugin=plugin,
        )

    if not isinstance(text, str) or not text:
        raise refuse("not a string")
    kind, sep, rest = text.partition(":")
    if sep and not rest:
        raise refuse("nothing after ':'")
    if kind in ("subprocess", "native_code"):
        if rest:
            raise refuse(f"{kind} takes no argument")
        return Permission(kind)
    if kind == "network":
        if not rest:
            return Permission("network")
        host, _, port = rest.partition(":")
        if not host or (port and not port.isdigit()) or (port and not 0 < int(port) < 65536):
            raise refuse("expected network:HOST or network:HOST:PORT")
        return Permission("network", target=host.lower(), port=int(port) if port else None)
    if kind == "filesystem":
        mode, _, path = rest.partition(":")
        if mode not in ("read", "write") or not path:
            raise refuse("expected filesystem:read:PATH or filesystem:write:PATH")
        return Permission("filesystem", mode=mode, target=_normal_path(path))
    if kind == "env":
        if not rest:
            raise refuse("expected env:NAME")
        return Permission("env", target=rest)
    raise refuse(f"no such kind {kind!r}")


def _normal_path(path: str) -> str:
    """Absolute and normalised (``~`` expanded); symlinks are resolved by the enforcer."""
    return os.path.normpath(os.path.abspath(os.path.expanduser(path)))


def parse_all(values: Iterable[object], *, plugin: str) -> tuple[Permission, ...]:
    return tuple(parse(value, plugin=plugin) for value in values)


def grants_for(grants: Mapping[str, Iterable[object]], plugin: str) -> tuple[Permission, ...]:
    """What the config grants ``plugin``: its own entry plus the ``"*"`` entry."""
    own = grants.get(plugin, ())
    shared = grants.get("*", ())
    return parse_all([*shared, *own], plugin=plugin)


def missing(declared: Iterable[Permission], granted: Iterable[Permission]) -> list[Permission]:
    """Declared permissions that no grant covers."""
    held = list(granted)
    return [want for want in declared if not any(have.covers(want) for have in held)]


def check(plugin: str, declared: Iterable[Permission], granted: Iterable[Permission]) -> None:
    """Refuse (``permission_denied``) a plugin that declares more than it was granted."""
    lacking = missing(declared, granted)
    if lacking:
        raise PluginError(
            f"plugin {plugin!r} declares permission(s) it was not granted: "
            f"{', '.join(str(p) for p in lacking)}; grant them under security.grants.{plugin} "
            "in the plugin config",
            code="permission_denied",
            plugin=plugin,
        )
