"""Fixtures for plugin tests: a bare manager over fresh registries, importable modules."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipeline_ex.configuration import ConfigurationSystem
from pipeline_ex.plugins import PluginManager
from pipeline_ex.plugins.guard import Guard
from pipeline_ex.registries import ProviderRegistry, StepRegistry


@pytest.fixture
def manager() -> Iterator[PluginManager]:
    mgr = PluginManager(
        StepRegistry(), ProviderRegistry(), ConfigurationSystem(), guard=Guard(timeout=2.0)
    )
    try:
        yield mgr
    finally:
        mgr.shutdown()


@pytest.fixture
def write_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], Path]:
    """Write ``name.py`` into an importable temporary folder; modules are forgotten after."""
    root = tmp_path / "modules"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    written: list[str] = []

    def write(name: str, source: str) -> Path:
        path = root / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        # same size and mtime second as the last version: make sure no stale .pyc is used
        for cached in (root / "__pycache__").glob(f"{name}.*.pyc"):
            cached.unlink()
        written.append(name)
        return path

    yield write  # type: ignore[misc]
    for module in written:
        sys.modules.pop(module, None)
