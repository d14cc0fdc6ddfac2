"""Loading dspy_plugin: names, components, config, the seed's file, DSPy missing."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline_ex import Runtime
from pipeline_ex.cli import app

SEED_CONFIG = """\
plugins:
  dspy_plugin:
    module: Pipeline.Plugins.DSPyPlugin
    enabled: true
    config:
      optimization_enabled: true
      evaluation_mode: "bootstrap_few_shot"
      training_data_path: "training_data/"
      cache_enabled: true
      optimization_frequency: "daily"
    dependencies:
      - enhanced_schema_validator
      - json_yaml_bridge
  enhanced_schema_validator:
    module: Pipeline.Plugins.EnhancedSchemaValidator
    enabled: true
    config: {}
  json_yaml_bridge:
    module: Pipeline.Plugins.JsonYamlBridge
    enabled: true
"""


def test_seed_plugin_config_passes_plugins_check_with_training_data_missing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "plugin_config.yaml"
    config.write_text(SEED_CONFIG, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="pipeline_ex.contrib.dspy"):
        result = CliRunner().invoke(app, ["plugins", "check", str(config)])
    assert result.exit_code == 0, result.output
    assert "dspy_plugin" in result.stdout and "active" in result.stdout
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("training_data" in m and "does not exist" in m for m in warnings), warnings


def test_seed_components_are_registered_with_their_capabilities(
    plugin_config: Callable[..., Path], runtimes: Callable[..., Runtime]
) -> None:
    runtime = runtimes(plugin_config())
    assert runtime.load_report.failed == {}
    record = runtime.plugins.registry.get("dspy_plugin")
    assert set(record.components.step_types) == {"dspy_claude", "dspy_gemini", "dspy_chain"}
    assert runtime.providers.capabilities("dspy_claude") == {
        "dspy_optimization",
        "claude_compatible",
    }
    assert runtime.providers.capabilities("dspy_gemini") == {
        "dspy_optimization",
        "gemini_compatible",
    }
    assert (
        runtime.providers.select_name(["dspy_optimization", "gemini_compatible"]) == "dspy_gemini"
    )
    assert record.components.schema_extensions == ("dspy",)
    step_schema = runtime.configuration.compiled_schema()["$defs"]["step"]["properties"]
    assert {"dspy_signature", "dspy_config"} <= set(step_schema)
    assert set(record.dependencies) == {"enhanced_schema_validator", "json_yaml_bridge"}


def test_optimization_disabled_registers_no_dspy_step_types(
    plugin_config: Callable[..., Path], runtimes: Callable[..., Runtime]
) -> None:
    runtime = runtimes(plugin_config(optimization_enabled=False))
    assert runtime.load_report.failed == {}
    assert not {"dspy_claude", "dspy_gemini", "dspy_chain"} & set(runtime.steps)
    assert "dspy_claude" in runtime.providers  # providers and schema stay


def test_disabled_plugin_registers_nothing(
    tmp_path: Path, runtimes: Callable[..., Runtime]
) -> None:
    config = tmp_path / "plugin_config.yaml"
    config.write_text(SEED_CONFIG.replace("enabled: true", "enabled: false", 1), encoding="utf-8")
    runtime = runtimes(config)
    record = runtime.plugins.registry.get("dspy_plugin")  # listed as disabled, never loaded
    assert record is not None and record.status == "disabled" and record.adapter is None
    assert not {"dspy_claude", "dspy_gemini", "dspy_chain"} & set(runtime.steps)
    assert "dspy_claude" not in runtime.providers


def test_dspy_not_installed_fails_init_naming_the_extra(
    plugin_config: Callable[..., Path],
    runtimes: Callable[..., Runtime],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "dspy", None)  # "import dspy" raises ImportError
    runtime = runtimes(plugin_config())
    error = runtime.load_report.failed["dspy_plugin"]
    assert error.code == "init_failed"
    assert "pip install 'pipeline-ex[dspy]'" in error.message
    # nothing else is affected
    assert "claude" in runtime.steps and "mock_claude" in runtime.providers
    assert runtime.run(
        {
            "workflow": {
                "name": "w",
                "steps": [
                    {"name": "s", "type": "claude", "prompt": [{"type": "static", "content": "hi"}]}
                ],
            }
        }
    )["s"]["success"]


def test_importing_the_plugin_package_does_not_import_dspy() -> None:
    code = textwrap.dedent(
        """
        import sys
        import pipeline_ex.contrib.dspy
        from pipeline_ex import Runtime
        Runtime().close()
        print("dspy" in sys.modules, "litellm" in sys.modules)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"evaluation_mode": "genetic"}, "config.evaluation_mode: 'genetic' is not one of"),
        ({"optimization_frequency": "hourly"}, "config.optimization_frequency: 'hourly'"),
        ({"cache_enabled": "yes"}, "config.cache_enabled: 'yes' is not of type 'boolean'"),
        ({"optimisation_enabled": True}, "'optimisation_enabled' was unexpected"),
        ({"adaptive_threshold": 2}, "config.adaptive_threshold: 2 is greater than the maximum"),
    ],
)
def test_bad_plugin_config_is_refused_at_load_naming_the_key_and_line(
    plugin_config: Callable[..., Path],
    runtimes: Callable[..., Runtime],
    config: dict[str, object],
    expected: str,
) -> None:
    path = plugin_config(**config)
    runtime = runtimes(path)
    error = runtime.load_report.failed["dspy_plugin"]
    assert error.code == "validation_failed"
    assert expected in error.message
    assert f"{path}:" in error.message  # file and line of the config entry


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"evaluation_mode": "genetic"}, "'evaluation_mode' must be one of"),
        ({"optimization_frequency": "hourly"}, "'optimization_frequency' must be one of"),
        ({"cache_enabled": "yes"}, "'cache_enabled' must be true or false"),
        ({"optimisation_enabled": True}, "unknown key(s) 'optimisation_enabled'"),
        ({"adaptive_threshold": 2}, "'adaptive_threshold' must be a number from 0 to 1"),
        ({"num_threads": True}, "'num_threads' must be an integer from 1 to 64"),
    ],
)
def test_parse_settings_refuses_what_the_config_schema_refuses(
    config: dict[str, object], expected: str
) -> None:
    from pipeline_ex.contrib.dspy.settings import DSPyConfigError, parse_settings

    with pytest.raises(DSPyConfigError) as caught:
        parse_settings(config)
    assert caught.value.code == "dspy_config_invalid" and expected in caught.value.message


def test_training_data_path_is_relative_to_the_config_file(
    plugin_config: Callable[..., Path], runtimes: Callable[..., Runtime]
) -> None:
    config = plugin_config()
    runtime = runtimes(config)
    state = runtime.plugins.registry.get("dspy_plugin").state
    assert state.settings.training_data_path == config.parent / "training_data/"
    assert state.settings.cache_dir == Path.cwd() / ".pipeline_ex" / "dspy_cache"
    assert len(state.training.current().records) == 6


def test_broken_training_file_fails_the_load_naming_file_and_line(
    plugin_config: Callable[..., Path], runtimes: Callable[..., Runtime]
) -> None:
    runtime = runtimes(plugin_config(training='{"question": "a", "answer": "b"}\n{oops\n'))
    error = runtime.load_report.failed["dspy_plugin"]
    assert error.code == "init_failed"
    assert "capitals.jsonl:2: invalid JSON" in error.message
