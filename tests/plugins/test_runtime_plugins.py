"""Everything is a plugin: the Runtime loads built-ins and configured plugins alike."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from plugin_samples import EchoStep, make_plugin

from pipeline_ex import Runtime
from pipeline_ex.builtin import BUILTIN_PLUGINS
from pipeline_ex.plugins import PluginStatus
from waiting import wait_until

WORKFLOW = {
    "workflow": {
        "name": "w",
        "steps": [
            {"name": "a", "type": "claude", "prompt": [{"type": "static", "content": "hi"}]},
            {"name": "b", "type": "test_echo", "value": "{{steps.a.text}}"},
        ],
    }
}


def test_builtins_are_plugins_loaded_through_the_manager(runtime: Runtime) -> None:
    records = {r.name: r for r in runtime.plugins.list_plugins()}
    assert set(BUILTIN_PLUGINS) <= set(records)
    assert all(records[n].status == PluginStatus.ACTIVE for n in BUILTIN_PLUGINS), {
        n: records[n].last_error for n in BUILTIN_PLUGINS
    }
    assert runtime.steps.owner("claude") == "core_steps"
    assert runtime.providers.owner("mock_claude") == "mock_providers"
    assert runtime.steps.owner("format_convert") == "json_yaml_bridge"
    assert runtime.configuration.owner("output_schema") == "enhanced_schema_validator"
    # the core knows no step type by name: unloading the plugin removes the types
    runtime.plugins.unload_plugin("core_steps")
    assert "claude" not in runtime.steps and "for_loop" not in runtime.steps


def test_seed_style_config_disables_and_configures_builtins(tmp_path: Path) -> None:
    config = tmp_path / "plugin_config.yaml"
    config.write_text(
        "plugins:\n"
        "  json_yaml_bridge:\n    module: Pipeline.Plugins.JsonYamlBridge\n    enabled: false\n"
    )
    with Runtime(plugin_config=config) as rt:
        # never loaded: recorded as disabled, nothing registered
        assert rt.plugins.registry.names(PluginStatus.DISABLED) == ["json_yaml_bridge"]
        assert "json_yaml_bridge" not in [r.name for r in rt.plugins.registry.live()]
        assert "format_convert" not in rt.steps
        assert rt.run(WORKFLOW)["b"] == "Mock response for: hi"


def test_plugins_from_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "plugin_config.yaml"
    config.write_text("plugins:\n  broken:\n    module: not_a_module_anywhere:X\n")
    monkeypatch.setenv("PIPELINE_EX_PLUGINS", str(config))
    with Runtime() as rt:
        assert rt.load_report.failed["broken"].code == "validation_failed"
        # a broken plugin never takes the host down
        assert rt.run(WORKFLOW)["a"]["success"] is True


def test_dispatch_goes_through_the_guard(runtime: Runtime) -> None:
    runtime.run(WORKFLOW)
    snapshot = runtime.monitoring.plugin("core_steps")
    assert snapshot is not None
    calls = {(c.kind, c.name): c.calls for c in snapshot.components}
    assert calls[("step_type", "claude")] == 1
    assert calls[("step_type", "test_echo")] == 1


@pytest.mark.slow  # a concurrency soak: threads churn plugins
def test_loads_and_unloads_while_workflows_run(runtime: Runtime) -> None:
    errors: list[BaseException] = []
    stop = threading.Event()

    def run_workflows() -> None:
        try:
            while not stop.is_set():
                results = runtime.run(WORKFLOW)
                assert results["b"] == "Mock response for: hi"
        except BaseException as exc:
            errors.append(exc)

    def churn(index: int) -> None:
        try:
            for round_ in range(10):
                name = f"churn_{index}"
                runtime.plugins.load_plugin(
                    name,
                    make_plugin(
                        name,
                        steps={f"{name}_step": EchoStep},
                        extensions={
                            name: {
                                "properties": {
                                    "workflow": {"properties": {f"x_{index}": {"type": "integer"}}}
                                }
                            }
                        },
                    ),
                )
                assert f"{name}_step" in runtime.steps
                runtime.plugins.unload_plugin(name)
                assert f"{name}_step" not in runtime.steps, round_
        except BaseException as exc:
            errors.append(exc)

    runners = [threading.Thread(target=run_workflows) for _ in range(3)]
    churners = [threading.Thread(target=churn, args=(i,)) for i in range(3)]
    for t in runners + churners:
        t.start()
    for t in churners:
        t.join()
    stop.set()
    for t in runners:
        t.join()
    assert errors == []
    leftovers: list[Any] = [n for n in runtime.steps if n.startswith("churn_")]
    assert leftovers == [] and not [n for n in runtime.configuration if n.startswith("churn_")]
    assert sorted(runtime.plugins.registry.names()) == sorted(BUILTIN_PLUGINS)


def _idle_workers() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("plugin:"))


def test_closed_runtimes_leave_no_helper_threads() -> None:
    """Closed but still referenced (as callers and tests keep them): their guards' pooled
    helper threads must exit at ``close``, not when the garbage collector gets to them."""
    baseline = _idle_workers()
    kept = []
    for _ in range(5):
        runtime = Runtime()
        assert runtime.load_report.ok, runtime.load_report.failed
        runtime.plugins.health("core_steps")  # a call on a pooled helper thread
        runtime.close()
        kept.append(runtime)
    wait_until(lambda: _idle_workers() <= baseline, f"back to {baseline} helper threads")
    # a closed Runtime's guard still runs a late call, on a helper that does not stay
    runtime.plugins.guard.call("late", "probe", lambda: 42)
    wait_until(lambda: _idle_workers() <= baseline, "the late call's helper exited")
