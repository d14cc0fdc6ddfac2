"""Kernel enforcement for the ``sandbox`` tier: Landlock and seccomp, applied in the child.

Runs in the child after its limits and before the audit hook and the plugin's import, so
every line of plugin code runs under it.  Two small ctypes layers, no binding package:

* **Landlock** (syscalls 444-446): file access is limited to reading (and importing from)
  the interpreter, ``sys.path`` and the plugin's directory, plus what ``filesystem:read``
  and ``filesystem:write`` grants name; from ABI 4 on, TCP ``connect``/``bind`` only to the
  ports of ``network:HOST:PORT`` grants (Landlock knows ports, not hosts; the host part is
  the audit hook's) or to any port with a plain ``network`` grant; from ABI 6 on, signals
  and abstract UNIX sockets are scoped to the sandbox.
* **seccomp** through ``libseccomp.so.2`` (loaded by its soname: ``pyseccomp`` costs about
  45 ms at import because ``ctypes.util.find_library`` runs ``ldconfig``): process creation
  (``fork``, ``vfork``, ``execve``, ``clone`` without ``CLONE_THREAD``, ``clone3``), new
  ``AF_INET``/``AF_INET6`` sockets without a network grant, packet and netlink sockets,
  ``io_uring``, and ptrace-like and namespace calls fail with ``EPERM``.

``layers_available()`` tells what this kernel offers; ``apply`` raises
``SandboxUnavailable`` naming the missing layers unless ``degrade`` is set, and returns the
layers in force.  Like ``wire.py`` this module imports nothing from the host.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys

#: The child imports this module: ``typing`` (~5 ms at start-up) is for the type checker only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any

_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH, _RULE_NET_PORT = 1, 2
_PR_SET_NO_NEW_PRIVS = 38

_FS_EXECUTE = 1 << 0
_FS_WRITE_FILE = 1 << 1
_FS_READ_FILE = 1 << 2
_FS_READ_DIR = 1 << 3
_FS_REMOVE_DIR = 1 << 4
_FS_REMOVE_FILE = 1 << 5
_FS_MAKE_CHAR = 1 << 6
_FS_MAKE_DIR = 1 << 7
_FS_MAKE_REG = 1 << 8
_FS_MAKE_SOCK = 1 << 9
_FS_MAKE_FIFO = 1 << 10
_FS_MAKE_BLOCK = 1 << 11
_FS_MAKE_SYM = 1 << 12
_FS_REFER = 1 << 13  # ABI 2
_FS_TRUNCATE = 1 << 14  # ABI 3
_FS_IOCTL_DEV = 1 << 15  # ABI 5
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6

_FILE_RIGHTS = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV
_READ = _FS_READ_FILE | _FS_READ_DIR
_WRITE = (
    _READ
    | _FS_WRITE_FILE
    | _FS_REMOVE_DIR
    | _FS_REMOVE_FILE
    | _FS_MAKE_DIR
    | _FS_MAKE_REG
    | _FS_MAKE_SYM
    | _FS_TRUNCATE
    | _FS_REFER
)

#: Layer names as the plugin record lists them.
LANDLOCK_FS, LANDLOCK_NET, LANDLOCK_SCOPE, SECCOMP = (
    "landlock_fs",
    "landlock_net",
    "landlock_scope",
    "seccomp",
)
REQUIRED_LAYERS = (LANDLOCK_FS, LANDLOCK_NET, SECCOMP)


class SandboxUnavailable(Exception):
    """The kernel lacks a layer the sandbox needs (and degrading was not allowed)."""


class _RulesetAttr(ctypes.Structure):
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


class _NetPortAttr(ctypes.Structure):
    _fields_ = (("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64))


class _ArgCmp(ctypes.Structure):
    _fields_ = (
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    )


_libc: Any = None


def _c() -> Any:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when Landlock is absent or disabled."""
    libc = _c()
    version = libc.syscall(
        ctypes.c_long(_SYS_CREATE_RULESET),
        None,
        ctypes.c_size_t(0),
        ctypes.c_uint32(_CREATE_RULESET_VERSION),
    )
    return max(0, int(version))


def _libseccomp() -> Any:
    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError:
        return None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = (ctypes.c_uint32,)
    lib.seccomp_rule_add_array.argtypes = (
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(_ArgCmp),
    )
    lib.seccomp_syscall_resolve_name.argtypes = (ctypes.c_char_p,)
    lib.seccomp_load.argtypes = (ctypes.c_void_p,)
    lib.seccomp_release.argtypes = (ctypes.c_void_p,)
    return lib


def layers_available() -> list[str]:
    """The layers this kernel and machine can put in force."""
    layers = []
    abi = landlock_abi()
    if abi >= 1:
        layers.append(LANDLOCK_FS)
    if abi >= 4:
        layers.append(LANDLOCK_NET)
    if abi >= 6:
        layers.append(LANDLOCK_SCOPE)
    if _libseccomp() is not None:
        layers.append(SECCOMP)
    return layers


def _grant(grants: Iterable[Sequence[Any]], kind: str) -> list[Sequence[Any]]:
    return [g for g in grants if g[0] == kind]


def _read_roots(extra: Iterable[str]) -> list[str]:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, *extra}
    roots.update(p for p in sys.path if p)
    return sorted(os.path.realpath(r) for r in roots if r and os.path.exists(r))


def _landlock(abi: int, grants: Sequence[Sequence[Any]], read_roots: Iterable[str]) -> list[str]:
    libc = _c()
    fs = _FS_EXECUTE | _WRITE | _FS_MAKE_CHAR | _FS_MAKE_SOCK | _FS_MAKE_FIFO | _FS_MAKE_BLOCK
    if abi < 2:
        fs &= ~_FS_REFER
    if abi < 3:
        fs &= ~_FS_TRUNCATE
    if abi >= 5:
        fs |= _FS_IOCTL_DEV
    network = _grant(grants, "network")
    # a plain ``network`` grant, or a host without a port: Landlock cannot narrow it
    unrestricted = any(g[3] is None for g in network)
    net = 0 if abi < 4 or unrestricted else (_NET_BIND_TCP | _NET_CONNECT_TCP)
    scoped = (_SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL) if abi >= 6 else 0
    attr = _RulesetAttr(fs, net, scoped)
    size = 8 if abi < 4 else (16 if abi < 6 else 24)
    ruleset = libc.syscall(
        ctypes.c_long(_SYS_CREATE_RULESET), ctypes.byref(attr), ctypes.c_size_t(size), 0
    )
    if ruleset < 0:
        raise SandboxUnavailable(f"landlock_create_ruleset: {os.strerror(ctypes.get_errno())}")
    try:
        subprocess = bool(_grant(grants, "subprocess"))
        rules: list[tuple[str, int]] = [(root, _READ | _FS_EXECUTE) for root in read_roots]
        if subprocess:
            rules += [(p, _READ | _FS_EXECUTE) for p in ("/usr", "/bin", "/lib", "/lib64")]
        for _, mode, target, _ in _grant(grants, "filesystem"):
            rules.append((str(target), _WRITE if mode == "write" else _READ))
        rules.append(("/dev/null", _FS_READ_FILE | _FS_WRITE_FILE))
        for path, rights in rules:
            _add_path_rule(libc, ruleset, path, rights & fs)
        for port in sorted({int(g[3]) for g in network}) if net else []:
            net_attr = _NetPortAttr(_NET_CONNECT_TCP | _NET_BIND_TCP, port)
            if libc.syscall(
                ctypes.c_long(_SYS_ADD_RULE), ruleset, _RULE_NET_PORT, ctypes.byref(net_attr), 0
            ):
                raise SandboxUnavailable(
                    f"landlock_add_rule(port {port}): {os.strerror(ctypes.get_errno())}"
                )
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0):
            raise SandboxUnavailable(f"PR_SET_NO_NEW_PRIVS: {os.strerror(ctypes.get_errno())}")
        if libc.syscall(ctypes.c_long(_SYS_RESTRICT_SELF), ruleset, 0):
            raise SandboxUnavailable(f"landlock_restrict_self: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(ruleset)
    layers = [LANDLOCK_FS]
    if net:
        layers.append(LANDLOCK_NET)
    if scoped:
        layers.append(LANDLOCK_SCOPE)
    return layers


def _add_path_rule(libc: Any, ruleset: int, path: str, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # a granted path that does not exist grants nothing
    try:
        if not os.path.isdir(path):
            rights &= _FILE_RIGHTS
        attr = _PathBeneathAttr(rights, fd)
        if libc.syscall(
            ctypes.c_long(_SYS_ADD_RULE), ruleset, _RULE_PATH_BENEATH, ctypes.byref(attr), 0
        ):
            raise SandboxUnavailable(
                f"landlock_add_rule({path!r}): {os.strerror(ctypes.get_errno())}"
            )
    finally:
        os.close(fd)


_SCMP_ACT_ALLOW = 0x7FFF0000
_SCMP_CMP_EQ, _SCMP_CMP_MASKED_EQ = 4, 7
_CLONE_THREAD = 0x00010000
_AF_INET, _AF_INET6, _AF_NETLINK, _AF_PACKET = 2, 10, 16, 17

#: Always refused: tracing, other processes' memory, namespaces, kernel-level escapes.
_ALWAYS_DENIED = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "keyctl",
    "add_key",
    "request_key",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
)
_PROCESS_CREATION = ("fork", "vfork", "execve", "execveat")


def _errno_action(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


def _seccomp(grants: Sequence[Sequence[Any]]) -> None:
    lib = _libseccomp()
    if lib is None:
        raise SandboxUnavailable("libseccomp.so.2 cannot be loaded")
    ctx = lib.seccomp_init(_SCMP_ACT_ALLOW)
    if not ctx:
        raise SandboxUnavailable("seccomp_init failed")
    eperm = _errno_action(errno.EPERM)

    def rule(name: str, action: int, *compares: tuple[int, int, int, int]) -> None:
        number = lib.seccomp_syscall_resolve_name(name.encode())
        if number < 0:
            return  # not a syscall on this architecture
        array = (_ArgCmp * max(1, len(compares)))(*[_ArgCmp(*c) for c in compares])
        result = lib.seccomp_rule_add_array(ctx, action, number, len(compares), array)
        if result < 0:
            raise SandboxUnavailable(f"seccomp rule for {name}: {os.strerror(-result)}")

    try:
        for name in _ALWAYS_DENIED:
            rule(name, eperm)
        if not _grant(grants, "subprocess"):
            for name in _PROCESS_CREATION:
                rule(name, eperm)
            # threads (CLONE_THREAD) stay allowed; clone3 says ENOSYS so that glibc falls
            # back to clone, whose flags a filter can read
            rule("clone", eperm, (0, _SCMP_CMP_MASKED_EQ, _CLONE_THREAD, 0))
            rule("clone3", _errno_action(errno.ENOSYS))
        families = [_AF_NETLINK, _AF_PACKET]
        if not _grant(grants, "network"):
            families += [_AF_INET, _AF_INET6]
        for family in families:
            rule("socket", eperm, (0, _SCMP_CMP_EQ, family, 0))
        result = lib.seccomp_load(ctx)
        if result < 0:
            raise SandboxUnavailable(f"seccomp_load: {os.strerror(-result)}")
    finally:
        lib.seccomp_release(ctx)


def apply(
    grants: Sequence[Sequence[Any]], *, read_roots: Iterable[str] = (), degrade: bool = False
) -> list[str]:
    """Put the layers in force on this process (the child); the layers now in force."""
    available = layers_available()
    missing = [layer for layer in REQUIRED_LAYERS if layer not in available]
    if missing and not degrade:
        raise SandboxUnavailable(
            f"this kernel lacks sandbox layer(s) {', '.join(missing)} (Landlock ABI "
            f"{landlock_abi()}); set sandbox_degrade: allow to run with "
            f"{', '.join(available) or 'none'}"
        )
    layers: list[str] = []
    if LANDLOCK_FS in available:
        layers += _landlock(landlock_abi(), grants, _read_roots(read_roots))
    if SECCOMP in available:
        _seccomp(grants)
        layers.append(SECCOMP)
    return layers
