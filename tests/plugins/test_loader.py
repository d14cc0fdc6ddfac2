"""PluginLoader: config format, module references, directory plugins, entry-point index."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from plugin_samples import make_plugin, write_plugin_dir

from pipeline_ex.errors import PluginError, SchemaValidationError, YAMLDocumentError
from pipeline_ex.plugins import PluginLoader, PluginManager
from pipeline_ex.plugins.discovery import EntryPointIndex, EntryPointInfo
from pipeline_ex.plugins.loader import PRIVATE_PACKAGE

SEED_CONFIG = """\
plugins:
  dspy_plugin:
    module: Pipeline.Plugins.DSPyPlugin
    enabled: false
    config:
      optimization_enabled: true
      cache_enabled: true
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


def test_seed_config_reads_verbatim(tmp_path: Path) -> None:
    path = tmp_path / "plugin_config.yaml"
    path.write_text(SEED_CONFIG)
    cfg = PluginLoader().load_config(path)
    assert cfg["dspy_plugin"]["config"] == {"optimization_enabled": True, "cache_enabled": True}
    assert cfg["dspy_plugin"]["dependencies"] == ["enhanced_schema_validator", "json_yaml_bridge"]
    assert cfg["json_yaml_bridge"]["config"] == {}
    assert [s.name for s in cfg.enabled()] == ["enhanced_schema_validator", "json_yaml_bridge"]
    assert set(cfg) == {"dspy_plugin", "enhanced_schema_validator", "json_yaml_bridge"}


def test_elixir_aliases_resolve_to_builtins(tmp_path: Path, manager: PluginManager) -> None:
    path = tmp_path / "plugin_config.yaml"
    path.write_text(SEED_CONFIG)
    report = manager.load_all(path)
    assert report.ok, report.failed
    assert set(report.loaded) == {"enhanced_schema_validator", "json_yaml_bridge"}
    assert "output_schema" in manager.configuration
    assert "format_convert" in manager.steps


@pytest.mark.parametrize(
    ("text", "fragment", "line"),
    [
        ("plugins:\n  x:\n    module: a.b\n    colour: red\n", "'colour' was unexpected", 2),
        ("plugins:\n  x:\n    enabled: true\n", "is not valid under any of the given schemas", 2),
        ("plugins:\n  x:\n    module: a\n    enabled: maybe\n", "is not of type 'boolean'", 4),
        ("plugin:\n  x: {}\n", "'plugins' is a required property", 1),
    ],
)
def test_config_errors_name_file_path_and_line(
    tmp_path: Path, text: str, fragment: str, line: int
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SchemaValidationError) as info:
        PluginLoader().load_config(path)
    problem = info.value.problems[0]
    assert fragment in problem.message
    assert problem.location.file == str(path)
    assert problem.location.line == line


def test_plugin_names_that_yaml_reads_as_booleans_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SchemaValidationError) as info:
        PluginLoader().config_from_text("plugins:\n  off:\n    module: a:b\n", "c.yaml")
    assert "plugin name False was read as a bool; quote it" in str(info.value)
    assert (
        PluginLoader().config_from_text("plugins:\n  'off':\n    module: a:b\n").specs[0].name
        == "off"
    )


def test_malformed_config_yaml_is_typed(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("plugins: [unclosed\n")
    with pytest.raises(YAMLDocumentError):
        PluginLoader().load_config(path)


def test_dotted_path_forms(manager: PluginManager) -> None:
    manager.load_plugin(
        "json_yaml_bridge", "pipeline_ex.builtin.json_yaml_bridge.JsonYamlBridgePlugin"
    )
    manager.load_plugin(
        "enhanced_schema_validator",
        "pipeline_ex.builtin.schema_validator:EnhancedSchemaValidatorPlugin",
    )
    assert manager.registry.names() == ["json_yaml_bridge", "enhanced_schema_validator"]


@pytest.mark.parametrize(
    ("reference", "fragment"),
    [
        ("no_such_module_xyz:Thing", "cannot import"),
        ("pipeline_ex.builtin.json_yaml_bridge:Missing", "has no attribute"),
        ("no_such_entry_point_or_module", "no entry point 'no_such_entry_point_or_module'"),
    ],
)
def test_unresolvable_module_is_validation_failed(
    manager: PluginManager, reference: str, fragment: str
) -> None:
    with pytest.raises(PluginError) as info:
        manager.load_plugin("x", reference)
    assert info.value.code == "validation_failed"
    assert fragment in info.value.message


PLUGIN_SOURCE = """
from pipeline_ex.plugins import Plugin

class Step:
    def execute(self, step, context):
        return "{tag}"

class ThePlugin(Plugin):
    def get_metadata(self, state):
        return {{"name": "{name}", "version": "1.0.0"}}

    def get_step_types(self, state):
        return [("{name}_step", Step)]
"""


def test_directory_plugins_with_same_file_names_do_not_collide(
    tmp_path: Path, manager: PluginManager
) -> None:
    one = write_plugin_dir(tmp_path / "a", "one", PLUGIN_SOURCE.format(tag="A", name="one"))
    two = write_plugin_dir(tmp_path / "b", "two", PLUGIN_SOURCE.format(tag="B", name="two"))
    manager.load_plugin("one", path=one)
    manager.load_plugin("two", path=two)
    assert manager.steps.get("one_step").execute({}, None) == "A"
    assert manager.steps.get("two_step").execute({}, None) == "B"
    assert "plugin" not in sys.modules  # never imported under its bare file name
    owned = manager.get_plugin("one").module_names
    assert owned and all(n.startswith(PRIVATE_PACKAGE) for n in owned)
    manager.unload_plugin("one")
    assert not [n for n in sys.modules if n in owned]
    assert manager.steps.get("two_step").execute({}, None) == "B"


def test_directory_plugin_from_config_relative_path(tmp_path: Path, manager: PluginManager) -> None:
    write_plugin_dir(tmp_path / "plugins", "rel", PLUGIN_SOURCE.format(tag="R", name="rel"))
    config = tmp_path / "plugin_config.yaml"
    config.write_text("plugins:\n  rel:\n    path: plugins/rel\n")
    report = manager.load_all(config)
    assert report.ok, report.failed
    assert manager.get_plugin("rel").origin == f"path:{(tmp_path / 'plugins' / 'rel').resolve()}"


@pytest.mark.parametrize(
    ("manifest_name", "version", "fragment"),
    [("other", "1.0.0", "names it 'other'"), ("liar", "2.0.0", "manifest says version 2.0.0")],
)
def test_directory_manifest_must_agree(
    tmp_path: Path, manager: PluginManager, manifest_name: str, version: str, fragment: str
) -> None:
    directory = write_plugin_dir(
        tmp_path, manifest_name, PLUGIN_SOURCE.format(tag="L", name="liar"), version=version
    )
    with pytest.raises(PluginError) as info:
        manager.load_plugin("liar", path=directory)
    assert info.value.code == "validation_failed"
    assert fragment in info.value.message


def test_directory_without_manifest_or_with_broken_code(
    tmp_path: Path, manager: PluginManager
) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(PluginError) as info:
        manager.load_plugin("empty", path=tmp_path / "empty")
    assert "no plugin.yaml" in info.value.message
    assert "does not exist" not in info.value.message
    broken = write_plugin_dir(tmp_path, "broken", "raise ImportError('half-installed')\n")
    with pytest.raises(PluginError) as info:
        manager.load_plugin("broken", path=broken)
    assert info.value.code == "validation_failed" and "half-installed" in info.value.message
    assert not [n for n in sys.modules if n.startswith(f"{PRIVATE_PACKAGE}.broken")]


def test_directory_manifest_unknown_key_is_named(tmp_path: Path, manager: PluginManager) -> None:
    directory = write_plugin_dir(
        tmp_path, "extra", PLUGIN_SOURCE.format(tag="E", name="extra"), extra="flavour: mint\n"
    )
    with pytest.raises(PluginError) as info:
        manager.load_plugin("extra", path=directory)
    assert "'flavour' was unexpected" in info.value.message


def test_entry_point_index_caches_until_the_environment_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    dist = site / "demo_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[pipeline_ex.plugins]\ndemo = demo_plugin_mod:Plugin\n")
    monkeypatch.syspath_prepend(str(site))
    index = EntryPointIndex(cache_dir=tmp_path / "cache")
    assert index.get("demo") == EntryPointInfo("demo", "demo_plugin_mod:Plugin", "demo-plugin")
    assert index.rescanned and index.cache_file.exists()

    again = EntryPointIndex(cache_dir=tmp_path / "cache")
    assert again.names() == index.names() and not again.rescanned  # served from the cache

    other = site / "other_plugin-2.0.dist-info"
    other.mkdir()
    (other / "METADATA").write_text("Metadata-Version: 2.1\nName: other-plugin\nVersion: 2.0\n")
    (other / "entry_points.txt").write_text("[pipeline_ex.plugins]\nother = other_mod\n")
    fresh = EntryPointIndex(cache_dir=tmp_path / "cache")
    assert "other" in fresh.names() and fresh.rescanned  # site dir mtime changed: rescanned


def test_discovery_does_not_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    dist = site / "explosive-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: explosive\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[pipeline_ex.plugins]\nboom = explosive_mod\n")
    (site / "explosive_mod.py").write_text("raise SystemExit('imported!')\n")
    monkeypatch.syspath_prepend(str(site))
    index = EntryPointIndex(cache_dir=tmp_path / "cache")
    assert "boom" in index.names()
    assert "explosive_mod" not in sys.modules


def test_entry_point_plugin_loads_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, manager: PluginManager
) -> None:
    site = tmp_path / "site"
    dist = site / "ep_demo-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-demo\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[pipeline_ex.plugins]\nep_demo = ep_demo_mod:ThePlugin\n"
    )
    (site / "ep_demo_mod.py").write_text(PLUGIN_SOURCE.format(tag="EP", name="ep_demo"))
    monkeypatch.syspath_prepend(str(site))
    manager.loader = PluginLoader(EntryPointIndex(cache_dir=tmp_path / "cache"))
    try:
        manager.load_plugin("ep_demo", "ep_demo")
        assert manager.get_plugin("ep_demo").origin == "entry_point:ep_demo"
        assert manager.steps.get("ep_demo_step").execute({}, None) == "EP"
    finally:
        sys.modules.pop("ep_demo_mod", None)


def test_load_plugin_by_name_alone_looks_up_the_entry_point(manager: PluginManager) -> None:
    """Issue 8.1: ``load_plugin("name")`` used to fail with an empty AssertionError."""
    manager.load_plugin("text_tools")
    record = manager.get_plugin("text_tools")
    assert record.origin == "entry_point:text_tools" and record.is_live
    assert "word_count" in manager.steps


def test_load_plugin_by_unknown_name_alone_names_what_is_installed(
    manager: PluginManager,
) -> None:
    with pytest.raises(PluginError) as info:
        manager.load_plugin("csvtools")
    message = info.value.message
    assert info.value.code == "validation_failed"
    assert "AssertionError" not in message
    assert "no entry point 'csvtools' in group 'pipeline_ex.plugins'" in message
    assert "text_tools" in message  # the installed ones are listed


def test_not_loaded_error_lists_only_live_plugins_and_failed_ones_apart(
    manager: PluginManager,
) -> None:
    manager.load_plugin("json_yaml_bridge", "Pipeline.Plugins.JsonYamlBridge")
    with pytest.raises(PluginError):
        manager.load_plugin("csvtools")
    with pytest.raises(PluginError) as info:
        manager.get_plugin("nothing_here")
    assert info.value.code == "not_loaded"
    assert info.value.message == (
        "plugin 'nothing_here' is not loaded; loaded: json_yaml_bridge; failed to load: csvtools"
    )


def test_misspelled_entry_point_says_there_is_no_such_entry_point(
    manager: PluginManager,
) -> None:
    """Issue 8.5: ``module: text_tool`` used to say only "No module named 'text_tool'"."""
    report = manager.load_all({"plugins": {"text_tool": {"module": "text_tool"}}})
    message = report.failed["text_tool"].message
    assert "there is no entry point 'text_tool'" in message
    assert "installed entry points: " in message and "shouting, text_tools" in message
    assert "did you mean 'text_tools'?" in message


def test_missing_module_of_a_dotted_path_is_not_blamed_on_a_dependency(
    manager: PluginManager, write_module: Any
) -> None:
    write_module("needs_missing_dep", "import no_such_dependency_xyz\n")
    with pytest.raises(PluginError) as info:
        manager.load_plugin("needs", "needs_missing_dep")
    assert "No module named 'no_such_dependency_xyz'" in info.value.message
    assert "entry point" not in info.value.message


def test_missing_plugin_directory_says_it_does_not_exist(
    tmp_path: Path, manager: PluginManager
) -> None:
    with pytest.raises(PluginError) as info:
        manager.load_plugin("ghost", path=tmp_path / "nowhere")
    assert info.value.code == "validation_failed"
    assert f"plugin directory {tmp_path / 'nowhere'} does not exist" in info.value.message
    assert "manifest" not in info.value.message
    (tmp_path / "afile").write_text("")
    with pytest.raises(PluginError) as info:
        manager.load_plugin("afile", path=tmp_path / "afile")
    assert "is not a directory" in info.value.message


def test_directory_plugin_absolute_import_of_a_sibling_gets_a_hint(
    tmp_path: Path, manager: PluginManager
) -> None:
    """Issue 8.4: the rule is relative imports; ``import helpers`` fails with a hint."""
    source = PLUGIN_SOURCE.format(tag="S", name="sib")
    absolute = write_plugin_dir(tmp_path / "a", "sib", "import helpers\n" + source)
    (absolute / "helpers.py").write_text("TAG = 'helped'\n")
    with pytest.raises(PluginError) as info:
        manager.load_plugin("sib", path=absolute)
    message = info.value.message
    assert "No module named 'helpers'" in message
    assert "helpers.py is a file of the plugin directory" in message
    assert "'from . import helpers'" in message
    assert "helpers" not in sys.modules


@pytest.mark.parametrize("form", ["from . import helpers", "from .helpers import TAG"])
def test_directory_plugin_relative_imports_of_siblings_work(
    tmp_path: Path, manager: PluginManager, form: str
) -> None:
    source = PLUGIN_SOURCE.replace('return "{tag}"', "return TAG").format(name="rel2")
    if form == "from . import helpers":
        source = source.replace("return TAG", "return helpers.TAG")
    directory = write_plugin_dir(tmp_path, "rel2", form + "\n" + source)
    (directory / "helpers.py").write_text("TAG = 'helped'\n")
    manager.load_plugin("rel2", path=directory)
    assert manager.steps.get("rel2_step").execute({}, None) == "helped"
    assert "helpers" not in sys.modules


CSV_USER = """
def init(config):
    return None

def get_metadata(state):
    return {"name": "csv_user", "version": "1.0.0", "dependencies": ["csvtools>=2.0"]}
"""

CSVTOOLS = """
def init(config):
    return None

def get_metadata(state):
    return {"name": "csvtools", "version": "1.5.0"}
"""


def test_version_conflict_names_the_source_of_each_specifier(
    tmp_path: Path, manager: PluginManager, write_module: Any
) -> None:
    """Issue 8.3: used to say only ``needs 'csvtools>=1.0,>=2.0'``."""
    write_module("csv_user_mod", CSV_USER)
    write_module("csvtools_mod", CSVTOOLS)
    config = tmp_path / "plugin_config.yaml"
    config.write_text(
        "plugins:\n"
        "  csvtools: {module: csvtools_mod}\n"
        "  csv_user:\n"
        "    module: csv_user_mod\n"
        "    dependencies: [csvtools>=1.0]\n"
    )
    report = manager.load_all(config)
    error = report.failed["csv_user"]
    assert error.code == "version_conflict"
    assert error.message == (
        "plugin 'csv_user' needs 'csvtools>=2.0' (get_metadata) "
        f"(also 'csvtools>=1.0' (config {config}): met) but csvtools is version 1.5.0"
    )


def test_version_conflict_from_load_plugin_and_manifest_sources(
    tmp_path: Path, manager: PluginManager, write_module: Any
) -> None:
    write_module("csvtools_mod", CSVTOOLS)
    manager.load_plugin("csvtools", "csvtools_mod")
    directory = write_plugin_dir(
        tmp_path,
        "dir_user",
        PLUGIN_SOURCE.format(tag="D", name="dir_user"),
        extra="dependencies: ['csvtools<1.0']\n",
    )
    with pytest.raises(PluginError) as info:
        manager.load_plugin("dir_user", path=directory, dependencies=("csvtools>=1.2",))
    assert info.value.code == "version_conflict"
    manifest = directory.resolve() / "plugin.yaml"
    assert info.value.message == (
        f"plugin 'dir_user' needs 'csvtools<1.0' (manifest {manifest}) "
        "(also 'csvtools>=1.2' (load_plugin): met) but csvtools is version 1.5.0"
    )


def test_missing_dependency_names_where_it_was_declared(manager: PluginManager) -> None:
    with pytest.raises(PluginError) as info:
        manager.load_plugin("lonely", make_plugin("lonely", dependencies=["nobody>=1"]))
    assert info.value.code == "dependency_missing"
    assert "needs 'nobody>=1' (get_metadata), which is not loaded" in info.value.message


def test_misspelled_elixir_alias_suggests_the_alias(manager: PluginManager) -> None:
    with pytest.raises(PluginError) as info:
        manager.load_plugin("bridge", "Pipeline.Plugins.JsonYamlBrige")
    assert "cannot import 'Pipeline.Plugins.JsonYamlBrige': no module of that name" in (
        info.value.message
    )
    assert "did you mean 'Pipeline.Plugins.JsonYamlBridge'?" in info.value.message


def test_load_config_is_callable_on_the_class_as_the_seed_writes_it(tmp_path: Path) -> None:
    path = tmp_path / "plugin_config.yaml"
    path.write_text(SEED_CONFIG)
    config = PluginLoader.load_config(path)
    assert config["dspy_plugin"]["dependencies"] == [
        "enhanced_schema_validator",
        "json_yaml_bridge",
    ]
    assert PluginLoader().load_config(path).specs == config.specs


def test_each_spec_knows_the_lines_of_its_own_entry_only() -> None:
    text = (
        "plugins:\n"
        "  first:\n"
        "    module: first_mod\n"
        "    config:\n"
        "      volume: 3\n"
        "  second:\n"
        "    module: second_mod\n"
        "  plugins:\n"  # an entry named like the section must not take the others' lines
        "    module: odd_mod\n"
    )
    first, second, odd = PluginLoader.config_from_text(text, "cfg.yaml").specs
    assert first.line_of(()) == 2 and first.line_of(("config", "volume")) == 5
    assert second.line_of(()) == 6 and second.line_of(("module",)) == 7
    assert odd.line_of(()) == 8 and odd.line_of(("config", "volume")) == 8
    assert all(path[:1] != ("plugins",) for path in odd.lines)
