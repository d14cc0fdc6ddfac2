"""pytest fixtures for plugin authors, registered as the ``pipeline_ex`` pytest plugin.

pytest loads this module in every session of an environment where pipeline-ex is installed
(entry point group ``pytest11``).  The fixtures import what they use when first requested,
so the fixtures cost nothing until used beyond importing the ``pipeline_ex`` package
itself (no provider SDK, no DSPy: a project's ``conftest`` can still set their environment
variables first).

Every fixture name starts with ``pipeline_ex_`` so that none hides a project's own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pipeline_ex.plugins.registry import PluginRecord
    from pipeline_ex.runtime import Runtime
    from pipeline_ex.testing.harness import PluginHarness
    from pipeline_ex.testing.scripted import ScriptedProvider
    from pipeline_ex.workflow.context import ExecutionContext


@pytest.fixture
def pipeline_ex_runtime() -> Iterator[Runtime]:
    """A fresh Runtime: built-in plugins only, mock mode, closed after the test."""
    from pipeline_ex.testing.harness import fresh_runtime

    runtime = fresh_runtime()
    try:
        yield runtime
    finally:
        runtime.close()


@pytest.fixture
def pipeline_ex_harness(pipeline_ex_runtime: Runtime, tmp_path: Path) -> PluginHarness:
    """``PluginHarness`` over ``pipeline_ex_runtime``, with ``tmp_path`` as the workflow
    folder (``file`` prompt parts) and ``tmp_path/outputs`` as the output folder."""
    from pipeline_ex.testing.harness import PluginHarness

    return PluginHarness(pipeline_ex_runtime, tmp_path)


@pytest.fixture
def pipeline_ex_load_plugin(pipeline_ex_harness: PluginHarness) -> Callable[..., PluginRecord]:
    """``load(plugin, config=None, *, name=None)``: load the plugin under test."""
    return pipeline_ex_harness.load_plugin


@pytest.fixture
def pipeline_ex_scripted_provider(
    pipeline_ex_harness: PluginHarness,
) -> Callable[..., ScriptedProvider]:
    """``scripted(replies, *, name="scripted", capabilities=("text_generation",),
    priority=0)``: register a provider that answers from ``replies``."""
    return pipeline_ex_harness.scripted_provider


@pytest.fixture
def pipeline_ex_step_context(
    pipeline_ex_harness: PluginHarness,
) -> Callable[..., ExecutionContext]:
    """``context(*, results=, variables=, inputs=, workflow=, loop=, mode=)``: a real
    step context bound to ``pipeline_ex_runtime``."""
    return pipeline_ex_harness.step_context


@pytest.fixture
def pipeline_ex_run_step(pipeline_ex_harness: PluginHarness) -> Callable[..., Any]:
    """``run(step_mapping, context=None, **step_context_options) -> result``."""
    return pipeline_ex_harness.run_step


@pytest.fixture
def pipeline_ex_run_workflow(pipeline_ex_harness: PluginHarness) -> Callable[..., dict[str, Any]]:
    """``run(workflow_or_steps, *, inputs=None, mode=None) -> {step name: result}``."""
    return pipeline_ex_harness.run_workflow
