"""Fixtures for the server tests: a Runtime with the test plugins (``server_plugins``) and
a starter for the real server on a thread (``server_harness.live_server``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the 'serve' extra is not installed")
pytest.importorskip("uvicorn", reason="the 'serve' extra is not installed")

from server_harness import live_server

from pipeline_ex import Runtime
from pipeline_ex.server.settings import ServerSettings


@pytest.fixture
def flag_file(tmp_path: Path) -> Path:
    """Create this file to make the ``flippy`` plugin's health check fail."""
    return tmp_path / "flippy.sick"


@pytest.fixture
def server_runtime(flag_file: Path) -> Iterator[Runtime]:
    """Built-ins, ``flippy`` (sleep, block and fail steps; health from ``flag_file``) and
    ``flippy_fan``, which depends on it."""
    runtime = Runtime(
        {
            "plugins": {
                "flippy": {
                    "module": "server_plugins:Flippy",
                    "config": {"flag_file": str(flag_file)},
                },
                "flippy_fan": {
                    "module": "server_plugins:Recorder",
                    "config": {"name": "flippy_fan", "dependencies": ["flippy"]},
                    "dependencies": ["flippy"],
                },
            }
        }
    )
    assert runtime.load_report.ok, runtime.load_report.failed
    try:
        yield runtime
    finally:
        runtime.close()


@pytest.fixture
def serve_runtime(server_runtime: Runtime) -> Callable[..., Any]:
    """``with serve_runtime(max_concurrent_runs=1) as live: ...``"""

    def start(**options: Any) -> Any:
        return live_server(server_runtime, ServerSettings(**options))

    return start
