"""Fixtures for the end-to-end CLI tests: an invoker, workflow files, a small plugin.

Every test runs in its own temporary working directory so that ``output_to_file`` (whose
default directory is relative to the working directory) never writes into the repository.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from pipeline_ex.cli import app

Invoke = Callable[..., Result]


@pytest.fixture(autouse=True)
def _scratch_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    yield


@pytest.fixture
def cli() -> Invoke:
    """``cli("run", "x.yaml", env={...})``: run the CLI in-process; stdout/stderr apart."""
    runner = CliRunner()

    def invoke(*args: str | Path, env: dict[str, str | None] | None = None) -> Result:
        argv: Sequence[str] = [str(a) for a in args]
        return runner.invoke(app, argv, env=env, prog_name="pipeline-ex")

    return invoke


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a dedented text file under the test's temporary directory."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    return _write


HELLO_PLUGIN = '''
"""A directory plugin used by the CLI tests: a step type, a schema extension."""

from pipeline_ex.plugins import Plugin


class HelloStep:
    """Greets whoever ``who`` names."""

    def execute(self, step, context):
        return {"success": True, "text": f"hello {step.get('who', 'world')}", "cost": 0.0}


class HelloPlugin(Plugin):
    def get_metadata(self, state):
        return {
            "name": "hello_plugin",
            "version": "1.2.0",
            "api_version": 1,
            "description": "Says hello",
            "capabilities": ["greeting"],
        }

    def get_step_types(self, state):
        return [("hello", HelloStep)]

    def get_schema_extensions(self, state):
        return [(
            "hello_ext",
            {"properties": {"workflow": {"properties": {"greeting_style": {"type": "string"}}}}},
        )]
'''


@pytest.fixture
def hello_config(write: Callable[[str, str], Path]) -> Path:
    """A plugin config loading ``hello_plugin`` from a plugin directory."""
    write(
        "plugins/hello/plugin.yaml",
        """
        name: hello_plugin
        version: "1.2.0"
        module: hello_impl:HelloPlugin
        description: Says hello
    """,
    )
    write("plugins/hello/hello_impl.py", HELLO_PLUGIN)
    return write(
        "plugin_config.yaml",
        """
        plugins:
          hello_plugin:
            path: plugins/hello
            config:
              loud: false
    """,
    )


@pytest.fixture
def broken_config(write: Callable[[str, str], Path]) -> Path:
    """A config whose only plugin names a module that does not exist."""
    return write(
        "broken_plugins.yaml",
        """
        plugins:
          ghost:
            module: no_such_module_for_pipeline_ex_tests:GhostPlugin
            config: {}
    """,
    )
