"""Discovery like the ``llm`` CLI: ``plugins list --available``, ``plugins info`` of an
installed plugin, ``autoload: true``; and the library's logging set-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from pipeline_ex import Runtime
from pipeline_ex.errors import SchemaValidationError

Invoke = Callable[..., Result]
Write = Callable[[str, str], Path]


def _run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200"},
        timeout=120,
        check=False,
    )


def test_list_available_shows_installed_plugins_that_are_not_configured(cli: Invoke) -> None:
    result = cli("plugins", "list", "--available", "--json")
    assert result.exit_code == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["text_tools"]["status"] == "available"
    assert rows["text_tools"]["origin"] == "entry_point:pipeline_ex_text_tools:TextToolsPlugin"
    assert rows["text_tools"]["distribution"] == "pipeline-ex-text-tools 1.2.0"
    assert rows["shouting"]["status"] == "available"
    assert rows["core_steps"]["status"] == "active"  # the usual rows are still there
    plain = {row["name"] for row in json.loads(cli("plugins", "list", "--json").stdout)}
    assert "text_tools" not in plain  # only with --available


def test_list_available_leaves_out_configured_plugins(cli: Invoke, write: Write) -> None:
    config = write("cfg.yaml", "plugins:\n  text_tools:\n    module: text_tools\n")
    rows = json.loads(cli("plugins", "list", "--available", "--json", "--plugins", config).stdout)
    statuses = {row["name"]: row["status"] for row in rows}
    assert statuses["text_tools"] == "active" and statuses["shouting"] == "available"
    assert [row["name"] for row in rows].count("text_tools") == 1


def test_list_available_does_not_import_the_plugins(tmp_path: Path) -> None:
    """Checked in a fresh interpreter: this test process may have imported them already."""
    done = _run_python(
        """
        import sys
        from pipeline_ex.cli import app
        app(["plugins", "list", "--available"], standalone_mode=False)
        print("imported:", "pipeline_ex_text_tools" in sys.modules)
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "text_tools" in done.stdout and "available" in done.stdout
    assert "imported: False" in done.stdout


def test_info_of_an_installed_plugin_that_is_not_loaded(cli: Invoke) -> None:
    result = cli("plugins", "info", "shouting", "--json")
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["status"] == "available"
    assert info["origin"] == "entry_point:pipeline_ex_text_tools.shouting"
    assert info["distribution"] == "pipeline-ex-text-tools 1.2.0"
    assert info["description"].startswith("Example pipeline-ex plugins")
    table = cli("plugins", "info", "shouting", env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "pipeline-ex-text-tools 1.2.0" in table.stdout
    missing = cli("plugins", "info", "not_installed_anywhere")
    assert missing.exit_code == 2 and "[not_loaded]" in missing.stderr


def test_autoload_loads_every_installed_plugin(tmp_path: Path) -> None:
    config = tmp_path / "cfg.yaml"
    config.write_text("autoload: true\nplugins:\n  shouting:\n    module: text_tools_typo\n")
    with Runtime(plugin_config=config) as runtime:
        assert "text_tools" in runtime.load_report.loaded  # autoloaded
        assert runtime.plugins.get_plugin("text_tools").origin == "entry_point:text_tools"
        assert "word_count" in runtime.steps
        # a configured entry wins over the installed plugin of the same name
        assert "shouting" in runtime.load_report.failed
    off = tmp_path / "off.yaml"
    off.write_text("plugins: {}\n")
    with Runtime(plugin_config=off) as runtime:
        assert "text_tools" not in runtime.plugins.registry  # off by default
    bad = tmp_path / "bad.yaml"
    bad.write_text("autoload: yes please\nplugins: {}\n")
    with pytest.raises(SchemaValidationError) as info:
        Runtime(plugin_config=bad)
    assert f"{bad}:1 at autoload: 'yes please' is not of type 'boolean'" in str(info.value)


def test_autoload_in_load_all_skips_plugins_already_loaded(tmp_path: Path) -> None:
    with Runtime(load_builtins=False) as runtime:
        runtime.plugins.load_plugin("text_tools")
        report = runtime.plugins.load_all({"autoload": True, "plugins": {}})
        assert report.ok, report.failed
        assert report.loaded == ("shouting",)


def test_library_logs_nothing_without_a_configured_handler(tmp_path: Path) -> None:
    """Issue 8.6: warnings printed twice: by Python's last-resort handler, then again."""
    (tmp_path / "bad.yaml").write_text("plugins:\n  ghost:\n    module: ghost_module_xyz\n")
    done = _run_python(
        """
        import logging
        from pipeline_ex import Runtime
        with Runtime(plugin_config="bad.yaml") as runtime:
            assert "ghost" in runtime.load_report.failed
        print(any(isinstance(h, logging.NullHandler)
                  for h in logging.getLogger("pipeline_ex").handlers))
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
    assert done.stderr == ""


def test_cli_prints_a_plugin_failure_once_and_the_api_version_notice(
    cli: Invoke, write: Write
) -> None:
    write("quiet/plugin.yaml", "name: quiet\nversion: '1.0'\nmodule: quiet_impl\n")
    write(
        "quiet/quiet_impl.py",
        "def init(config):\n    raise ValueError('no thanks')\n\n"
        "def get_metadata(state):\n    return {'name': 'quiet', 'version': '1.0'}\n",
    )
    config = write("cfg.yaml", "plugins:\n  quiet:\n    path: quiet\n")
    result = cli("steps", "--plugins", config)
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len([ln for ln in lines if "no thanks" in ln]) == 1
    assert len([ln for ln in lines if "declares no api_version" in ln]) == 1
