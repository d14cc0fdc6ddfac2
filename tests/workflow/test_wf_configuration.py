"""configuration.py: base schema, named extensions deep-merged, validation with locations."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from pipeline_ex import Runtime
from pipeline_ex.configuration import ConfigurationSystem, base_workflow_schema
from pipeline_ex.documents import load_yaml
from pipeline_ex.errors import (
    ComponentConflictError,
    InvalidInputError,
    SchemaExtensionConflict,
    SchemaValidationError,
    UnknownComponentError,
)
from pipeline_ex.workflow.validation import semantic_problems


def workflow_ext(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    """An extension in the shape of pipeline_ex's dspy extension."""
    inner: dict[str, Any] = {"properties": properties}
    if required is not None:
        inner["required"] = required
    return {"properties": {"workflow": inner}}


VALID = {"workflow": {"name": "ok", "steps": [{"name": "a", "type": "test_echo"}]}}


@pytest.fixture
def config() -> ConfigurationSystem:
    return ConfigurationSystem()


class TestBaseSchema:
    def test_is_draft_2020_12(self) -> None:
        assert base_workflow_schema()["$schema"].endswith("2020-12/schema")

    def test_valid_document_passes(self, config: ConfigurationSystem) -> None:
        config.validate(VALID)

    def test_errors_name_path_and_line(self, config: ConfigurationSystem) -> None:
        doc = load_yaml(
            "workflow:\n"
            "  name: bad\n"
            "  steps:\n"
            "    - name: a\n"
            "      type: claude\n"
            "      max_parallel: 0\n"
            "      prompt:\n"
            "        - type: static\n"
            "        - type: previous_response\n"
            "          step: 3\n",
            "bad.yaml",
        )
        with pytest.raises(SchemaValidationError) as info:
            config.validate(doc)
        error = info.value
        assert error.code == "schema_invalid"
        assert isinstance(error, InvalidInputError)
        where = {(p.location.path, p.location.line) for p in error.problems}
        assert ("workflow.steps[0].max_parallel", 6) in where
        assert ("workflow.steps[0].prompt[1].step", 10) in where
        assert all(p.location.file == "bad.yaml" for p in error.problems)
        assert "bad.yaml:6 at workflow.steps[0].max_parallel" in str(error)
        # a part's type-specific key is a meaning check (no schema if/then per part, which
        # tripled validation time): reported by the semantic pass, with path and line
        semantic = semantic_problems(doc, Runtime().steps)
        assert [(p.location.path, p.location.line, p.message) for p in semantic] == [
            ("workflow.steps[0].prompt[0]", 8, "a static prompt part needs 'content'"),
            (
                "workflow.steps[0].prompt[1].step",
                10,
                "previous_response refers to 3, which is no step of that name",
            ),
        ]

    @pytest.mark.parametrize(
        ("document", "path"),
        [
            ({}, ""),
            ({"workflow": {"steps": [{"name": "a", "type": "t"}]}}, "workflow"),
            ({"workflow": {"name": "x", "steps": []}}, "workflow.steps"),
            ({"workflow": {"name": "x", "steps": [{"type": "t"}]}}, "workflow.steps[0]"),
            ({"workflow": {"name": "x", "steps": "no"}}, "workflow.steps"),
            ({"workflow": {"name": 3, "steps": [{"name": "a", "type": "t"}]}}, "workflow.name"),
        ],
    )
    def test_shape_errors(
        self, config: ConfigurationSystem, document: dict[str, Any], path: str
    ) -> None:
        with pytest.raises(SchemaValidationError) as info:
            config.validate(document)
        assert path in [p.location.path for p in info.value.problems]

    def test_long_values_are_shortened_in_messages(self, config: ConfigurationSystem) -> None:
        prompt = "x" * 5000
        document = {
            "workflow": {"name": "x", "steps": [{"name": "a", "type": "claude", "prompt": prompt}]}
        }
        with pytest.raises(SchemaValidationError) as info:
            config.validate(document)
        message = info.value.problems[0].message
        assert "expected array, found string" in message
        assert len(message) < 200

    def test_unknown_keys_in_provider_options_are_accepted(
        self, config: ConfigurationSystem
    ) -> None:
        config.validate(
            {
                "workflow": {
                    "name": "x",
                    "steps": [
                        {
                            "name": "a",
                            "type": "claude",
                            "claude_options": {"max_turns": 3, "anything_new": {"x": 1}},
                            "gemini_options": {"whatever": True},
                            "some_future_key": 1,
                        }
                    ],
                }
            }
        )


class TestExtensions:
    def test_properties_merge_and_required_union(self, config: ConfigurationSystem) -> None:
        config.register_extensions(
            {"dspy": workflow_ext({"dspy_config": {"type": "object"}}, ["dspy_config"])}, "p1"
        )
        config.register_extensions(
            {"meta": workflow_ext({"owner": {"type": "string"}}, ["owner", "name"])}, "p2"
        )
        schema = config.compiled_schema()
        workflow = schema["properties"]["workflow"]
        assert {"dspy_config", "owner", "name", "steps"} <= set(workflow["properties"])
        assert sorted(workflow["required"]) == ["dspy_config", "name", "owner", "steps"]
        # the base keeps its own definitions
        assert workflow["properties"]["steps"] == {"$ref": "#/$defs/steps"}

    def test_compiled_schema_by_names(self, config: ConfigurationSystem) -> None:
        config.register_extensions({"a": workflow_ext({"x": {"type": "string"}}, ["x"])}, "p1")
        config.register_extensions({"b": workflow_ext({"y": {"type": "string"}}, ["y"])}, "p2")
        only_a = config.compiled_schema(["a"])["properties"]["workflow"]
        assert "x" in only_a["properties"] and "y" not in only_a["properties"]
        assert config.compiled_schema([]) == config.base_schema
        with pytest.raises(UnknownComponentError) as info:
            config.compiled_schema(["a", "zzz"])
        assert isinstance(info.value, KeyError)
        assert "a, b" in str(info.value)

    def test_validate_uses_the_extensions(self, config: ConfigurationSystem) -> None:
        config.register_extensions(
            {"dspy": workflow_ext({"dspy_config": {"type": "object"}}, ["dspy_config"])}, "p1"
        )
        with pytest.raises(SchemaValidationError, match="'dspy_config' is a required property"):
            config.validate(VALID)
        config.validate(VALID, names=[])
        config.validate({"workflow": {**VALID["workflow"], "dspy_config": {}}})
        with pytest.raises(SchemaValidationError, match="expected object"):
            config.validate({"workflow": {**VALID["workflow"], "dspy_config": 3}})

    def test_conflict_names_both_extensions(self, config: ConfigurationSystem) -> None:
        config.register_extensions({"first": workflow_ext({"k": {"type": "object"}})}, "p1")
        with pytest.raises(SchemaExtensionConflict) as info:
            config.register_extensions({"second": workflow_ext({"k": {"type": "string"}})}, "p2")
        message = str(info.value)
        assert "'first'" in message and "'second'" in message
        assert "/properties/workflow/properties/k/type" in message
        assert list(config) == ["first"]  # nothing of the refused one was kept

    def test_conflict_names_the_most_specific_owner(self, config: ConfigurationSystem) -> None:
        config.register_extensions({"outer": workflow_ext({"k": {"type": "object"}})}, "p1")
        config.register_extensions(
            {"inner": workflow_ext({"k": {"properties": {"v": {"type": "string"}}}})}, "p2"
        )
        with pytest.raises(SchemaExtensionConflict) as info:
            config.register_extensions(
                {"third": workflow_ext({"k": {"properties": {"v": {"type": "integer"}}}})}, "p3"
            )
        assert "'inner'" in str(info.value)
        assert "'outer'" not in str(info.value)

    def test_conflict_with_the_base_schema(self, config: ConfigurationSystem) -> None:
        with pytest.raises(SchemaExtensionConflict, match="the base schema"):
            config.register_extensions(
                {"bad": {"properties": {"workflow": {"type": "array"}}}}, "p1"
            )

    def test_conflict_inside_one_batch_keeps_nothing(self, config: ConfigurationSystem) -> None:
        with pytest.raises(SchemaExtensionConflict, match=r"'f'.*'g'|'g'.*'f'"):
            config.register_extensions(
                {
                    "f": workflow_ext({"z": {"type": "string"}}),
                    "g": workflow_ext({"z": {"type": "integer"}}),
                },
                "p1",
            )
        assert len(config) == 0

    def test_equal_values_merge(self, config: ConfigurationSystem) -> None:
        config.register_extensions({"a": workflow_ext({"k": {"type": "string"}})}, "p1")
        config.register_extensions({"b": workflow_ext({"k": {"type": "string"}})}, "p2")
        assert set(config) == {"a", "b"}

    def test_invalid_fragment_is_refused(self, config: ConfigurationSystem) -> None:
        with pytest.raises(SchemaExtensionConflict, match="not a valid JSON Schema"):
            config.register_extensions({"e": {"type": "no-such-type"}}, "p1")
        with pytest.raises(SchemaExtensionConflict, match="not a mapping"):
            config.register_extensions({"e": ["x"]}, "p1")  # type: ignore[dict-item]

    def test_name_owned_by_another_is_a_component_conflict(
        self, config: ConfigurationSystem
    ) -> None:
        config.register_extensions({"shared": workflow_ext({"a": {}})}, "p1")
        with pytest.raises(ComponentConflictError) as info:
            config.register_extensions({"shared": workflow_ext({"b": {}})}, "p2")
        assert info.value.code == "component_conflict"

    def test_unregistering_recompiles(self, config: ConfigurationSystem) -> None:
        config.register_extensions({"req": workflow_ext({"x": {}}, ["x"])}, "p1")
        with pytest.raises(SchemaValidationError):
            config.validate(VALID)
        config.unregister_owner("p1")
        config.validate(VALID)

    def test_reload_under_the_same_name_is_seen(self, config: ConfigurationSystem) -> None:
        config.register_extensions({"x": workflow_ext({"a": {"type": "string"}})}, "p1")
        config.validate({"workflow": {**VALID["workflow"], "a": "text"}})
        config.register_extensions({"x": workflow_ext({"a": {"type": "integer"}})}, "p1", swap=True)
        with pytest.raises(SchemaValidationError):
            config.validate({"workflow": {**VALID["workflow"], "a": "text"}})

    def test_compiles_stay_consistent_under_concurrent_swaps(
        self, config: ConfigurationSystem
    ) -> None:
        """Readers racing a writer always validate against one whole extension set."""
        string_doc = {"workflow": {**VALID["workflow"], "a": "text"}}
        int_doc = {"workflow": {**VALID["workflow"], "a": 1}}
        config.register_extensions({"x": workflow_ext({"a": {"type": "string"}})}, "p1")
        stop = threading.Event()
        errors: list[BaseException] = []

        def reader() -> None:
            while not stop.is_set():
                for doc in (string_doc, int_doc):
                    try:
                        config.validate(doc)
                    except SchemaValidationError:
                        pass
                    except BaseException as exc:  # pragma: no cover - reported below
                        errors.append(exc)
                        return

        threads = [threading.Thread(target=reader) for _ in range(4)]
        for thread in threads:
            thread.start()
        for index in range(61):  # ends on a swap to 'string'
            kind = "integer" if index % 2 else "string"
            config.register_extensions({"x": workflow_ext({"a": {"type": kind}})}, "p1", swap=True)
        stop.set()
        for thread in threads:
            thread.join()
        assert not errors
        # after the last swap (to string) the cache must not hold a stale schema
        config.validate(string_doc)
        with pytest.raises(SchemaValidationError):
            config.validate(int_doc)

    def test_a_swap_during_a_compile_leaves_no_stale_cache(
        self, config: ConfigurationSystem, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Deterministic form of the race: a writer swaps while a reader is compiling."""
        string_doc = {"workflow": {**VALID["workflow"], "a": "text"}}
        config.register_extensions({"x": workflow_ext({"a": {"type": "integer"}})}, "p1")
        real_merge = config._merge
        swapped = False

        def merge_then_swap(names: tuple[str, ...], source: Any) -> dict[str, Any]:
            nonlocal swapped
            schema = real_merge(names, source)
            if not swapped:
                swapped = True
                config.register_extensions(
                    {"x": workflow_ext({"a": {"type": "string"}})}, "p1", swap=True
                )
            return schema

        monkeypatch.setattr(config, "_merge", merge_then_swap)
        with pytest.raises(SchemaValidationError):
            config.validate(string_doc)  # compiled from the snapshot it started with
        config.validate(string_doc)  # the new extension is in force afterwards
