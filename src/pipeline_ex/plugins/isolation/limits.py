"""Resource limits of an isolated plugin's child, and how the child applies them.

``Limits`` is plain data the host sends in the bootstrap frame; ``apply`` runs in the child
before any plugin code is imported.  ``memory_mb`` caps the address space (``RLIMIT_AS``: a
Python allocation past it raises ``MemoryError``, which the child reports and then exits),
``cpu_s`` caps CPU seconds (``RLIMIT_CPU``: the kernel sends ``SIGXCPU``, then ``SIGKILL``),
``open_files`` caps descriptors (``RLIMIT_NOFILE``), and core dumps are off so a segfault
does not write a core file.  ``call_timeout_s`` is enforced by the host, per call.
"""

from __future__ import annotations

import resource

#: The child imports this module: ``typing`` and ``dataclasses`` (~10 ms together at
#: start-up) are left out, hence a hand-written value class.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_FIELDS = ("memory_mb", "cpu_s", "open_files", "call_timeout_s")


class Limits:
    """The entry's ``limits: {memory_mb, cpu_s, open_files, call_timeout_s}``; ``None``
    leaves that limit as the host has it.  Immutable, compared by value."""

    __slots__ = _FIELDS
    memory_mb: int | None
    cpu_s: int | None
    open_files: int | None
    call_timeout_s: float

    def __init__(
        self,
        memory_mb: int | None = 512,
        cpu_s: int | None = 60,
        open_files: int | None = 64,
        call_timeout_s: float = 10.0,
    ) -> None:
        for name, value in (("memory_mb", memory_mb), ("cpu_s", cpu_s), ("open_files", open_files)):
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value <= 0
            ):
                raise ValueError(f"limits.{name} must be a positive integer, got {value!r}")
        timeout = call_timeout_s
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValueError(f"limits.call_timeout_s must be a positive number, got {timeout!r}")
        object.__setattr__(self, "memory_mb", memory_mb)
        object.__setattr__(self, "cpu_s", cpu_s)
        object.__setattr__(self, "open_files", open_files)
        object.__setattr__(self, "call_timeout_s", call_timeout_s)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Limits is immutable; cannot set {name}")

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in _FIELDS)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Limits) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        inside = ", ".join(f"{name}={getattr(self, name)!r}" for name in _FIELDS)
        return f"Limits({inside})"

    def as_wire(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _FIELDS}


def _lower(which: int, soft: int, hard: int | None = None) -> None:
    """Lower a limit, never above what the child already has (raising would fail)."""
    _current_soft, current_hard = resource.getrlimit(which)
    if hard is None:
        hard = soft
    if current_hard != resource.RLIM_INFINITY:
        hard = min(hard, current_hard)
    resource.setrlimit(which, (min(soft, hard), hard))


def apply(limits: dict[str, Any]) -> None:
    """Apply the limits to this process (the child)."""
    _lower(resource.RLIMIT_CORE, 0)
    memory = limits.get("memory_mb")
    if memory:
        _lower(resource.RLIMIT_AS, int(memory) * 1024 * 1024)
    cpu = limits.get("cpu_s")
    if cpu:
        # soft: SIGXCPU; one second later the hard limit's SIGKILL ends a child that
        # catches SIGXCPU
        _lower(resource.RLIMIT_CPU, int(cpu), int(cpu) + 1)
    files = limits.get("open_files")
    if files:
        _lower(resource.RLIMIT_NOFILE, int(files))
