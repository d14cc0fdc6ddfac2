"""Fixtures for the isolation tests: plugins written to a temporary directory, a
well-behaved isolated plugin that must keep serving, and a check that no child is left."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from isolation_processes import child_pids

from pipeline_ex.plugins.isolation import IsolationSpec, Limits, ProcessPlugin, RestartPolicy


@pytest.fixture
def write_plugin(tmp_path: Path) -> Callable[..., Path]:
    """A plugin directory (plugin.yaml + plugin.py) holding ``source``."""
    count = [0]

    def write(source: str, name: str = "hostile") -> Path:
        count[0] += 1
        directory = tmp_path / f"{name}{count[0]}"
        directory.mkdir()
        (directory / "plugin.yaml").write_text(
            f"name: {name}\nversion: 1.0.0\nmodule: plugin\n", encoding="utf-8"
        )
        (directory / "plugin.py").write_text(textwrap.dedent(source), encoding="utf-8")
        return directory

    return write


@pytest.fixture
def start() -> Iterator[Callable[..., ProcessPlugin]]:
    """Start isolated plugins; every one is closed after the test, and no child of this
    process may outlive that."""
    started: list[ProcessPlugin] = []
    before = child_pids()

    def launch(
        directory: Path | None = None,
        *,
        reference: str | None = None,
        name: str = "hostile",
        timeout: float = 5.0,
        memory_mb: int | None = 512,
        cpu_s: int | None = 60,
        open_files: int | None = 64,
        restart: RestartPolicy | None = None,
        on_failed: Callable[[Any], None] | None = None,
        **spec: Any,
    ) -> ProcessPlugin:
        isolation = IsolationSpec(
            plugin=name,
            reference=reference,
            directory=directory,
            limits=Limits(
                memory_mb=memory_mb, cpu_s=cpu_s, open_files=open_files, call_timeout_s=timeout
            ),
            restart=restart or RestartPolicy(max_restarts=3, window_s=60.0),
            start_timeout_s=spec.pop("start_timeout_s", 20.0),
            **spec,
        )
        plugin = ProcessPlugin.start(isolation, on_failed=on_failed)
        started.append(plugin)
        return plugin

    yield launch
    pids = [p.pid for p in started]
    for plugin in started:
        plugin.close()
    leftover = (child_pids() - before) & {p for p in pids if p is not None}
    assert not leftover, f"children left after close: {leftover}"
    for pid in pids:
        if pid is not None:
            assert not Path(f"/proc/{pid}").exists(), f"child {pid} not reaped"


@pytest.fixture(scope="module")
def bystander() -> Iterator[ProcessPlugin]:
    """The example text_tools plugin, isolated: it must keep serving whatever the hostile
    plugins of a test do."""
    plugin = ProcessPlugin.start(
        IsolationSpec(plugin="text_tools", reference="pipeline_ex_text_tools:TextToolsPlugin")
    )
    state = plugin.init({"upper": True})
    plugin.get_providers(state)
    yield plugin
    plugin.close()


@pytest.fixture
def still_serving(bystander: ProcessPlugin) -> Callable[[], None]:
    def check() -> None:
        ((_name, provider, _caps),) = bystander.get_providers(bystander._state)
        assert provider.query("still here", {})["text"] == "STILL HERE"
        assert bystander.status == "running"
        assert os.getpid() > 0

    return check
