"""PluginRegistry: records written in place, read safely from other threads."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from pipeline_ex.plugins.registry import PluginRecord, PluginRegistry, PluginStatus


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Threads switch every microsecond: a reader walking the records is interrupted by
    the writer many times per walk."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def test_readers_never_see_the_records_change_size_under_them(busy_switching: None) -> None:
    registry = PluginRegistry()
    for i in range(300):
        registry.put(PluginRecord(name=f"resident{i}", status=PluginStatus.ACTIVE, origin="t"))
    failures: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                registry.names()
                registry.names(PluginStatus.ACTIVE)
                registry.live()
                registry.with_capability("x")
                list(registry)
                registry.departed()
        except BaseException as exc:  # what this test is for
            failures.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(3000):
            registry.put(PluginRecord(name=f"p{i}", status=PluginStatus.LOADING, origin="t"))
            registry.put(PluginRecord(name=f"p{i}", status=PluginStatus.ACTIVE, origin="t"))
            if i % 3:
                registry.remove(f"p{i}")
    finally:
        done.set()
        reader.join()
    assert failures == []
    assert len(registry) == 300 + 1000
    assert [c.status for c in registry.history("p1")] == ["loading", "active", "unloaded"]
