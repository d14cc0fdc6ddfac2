"""``import pipeline_ex`` and a plugin's ``from pipeline_ex.plugins import Plugin`` do not
import the host's machinery (PEP 562 lazy attributes): checked by module names in a fresh
interpreter, not by timing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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


#: Standard-library modules that cost as much as the rest of the package's import each.
STDLIB_HEAVY = ("typing", "logging", "dataclasses", "inspect", "re")


@pytest.mark.parametrize(
    "statement", ["import pipeline_ex", "from pipeline_ex.plugins import Plugin, PluginError"]
)
def test_the_lightest_imports_leave_out_typing_logging_and_dataclasses(statement: str) -> None:
    code = f"{statement}; import sys; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(out.stdout.split())
    assert [m for m in STDLIB_HEAVY if m in loaded] == []


def test_the_library_handler_is_attached_by_the_first_module_that_logs() -> None:
    code = (
        "import logging, pipeline_ex; "
        "root = logging.getLogger('pipeline_ex'); before = list(root.handlers); "
        "import pipeline_ex.plugins.guard, pipeline_ex.log, importlib; "
        "importlib.reload(pipeline_ex.log); "
        "print(before, [type(h).__name__ for h in root.handlers])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[] ['NullHandler']"


def test_lazy_names_still_resolve() -> None:
    import pipeline_ex
    import pipeline_ex.plugins as plugins

    assert pipeline_ex.Runtime.__name__ == "Runtime"
    assert plugins.PluginManager.__name__ == "PluginManager"
    assert plugins.StepContext.__name__ == "StepContext"
    from pipeline_ex.errors import Location, Problem
    from pipeline_ex.plugins.behaviour import Providers, SchemaExtensions, StepTypes

    assert str(Problem("bad", Location("w.yaml", "workflow.name", 3))) == (
        "w.yaml:3 at workflow.name: bad"
    )
    assert [StepTypes, Providers, SchemaExtensions] == [
        list[tuple[str, Any]],
        list[tuple[str, Any, list[str]]],
        list[tuple[str, Mapping[str, Any]]],
    ]
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


@pytest.mark.parametrize(
    ("argv", "first_line"),
    [(["steps"], "step types"), (["steps", "--json"], "["), (["providers"], "providers")],
)
def test_steps_into_a_pipe_needs_neither_typer_nor_rich(argv: list[str], first_line: str) -> None:
    """``pipeline-ex steps | ...``: the direct way in (no typer), the plain table (no rich),
    the built-in schema extension known valid (no jsonschema-rs), and the parts of the
    Runtime a listing never uses (the workflow engine, monitoring's snapshots and exports)."""
    heavy = (
        "typer",
        "click",
        "rich",
        "pydantic",
        "prometheus_client",
        "yaml",
        "jsonschema",
        "jsonschema_rs",
        "pipeline_ex.workflow.executor",
        "pipeline_ex.monitoring.snapshot",
        "pipeline_ex.monitoring.prometheus",
    )
    code = (
        f"import sys; sys.argv = ['pipeline-ex', *{argv!r}]; "
        "from pipeline_ex.cli.direct import dispatch; code = dispatch(sys.argv[1:]); "
        f"print(code, sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR")}
    env.pop("PIPELINE_EX_PLUGINS", None)
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=120,
    )
    *table, verdict = out.stdout.strip().splitlines()
    assert table[0].startswith(first_line) and verdict == "0 []"


_COLD_LOAD = """
import json, sys
from pipeline_ex.configuration import ConfigurationSystem
from pipeline_ex.plugins import PluginManager
from pipeline_ex.registries import ProviderRegistry, StepRegistry

manager = PluginManager(StepRegistry(), ProviderRegistry(), ConfigurationSystem())
index = manager.loader.entry_points
wanted = [name for name in index.names() if name.startswith("cold_demo_")]
report = manager.load_all({"plugins": {name: {"module": name} for name in wanted}})
print(json.dumps({"loaded": sorted(report.loaded), "rescanned": index.rescanned,
                  "modules": sorted(sys.modules)}))
"""

_COLD_PLUGIN = """
class Step:
    def execute(self, step, context):
        return {{"success": True}}


class DemoPlugin:
    def init(self, config):
        return dict(config)

    def terminate(self, state):
        return None

    def get_metadata(self, state):
        return {{"name": "cold_demo_{i}", "version": "1.0", "api_version": 1}}

    def get_step_types(self, state):
        return [("cold_demo_step_{i}", Step())]
"""

#: What a warm-cache discovery + load of plain plugins must not import: the index key's
#: digest (OpenSSL), the schema engines (the plugin config is decided by ``schema_quick``),
#: signatures (no ``security:`` section), the resource reader, Ctrl-C's handler, and the
#: modules that only explain an invalid document, the permission vocabulary (no plugin
#: declares a permission), and ``dataclasses``/``inspect`` (see ``pipeline_ex.records``).
_NOT_ON_THE_COLD_PATH = (
    "hashlib",
    "_hashlib",
    "jsonschema_rs",
    "jsonschema",
    "pkgutil",
    "signal",
    "importlib.metadata",
    "pipeline_ex.schema_rs",
    "pipeline_ex.schema_extensions",
    "pipeline_ex.schema_refs",
    "pipeline_ex.results_json",
    "pipeline_ex.problems",
    "pipeline_ex.plugins.signing",
    # records on the load path are written out (pipeline_ex.records): no dataclass
    # compiles code at import, and inspect (ast, dis, tokenize) stays out
    "dataclasses",
    "inspect",
    "pipeline_ex.plugins.permissions",
)


def _cold_load(tmp_path: Path) -> dict[str, Any]:
    site = tmp_path / "site"
    for i in range(2):
        package = site / f"cold_demo_pkg_{i}"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(_COLD_PLUGIN.format(i=i))
        info = site / f"cold_demo_pkg_{i}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: cold-demo-pkg-{i}\nVersion: 1.0\n"
        )
        (info / "entry_points.txt").write_text(
            f"[pipeline_ex.plugins]\ncold_demo_{i} = cold_demo_pkg_{i}:DemoPlugin\n"
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_EX_")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    env["PIPELINE_EX_CACHE_DIR"] = str(tmp_path / "cache")
    runs = []
    for _ in range(2):  # the first run writes the index, the second is the warm start
        out = subprocess.run(
            [sys.executable, "-c", _COLD_LOAD],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            timeout=120,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert runs[0]["rescanned"] and not runs[1]["rescanned"]
    assert runs[1]["loaded"] == ["cold_demo_0", "cold_demo_1"]
    loaded: dict[str, Any] = runs[1]
    return loaded


@pytest.mark.slow  # two interpreters
def test_a_warm_cold_load_of_plain_plugins_imports_only_what_it_uses(tmp_path: Path) -> None:
    modules = set(_cold_load(tmp_path)["modules"])
    assert [m for m in _NOT_ON_THE_COLD_PATH if m in modules] == []
