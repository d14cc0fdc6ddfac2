"""Helpers for the engine tests: build workflow mappings and files in a few words."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from wf_helpers import RecordingProvider

from pipeline_ex import Runtime


def make_workflow(*steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """``{"workflow": {"name": "test", "steps": [...], **extra}}``."""
    return {"workflow": {"name": "test", "steps": list(steps), **extra}}


@pytest.fixture
def wf() -> Callable[..., dict[str, Any]]:
    return make_workflow


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """Write text to ``tmp_path/NAME`` (default ``workflow.yaml``) and return the path."""

    def _write(text: str, name: str = "workflow.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return _write


@pytest.fixture
def run(runtime: Runtime, tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """``runtime.run`` with ``output_dir`` inside ``tmp_path``."""

    def _run(source: Any, **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("output_dir", tmp_path / "outputs")
        return runtime.run(source, **kwargs)

    return _run


@pytest.fixture
def fresh_runtime() -> Iterator[Runtime]:
    rt = Runtime()
    try:
        yield rt
    finally:
        rt.close()


@pytest.fixture
def recorders(runtime: Runtime) -> dict[str, RecordingProvider]:
    """Override ``mock_claude`` and ``mock_gemini`` in ``runtime`` with recording providers."""
    recs = {"claude": RecordingProvider("claude"), "gemini": RecordingProvider("gemini")}
    runtime.providers.register_providers(
        [
            ("mock_claude", recs["claude"], ["text_generation", "claude"]),
            ("mock_gemini", recs["gemini"], ["text_generation", "gemini"]),
        ],
        "test-recorders",
        replace=frozenset({"mock_claude", "mock_gemini"}),
    )
    return recs
