"""``import pipeline_ex`` and a plugin's ``from pipeline_ex.plugins import Plugin`` do not
import the host's machinery (PEP 562 lazy attributes): checked by module names in a fresh
interpreter, not by timing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = (
    "pipeline_ex.runtime",
    "pipeline_ex.plugins.manager",
    "pipeline_ex.plugins.loader",
    "pipeline_ex.configuration",
    "jsonschema",
    "yaml",
    "typer",
    "rich",
)


@pytest.mark.parametrize(
    "statement",
    [
        "import pipeline_ex",
        "from pipeline_ex.plugins import Plugin, Step, StepContext, PluginError",
    ],
)
def test_light_imports_do_not_pull_in_the_host(statement: str) -> None:
    code = f"{statement}; import sys, json; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(json.loads(out.stdout))
    assert not [m for m in HEAVY if m in loaded]


def test_lazy_names_still_resolve() -> None:
    import pipeline_ex
    import pipeline_ex.plugins as plugins

    assert pipeline_ex.Runtime.__name__ == "Runtime"
    assert plugins.PluginManager.__name__ == "PluginManager"
    with pytest.raises(AttributeError):
        _ = plugins.NoSuchThing  # type: ignore[attr-defined]


def test_console_version_answers_without_the_command_machinery() -> None:
    code = (
        "import sys; sys.argv = ['pipeline-ex', '--version']; "
        "from pipeline_ex.cli import main; main(); "
        "print(sorted(m for m in ('typer', 'rich', 'pipeline_ex.runtime') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    version_line, modules = out.stdout.strip().splitlines()
    assert version_line.startswith("pipeline-ex ") and modules == "[]"
