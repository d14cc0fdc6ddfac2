"""Schema extensions are checked when registered and named in the errors they cause
(issue 8: broken $ref, first-error-only reports; issue 7 item 13: unnamed errors, ReDoS)."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from pipeline_ex import Runtime
from pipeline_ex.configuration import ConfigurationSystem
from pipeline_ex.errors import (
    PipelineExError,
    PluginError,
    SchemaExtensionConflict,
    SchemaValidationError,
)
from pipeline_ex.schema_extensions import pattern_problems

VALID = {"workflow": {"name": "ok", "steps": [{"name": "a", "type": "test_echo"}]}}


def workflow_props(**properties: Any) -> dict[str, Any]:
    return {"properties": {"workflow": {"properties": properties}}}


def extension_plugin(name: str, fragment: dict[str, Any], ext: str | None = None) -> type:
    class ExtensionPlugin:
        def init(self, config: Any) -> Any:
            return None

        def get_metadata(self, state: Any) -> dict[str, Any]:
            return {"name": name, "version": "1.0", "api_version": 1}

        def get_schema_extensions(self, state: Any) -> Any:
            return [(ext or f"{name}_ext", fragment)]

    return ExtensionPlugin


@pytest.fixture
def rt() -> Iterator[Runtime]:
    with Runtime() as runtime:
        yield runtime


def refused(rt: Runtime, name: str, fragment: dict[str, Any]) -> PluginError:
    with pytest.raises(PluginError) as info:
        rt.plugins.load_plugin(name, extension_plugin(name, fragment))
    assert info.value.code == "validation_failed"
    assert f"plugin {name!r}" in info.value.message
    assert f"{name}_ext" not in rt.configuration
    rt.validate(VALID)  # the refused extension left nothing behind
    return info.value


class TestReferences:
    def test_broken_ref_extension_is_refused_naming_plugin_and_pointer(self, rt: Runtime) -> None:
        error = refused(rt, "p_ref", workflow_props(x={"$ref": "#/nope"}))
        assert "at /properties/workflow/properties/x/$ref" in error.message
        assert "'#/nope'" in error.message and "does not resolve" in error.message

    def test_remote_ref_is_refused_and_never_fetched(
        self, rt: Runtime, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def no_network(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("a remote $ref was fetched")

        monkeypatch.setattr(urllib.request, "urlopen", no_network)
        error = refused(rt, "p_remote", workflow_props(x={"$ref": "https://example.com/s.json"}))
        assert "remote references are never retrieved" in error.message

    def test_refs_into_the_base_schema_and_meta_schema_are_accepted(self, rt: Runtime) -> None:
        fragment = workflow_props(
            first={"$ref": "#/$defs/step"},
            schema={"$ref": "https://json-schema.org/draft/2020-12/schema"},
            local={"$defs": {"n": {"type": "integer"}}, "$ref": "#/properties/workflow"},
        )
        rt.plugins.load_plugin("p_ok", extension_plugin("p_ok", fragment))
        rt.validate(VALID)

    def test_ref_to_an_embedded_id_resolves(self, rt: Runtime) -> None:
        fragment = workflow_props(
            x={
                "$id": "https://pipeline-ex.dev/schemas/x.json",
                "$defs": {"n": {"type": "integer"}},
                "properties": {"n": {"$ref": "#/$defs/n"}},
            }
        )
        rt.plugins.load_plugin("p_id", extension_plugin("p_id", fragment))
        with pytest.raises(SchemaValidationError):
            rt.validate({"workflow": {**VALID["workflow"], "x": {"n": "text"}}})

    def test_ref_left_dangling_by_an_unload_is_a_typed_error_naming_the_extension(
        self, rt: Runtime
    ) -> None:
        definer = {"$defs": {"shared_limit": {"type": "integer"}}}
        user = workflow_props(limit={"$ref": "#/$defs/shared_limit"})
        rt.plugins.load_plugin("definer", extension_plugin("definer", definer))
        rt.plugins.load_plugin("user", extension_plugin("user", user))
        rt.validate({"workflow": {**VALID["workflow"], "limit": 3}})
        rt.plugins.unload_plugin("definer")
        with pytest.raises(SchemaExtensionConflict) as info:
            rt.validate({"workflow": {**VALID["workflow"], "limit": 3}})
        assert info.value.code == "extension_invalid"
        assert "'user_ext' (plugin 'user')" in info.value.message


class TestMetaSchemaProblems:
    def test_invalid_extension_reports_every_problem_with_its_pointer(self) -> None:
        fragment = workflow_props(a={"type": "integr"}, b={"minimum": "low"})
        with pytest.raises(SchemaExtensionConflict) as info:
            ConfigurationSystem().register_extensions({"two": fragment}, "p")
        message = info.value.message
        assert info.value.code == "extension_invalid" and "'two'" in message
        assert "at /properties/workflow/properties/a/type:" in message
        assert "'integr' is not one of" in message  # the cause, not only the anyOf summary
        assert "at /properties/workflow/properties/b/minimum:" in message

    def test_plugin_with_invalid_extension_names_it(self, rt: Runtime) -> None:
        error = refused(rt, "p_bad", workflow_props(a={"type": "integr"}))
        assert "/properties/workflow/properties/a/type" in error.message


class TestPatterns:
    @pytest.mark.parametrize(
        "pattern",
        ["^(a|aa)+$", "^(a+)+$", "(\\w+\\s?)*$", "^(a|a)*$", "^(\\d+)*x$", "(x+x+)+y"],
    )
    def test_catastrophic_pattern_is_refused_at_registration(
        self, rt: Runtime, pattern: str
    ) -> None:
        error = refused(rt, "p_redos", workflow_props(name={"pattern": pattern}))
        assert "at /properties/workflow/properties/name/pattern" in error.message
        assert "backtrack exponentially" in error.message

    def test_catastrophic_pattern_property_key_is_refused(self) -> None:
        fragment = workflow_props(tags={"patternProperties": {"^(a|aa)+$": {"type": "string"}}})
        with pytest.raises(SchemaExtensionConflict, match="patternProperties/"):
            ConfigurationSystem().register_extensions({"pp": fragment}, "p")

    def test_ordinary_patterns_pass(self, rt: Runtime) -> None:
        fragment = workflow_props(
            slug={"type": "string", "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$"},
            semver={"type": "string", "pattern": r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$"},
            dotted={"type": "string", "pattern": r"^(\w+\.)*\w+$"},
            env={"type": "object", "patternProperties": {"^[A-Z_][A-Z0-9_]*$": {}}},
        )
        rt.plugins.load_plugin("p_fine", extension_plugin("p_fine", fragment))
        rt.validate({"workflow": {**VALID["workflow"], "slug": "a-b-c", "dotted": "a.b.c"}})

    def test_the_shipped_schema_and_builtin_extensions_have_no_unsafe_pattern(
        self, rt: Runtime
    ) -> None:
        assert pattern_problems(rt.configuration.compiled_schema()) == []

    def test_patterns_in_data_keywords_are_not_schemas(self) -> None:
        fragment = workflow_props(x={"const": {"pattern": "^(a|aa)+$"}})
        ConfigurationSystem().register_extensions({"data": fragment}, "p")


class TestErrorsNameTheirExtension:
    def test_required_from_extension_names_extension_and_plugin(self, rt: Runtime) -> None:
        fragment = {"properties": {"workflow": {"required": ["p1_settings"]}}}
        rt.plugins.load_plugin("p1", extension_plugin("p1", fragment, ext="p1_settings_ext"))
        with pytest.raises(SchemaValidationError) as info:
            rt.validate(VALID)
        (problem,) = info.value.problems
        assert "'p1_settings' is a required property" in problem.message
        assert "schema extension 'p1_settings_ext' of plugin 'p1'" in problem.message

    def test_base_schema_errors_name_no_extension(self, rt: Runtime) -> None:
        fragment = {"properties": {"workflow": {"required": ["p1_settings"]}}}
        rt.plugins.load_plugin("p1", extension_plugin("p1", fragment))
        with pytest.raises(SchemaValidationError) as info:
            rt.validate({"workflow": {"steps": [], "p1_settings": 1}})
        messages = [p.message for p in info.value.problems]
        assert any("'name' is a required property" in m for m in messages)
        assert not any("extension" in m for m in messages)

    def test_constraint_added_to_a_base_property_names_the_extension(self, rt: Runtime) -> None:
        rt.plugins.load_plugin(
            "short", extension_plugin("short", workflow_props(name={"maxLength": 3}))
        )
        with pytest.raises(SchemaValidationError) as info:
            rt.validate(VALID | {"workflow": {**VALID["workflow"], "name": "toolong"}})
        (problem,) = info.value.problems
        assert "of plugin 'short'" in problem.message

    def test_step_definition_extension_is_named_inside_inlined_steps(self, rt: Runtime) -> None:
        fragment = {"$defs": {"step": {"properties": {"retries": {"type": "integer"}}}}}
        rt.plugins.load_plugin("retry", extension_plugin("retry", fragment))
        step = {"name": "a", "type": "test_echo", "retries": "many"}
        nested = {
            "name": "loop",
            "type": "for_loop",
            "iterator": "i",
            "data_source": [1],
            "steps": [{"name": "b", "type": "test_echo", "retries": "x"}],
        }
        with pytest.raises(SchemaValidationError) as info:
            rt.validate({"workflow": {"name": "w", "steps": [step, nested]}})
        assert info.value.problems
        for problem in info.value.problems:
            assert "schema extension 'retry_ext' of plugin 'retry'" in problem.message

    def test_composition_moved_under_all_of_is_named(self, rt: Runtime) -> None:
        one = workflow_props(mode={"anyOf": [{"type": "string"}, {"type": "integer"}]})
        two = workflow_props(mode={"anyOf": [{"const": "a"}, {"const": 1}]})
        rt.plugins.load_plugin("one", extension_plugin("one", one))
        rt.plugins.load_plugin("two", extension_plugin("two", two))
        with pytest.raises(SchemaValidationError) as info:
            rt.validate({"workflow": {**VALID["workflow"], "mode": "b"}})
        assert any("of plugin 'two'" in p.message for p in info.value.problems)


class TestNameConflicts:
    def test_name_conflict_error_suggests_overrides(self, rt: Runtime) -> None:
        class Step:
            def execute(self, step: dict[str, Any], context: Any) -> Any:
                return None

        def plugin(name: str) -> type:
            class P:
                def init(self, config: Any) -> Any:
                    return None

                def get_metadata(self, state: Any) -> dict[str, Any]:
                    return {"name": name, "version": "1.0", "api_version": 1}

                def get_step_types(self, state: Any) -> Any:
                    return [("shared", Step)]

            return P

        rt.plugins.load_plugin("first", plugin("first"))
        with pytest.raises(PluginError) as info:
            rt.plugins.load_plugin("dup", plugin("dup"))
        message = info.value.message
        assert info.value.code == "component_conflict"
        assert "'dup''s" not in message and "refusing every step type of 'dup'" in message
        assert "overrides: [shared]" in message
        rt.plugins.load_plugin("dup2", plugin("dup2"), overrides=("shared",))
        assert rt.steps.owner("shared") == "dup2"


def test_errors_are_typed(rt: Runtime) -> None:
    with pytest.raises(PipelineExError):
        rt.plugins.load_plugin("x", extension_plugin("x", workflow_props(y={"$ref": "#/no"})))
