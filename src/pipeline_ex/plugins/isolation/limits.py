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
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Limits:
    """The entry's ``limits: {memory_mb, cpu_s, open_files, call_timeout_s}``; ``None``
    leaves that limit as the host has it."""

    memory_mb: int | None = 512
    cpu_s: int | None = 60
    open_files: int | None = 64
    call_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        for name in ("memory_mb", "cpu_s", "open_files"):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value <= 0
            ):
                raise ValueError(f"limits.{name} must be a positive integer, got {value!r}")
        timeout = self.call_timeout_s
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValueError(f"limits.call_timeout_s must be a positive number, got {timeout!r}")

    def as_wire(self) -> dict[str, Any]:
        return asdict(self)


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
