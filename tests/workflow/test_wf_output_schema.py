"""output_schema: a step's result is checked against it; composition merges across extensions."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline_ex import Runtime
from pipeline_ex.configuration import ConfigurationSystem
from pipeline_ex.errors import SchemaValidationError, StepFailedError

SCHEMA = {
    "type": "object",
    "required": ["score"],
    "properties": {"score": {"type": "number", "minimum": 0, "maximum": 10}},
}


def _workflow(step: dict[str, Any]) -> dict[str, Any]:
    return {"workflow": {"name": "w", "steps": [{"name": "s", **step}]}}


def test_provider_reply_is_checked_as_json(runtime: Runtime) -> None:
    mock = runtime.providers.get("mock_claude")
    mock.set_response_pattern("rate", '```json\n{"score": 7}\n```')
    step = {
        "type": "claude",
        "output_schema": SCHEMA,
        "prompt": [{"type": "static", "content": "rate it"}],
    }
    assert runtime.run(_workflow(step))["s"]["text"].startswith("```json")

    mock.set_response_pattern("harshly", '{"score": 11}')
    step["prompt"] = [{"type": "static", "content": "harshly"}]
    with pytest.raises(StepFailedError) as info:
        runtime.run(_workflow(step))
    assert info.value.cause_code == "output_schema_mismatch"
    assert "output.score" in info.value.reason and "11" in info.value.reason

    mock.set_response_pattern("prose", "It is fine.")
    step["prompt"] = [{"type": "static", "content": "prose"}]
    with pytest.raises(StepFailedError) as info:
        runtime.run(_workflow(step))
    assert "not JSON" in info.value.reason


def test_other_results_are_checked_as_they_are(runtime: Runtime) -> None:
    ok = {"type": "test_echo", "value": {"score": 3}, "output_schema": SCHEMA}
    assert runtime.run(_workflow(ok))["s"] == {"score": 3}
    bad = {"type": "test_echo", "value": {"points": 3}, "output_schema": SCHEMA}
    with pytest.raises(StepFailedError) as info:
        runtime.run(_workflow(bad))
    assert "'score' is a required property" in info.value.reason


def test_a_broken_output_schema_is_a_validation_error(runtime: Runtime) -> None:
    step = {"type": "test_echo", "value": 1, "output_schema": {"type": "objectish"}}
    with pytest.raises(SchemaValidationError) as info:
        runtime.validate(_workflow(step))
    assert "workflow.steps[0].output_schema" in str(info.value)


def test_composition_keywords_merge_under_all_of() -> None:
    config = ConfigurationSystem()
    one = {
        "properties": {
            "workflow": {
                "anyOf": [{"required": ["description"]}, {"required": ["version"]}],
                "allOf": [{"properties": {"name": {"maxLength": 40}}}],
            }
        }
    }
    two = {
        "properties": {
            "workflow": {
                "anyOf": [{"required": ["defaults"]}],
                "if": {"required": ["output_dir"]},
                "then": {"required": ["workspace_dir"]},
                "allOf": [{"properties": {"name": {"pattern": "^[a-z_]+$"}}}],
            }
        }
    }
    three = {
        "properties": {
            "workflow": {
                "if": {"required": ["global_vars"]},
                "then": {"required": ["description"]},
            }
        }
    }
    config.register_extensions({"one": one}, "a")
    config.register_extensions({"two": two, "three": three}, "b")
    steps = [{"name": "s", "type": "test_echo"}]

    def problems(workflow: dict[str, Any]) -> list[str]:
        return [
            p.message for p in config.problems(_doc({"name": "ok", "steps": steps, **workflow}))
        ]

    # both anyOf constraints hold, both allOf lists apply, both conditionals apply
    assert problems({"description": "d", "defaults": {}}) == []
    assert problems({"description": "d"})  # the second anyOf fails
    assert problems({"defaults": {}, "version": "1", "name": "Bad Name"})  # pattern
    assert problems({"description": "d", "defaults": {}, "output_dir": "o"})  # if/then of two
    assert problems({"version": "1", "defaults": {}, "global_vars": {}})  # if/then of three
    assert problems({"version": "1", "defaults": {}, "global_vars": {}, "description": "d"}) == []


def _doc(workflow: dict[str, Any]) -> Any:
    from pipeline_ex.documents import Document

    return Document({"workflow": workflow})


def test_shipped_schema_is_a_valid_draft_2020_12_schema() -> None:
    from jsonschema import Draft202012Validator

    from pipeline_ex.configuration import base_workflow_schema

    Draft202012Validator.check_schema(base_workflow_schema())
