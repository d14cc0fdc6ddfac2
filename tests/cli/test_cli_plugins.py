"""``pipeline-ex plugins list | info | check``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from typer.testing import Result

BUILTINS = {
    "core_steps",
    "mock_providers",
    "live_providers",
    "enhanced_schema_validator",
    "json_yaml_bridge",
}

Invoke = Callable[..., Result]
Write = Callable[[str, str], Path]


def test_list_shows_builtins_and_configured(cli: Invoke, hello_config: Path) -> None:
    result = cli("plugins", "list", "--json", "--plugins", hello_config)
    assert result.exit_code == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert {"core_steps", "mock_providers", "hello_plugin"} <= set(rows)
    hello = rows["hello_plugin"]
    assert hello["version"] == "1.2.0"
    assert hello["status"] == "active"
    assert hello["origin"].startswith("path:")
    assert hello["components"]["step_types"] == ["hello"]
    assert hello["components"]["schema_extensions"] == ["hello_ext"]
    assert isinstance(hello["load_time_ms"], float)


def test_list_table_includes_failed_plugins_with_code(cli: Invoke, broken_config: Path) -> None:
    result = cli("plugins", "list", "--plugins", broken_config, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    assert "core_steps" in result.stdout
    assert "ghost" in result.stdout
    assert "ghost [validation_failed]: " in result.stdout
    assert "warning" not in result.stderr  # failures are the content here, not warnings


def test_list_shows_disabled_entries(cli: Invoke, write: Write) -> None:
    config = write(
        "cfg.yaml",
        """
        plugins:
          sleeper:
            module: not_imported_because_disabled:Plugin
            enabled: false
    """,
    )
    rows = {
        r["name"]: r
        for r in json.loads(cli("plugins", "list", "--json", "--plugins", config).stdout)
    }
    assert rows["sleeper"]["status"] == "disabled"


def test_info_shows_the_full_summary(cli: Invoke, hello_config: Path) -> None:
    result = cli(
        "plugins", "info", "hello_plugin", "--plugins", hello_config, env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.stderr
    for text in ("hello_plugin", "1.2.0", "Says hello", "greeting", "hello_ext", "active"):
        assert text in result.stdout
    data = json.loads(
        cli("plugins", "info", "hello_plugin", "--plugins", hello_config, "--json").stdout
    )
    assert data["capabilities"] == ["greeting"]
    assert data["components"]["step_types"] == ["hello"]
    assert data["stats"]["calls"] >= 1


def test_info_of_a_failed_plugin_shows_its_error(cli: Invoke, broken_config: Path) -> None:
    result = cli("plugins", "info", "ghost", "--plugins", broken_config, "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["status"] == "failed"
    assert data["error_code"] == "validation_failed"
    assert "no_such_module_for_pipeline_ex_tests" in data["last_error"]


def test_info_of_an_unknown_plugin_is_exit_2(cli: Invoke) -> None:
    result = cli("plugins", "info", "nobody")
    assert result.exit_code == 2
    assert "error [not_loaded]" in result.stderr and "core_steps" in result.stderr


def test_check_good_config(cli: Invoke, hello_config: Path) -> None:
    result = cli("plugins", "check", hello_config)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "hello_plugin 1.2.0 active" in result.stdout
    assert "1 loaded, 0 failed" in result.stdout


def test_check_missing_module_is_exit_1_with_code(cli: Invoke, broken_config: Path) -> None:
    result = cli("plugins", "check", broken_config)
    assert result.exit_code == 1
    assert "ghost failed [validation_failed]" in result.stdout
    assert "0 loaded, 1 failed" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


DEPENDENT_PLUGIN = """
def init(config):
    return {}


def terminate(state):
    pass


def get_metadata(state):
    return {"name": "needs_ghost", "version": "0.1.0", "api_version": 1,
            "dependencies": ["ghost"]}
"""


def test_check_reports_each_plugin_with_its_code(
    cli: Invoke, write: Write, hello_config: Path
) -> None:
    write("plugins/dep/plugin.yaml", "name: needs_ghost\nversion: '0.1.0'\nmodule: dep_impl\n")
    write("plugins/dep/dep_impl.py", DEPENDENT_PLUGIN)
    config = write(
        "mixed.yaml",
        """
        plugins:
          hello_plugin:
            path: plugins/hello
          ghost:
            module: no_such_module_for_pipeline_ex_tests:GhostPlugin
          needs_ghost:
            path: plugins/dep
          off_duty:
            module: whatever:Plugin
            enabled: false
    """,
    )
    result = cli("plugins", "check", config)
    assert result.exit_code == 1
    assert "hello_plugin 1.2.0 active" in result.stdout
    assert "ghost failed [validation_failed]" in result.stdout
    assert "needs_ghost failed [dependency_missing]" in result.stdout
    assert "off_duty disabled" in result.stdout
    assert "4 configured plugin(s): 1 loaded, 2 failed, 1 disabled" in result.stdout

    report = json.loads(cli("plugins", "check", config, "--json").stdout)
    assert report["ok"] is False
    rows = {r["name"]: r for r in report["plugins"] if r["configured"]}
    assert set(rows) == {"hello_plugin", "ghost", "needs_ghost", "off_duty"}
    assert rows["needs_ghost"]["error_code"] == "dependency_missing"
    assert {r["name"] for r in report["plugins"] if not r["configured"]} >= BUILTINS


def test_check_config_with_unknown_key_is_exit_2(cli: Invoke, write: Write) -> None:
    config = write(
        "unknown_key.yaml",
        """
        plugins:
          hello:
            module: somewhere:Plugin
            colour: blue
    """,
    )
    result = cli("plugins", "check", config)
    assert result.exit_code == 2
    assert "error [schema_invalid]" in result.stderr
    assert "colour" in result.stderr and "unknown_key.yaml:" in result.stderr


def test_check_malformed_config_is_exit_2(cli: Invoke, write: Write) -> None:
    config = write("malformed.yaml", "plugins: {a: [\n")
    result = cli("plugins", "check", config)
    assert result.exit_code == 2
    assert "error [yaml_invalid]" in result.stderr


def test_plugins_without_subcommand_shows_help(cli: Invoke) -> None:
    result = cli("plugins")
    assert result.exit_code == 0
    assert "check" in result.stdout and "info" in result.stdout


BROKEN_PLUGIN = """
from pipeline_ex.plugins import Plugin


def connect():
    raise ConnectionError("database is down")


class ThePlugin(Plugin):
    def init(self, config):
        return connect()

    def get_metadata(self, state):
        return {"name": "broken", "version": "1.0", "api_version": 1}
"""

RAISING_STEP_PLUGIN = """
from pipeline_ex.plugins import Plugin


def deep_helper(step):
    return step["missing_key"]


class Raises:
    def execute(self, step, context):
        return deep_helper(step)


class ThePlugin(Plugin):
    def get_metadata(self, state):
        return {"name": "raiser", "version": "1.0", "api_version": 1}

    def get_step_types(self, state):
        return [("raiser", Raises)]
"""


def _plugin_config(write: Any, name: str, source: str) -> Path:
    write(f"plugins/{name}/plugin.yaml", f"name: {name}\nversion: '1.0'\nmodule: impl:ThePlugin\n")
    write(f"plugins/{name}/impl.py", source)
    return write("plugin_config.yaml", f"plugins:\n  {name}:\n    path: plugins/{name}\n")


def test_plugins_info_shows_the_traceback_of_a_failed_init(cli: Any, write: Any) -> None:
    config = _plugin_config(write, "broken", BROKEN_PLUGIN)
    result = cli("plugins", "info", "broken", "--plugins", config, "--json")
    info = json.loads(result.stdout)
    assert info["status"] == "failed" and info["error_code"] == "init_failed"
    assert "Traceback" in info["traceback"] and "in connect" in info["traceback"]
    table = cli("plugins", "info", "broken", "--plugins", config)
    assert "ConnectionError: database is down" in table.stdout and "traceback" in table.stdout


def test_verbose_shows_plugin_tracebacks_of_loads_and_steps(cli: Any, write: Any) -> None:
    config = _plugin_config(write, "broken", BROKEN_PLUGIN)
    workflow = write(
        "wf.yaml", "workflow:\n  name: w\n  steps:\n    - {name: a, type: test_echo, value: 1}\n"
    )
    quiet = cli("run", workflow, "--plugins", config)
    assert "init_failed" in quiet.stderr and "Traceback" not in quiet.stderr
    loud = cli("-v", "run", workflow, "--plugins", config)
    assert "Traceback" in loud.stderr and "in connect" in loud.stderr

    step_config = _plugin_config(write, "raiser", RAISING_STEP_PLUGIN)
    step_wf = write("wf2.yaml", "workflow:\n  name: w\n  steps:\n    - {name: a, type: raiser}\n")
    failed = cli("-v", "run", step_wf, "--plugins", step_config)
    assert failed.exit_code == 1
    assert "in deep_helper" in failed.stderr and "KeyError" in failed.stderr
