"""A plugin's ``config_schema``: the entry's config checked before init, with file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline_ex.plugins import PluginManager

STRICT = """
EVENTS = []

def init(config):
    EVENTS.append("init")
    return dict(config)

def get_metadata(state):
    return {
        "name": "strict",
        "version": "1.0.0",
        "api_version": 1,
        "config_schema": {
            "type": "object",
            "properties": {
                "volume": {"type": "integer", "minimum": 0},
                "mode": {"enum": ["quiet", "loud"]},
            },
            "additionalProperties": False,
        },
    }
"""

#: Metadata that needs the state: the schema is only known after init.
STATEFUL = """
EVENTS = []

def init(config):
    EVENTS.append("init")
    return {"ready": True}

def terminate(state):
    EVENTS.append("terminate")

def get_metadata(state):
    if state is None:
        raise RuntimeError("needs state")
    return {
        "name": "stateful",
        "version": "1.0.0",
        "config_schema": {"type": "object", "required": ["token"]},
    }

def get_step_types(state):
    return [("stateful_step", object())]
"""


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plugin_config.yaml"
    path.write_text(text)
    return path


def test_config_not_matching_config_schema_is_refused_before_init_with_file_and_line(
    tmp_path: Path, manager: PluginManager, write_module: Any
) -> None:
    write_module("strict_mod", STRICT)
    path = _config(
        tmp_path,
        "plugins:\n"
        "  strict:\n"
        "    module: strict_mod\n"
        "    config:\n"
        "      volume: loud\n"
        "      mode: screaming\n"
        "      colour: red\n",
    )
    report = manager.load_all(path)
    error = report.failed["strict"]
    assert error.code == "validation_failed"
    message = error.message
    assert message.startswith("plugin 'strict': config does not match the plugin's config_schema")
    assert f"{path}:5 at plugins.strict.config.volume: 'loud' is not of type 'integer'" in message
    assert f"{path}:6 at plugins.strict.config.mode: 'screaming' is not one of" in message
    assert f"{path}:4 at plugins.strict.config: Additional properties" in message
    assert "'colour' was unexpected" in message
    import strict_mod

    assert strict_mod.EVENTS == []  # init never ran
    assert "strict" not in [r.name for r in manager.registry.live()]


def test_config_matching_config_schema_loads(
    tmp_path: Path, manager: PluginManager, write_module: Any
) -> None:
    write_module("strict_mod", STRICT)
    path = _config(
        tmp_path, "plugins:\n  strict:\n    module: strict_mod\n    config: {volume: 3}\n"
    )
    assert manager.load_all(path).ok
    assert manager.get_plugin("strict").state == {"volume": 3}


def test_config_schema_checked_for_load_plugin_without_a_file(
    manager: PluginManager, write_module: Any
) -> None:
    write_module("strict_mod", STRICT)
    with pytest.raises(Exception) as info:
        manager.load_plugin("strict", "strict_mod", {"volume": -1})
    assert "<load_plugin config> at plugins.strict.config.volume: -1 is less than" in str(
        info.value
    )


def test_invalid_config_schema_is_validation_failed(
    manager: PluginManager, write_module: Any
) -> None:
    write_module(
        "bad_schema_mod",
        STRICT.replace('"name": "strict"', '"name": "bad_schema"').replace(
            '"type": "integer"', '"type": "whole number"'
        ),
    )
    report = manager.load_all({"plugins": {"bad_schema": {"module": "bad_schema_mod"}}})
    message = report.failed["bad_schema"].message
    assert report.failed["bad_schema"].code == "validation_failed"
    assert "metadata 'config_schema' is not a valid JSON Schema" in message
    assert "properties.volume.type" in message


def test_config_schema_of_metadata_that_needs_state_is_checked_right_after_init(
    tmp_path: Path, manager: PluginManager, write_module: Any
) -> None:
    write_module("stateful_mod", STATEFUL)
    path = _config(
        tmp_path, "plugins:\n  stateful:\n    module: stateful_mod\n    config: {other: 1}\n"
    )
    report = manager.load_all(path)
    error = report.failed["stateful"]
    assert error.code == "validation_failed"
    assert f"{path}:4 at plugins.stateful.config: 'token' is a required property" in error.message
    import stateful_mod

    assert stateful_mod.EVENTS == ["init", "terminate"]  # init ran, and was undone
    assert "stateful_step" not in manager.steps


def test_missing_api_version_is_accepted_with_one_warning_naming_the_plugin(
    manager: PluginManager, write_module: Any, caplog: pytest.LogCaptureFixture
) -> None:
    write_module("no_api_mod", STRICT.replace('"api_version": 1,', "").replace("strict", "no_api"))
    with caplog.at_level("WARNING", logger="pipeline_ex"):
        manager.load_plugin("no_api", "no_api_mod")
    assert manager.get_plugin("no_api").metadata.api_version == 1  # type: ignore[union-attr]
    notes = [r for r in caplog.records if "api_version" in r.getMessage()]
    assert len(notes) == 1
    assert notes[0].getMessage().startswith("plugin no_api declares no api_version")
    assert notes[0].plugin == "no_api"  # type: ignore[attr-defined]


LATE_SCHEMA = """
def init(config):
    return {"started": True}

def get_metadata(state):
    meta = {"name": "late", "version": "1.0.0", "api_version": 1}
    if state is not None:
        meta["config_schema"] = {"type": "object", "properties": {"n": {"type": "integer"}}}
    return meta
"""


def test_config_schema_first_declared_after_init_is_still_checked(
    manager: PluginManager, write_module: Any
) -> None:
    write_module("late_mod", LATE_SCHEMA)
    report = manager.load_all({"plugins": {"late": {"module": "late_mod", "config": {"n": "x"}}}})
    assert report.failed["late"].code == "validation_failed"
    assert "at plugins.late.config.n: 'x' is not of type 'integer'" in report.failed["late"].message
    assert manager.load_all({"plugins": {"late": {"module": "late_mod", "config": {"n": 2}}}}).ok
