"""Helpers for testing pipeline-ex plugins (the fixtures are in ``pytest_plugin``).

With pipeline-ex installed, pytest offers the fixtures ``pipeline_ex_runtime``,
``pipeline_ex_harness``, ``pipeline_ex_load_plugin``, ``pipeline_ex_scripted_provider``,
``pipeline_ex_step_context``, ``pipeline_ex_run_step`` and ``pipeline_ex_run_workflow``
without any import; the same helpers are usable without pytest through ``PluginHarness``::

    from pipeline_ex.testing import PluginHarness, fresh_runtime

    with fresh_runtime() as runtime:
        harness = PluginHarness(runtime, Path("scratch"))
        harness.load_plugin(MyPlugin)
        print(harness.run_step({"type": "my_step", "text": "hi"}))
"""

from pipeline_ex.testing.harness import DEFAULT_STEP_NAME, PluginHarness, fresh_runtime
from pipeline_ex.testing.scripted import Reply, ScriptedProvider, ScriptExhaustedError

__all__ = [
    "DEFAULT_STEP_NAME",
    "PluginHarness",
    "Reply",
    "ScriptExhaustedError",
    "ScriptedProvider",
    "fresh_runtime",
]
