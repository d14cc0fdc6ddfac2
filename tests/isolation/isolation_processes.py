"""Which child processes the test process has (imported by name: conftest modules of
several test folders would shadow each other)."""

from __future__ import annotations

from pathlib import Path


def child_pids() -> set[int]:
    """Live (non-zombie) children of this test process, from /proc."""
    pids: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        try:
            pids.update(int(p) for p in (task / "children").read_text().split())
        except OSError:
            continue
    return pids
