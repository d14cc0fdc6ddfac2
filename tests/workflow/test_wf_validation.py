"""validation.py: schema first, then meaning; every problem names file, path and line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline_ex import Runtime
from pipeline_ex.errors import (
    DocumentError,
    InvalidInputError,
    SchemaValidationError,
    WorkflowSemanticError,
)


def problems_of(error: DocumentError) -> dict[str, tuple[int | None, str]]:
    return {p.location.path: (p.location.line, p.message) for p in error.problems}


def test_semantic_problems_are_all_reported_with_locations(
    runtime: Runtime, write: Callable[..., Path]
) -> None:
    path = write(
        "workflow:\n"  # 1
        "  name: semantic\n"  # 2
        "  steps:\n"  # 3
        "    - name: a\n"  # 4
        "      type: teleport\n"  # 5
        "    - name: a\n"  # 6
        "      type: claude\n"  # 7
        "      prompt:\n"  # 8
        "        - type: previous_response\n"  # 9
        "          step: later\n"  # 10
        "        - type: previous_response\n"  # 11
        "          step: ghost\n"  # 12
        "        - type: image\n"  # 13
        "    - name: later\n"  # 14
        "      type: test_echo\n"  # 15
        "      condition: 'x >'\n"  # 16
    )
    with pytest.raises(WorkflowSemanticError) as info:
        runtime.validate(path)
    error = info.value
    assert error.code == "workflow_invalid"
    assert isinstance(error, InvalidInputError)
    found = problems_of(error)
    assert found["workflow.steps[0].type"][0] == 5
    assert "unknown step type 'teleport'" in found["workflow.steps[0].type"][1]
    assert "claude" in found["workflow.steps[0].type"][1]  # lists what is registered
    assert found["workflow.steps[1].name"][0] == 6
    assert "duplicate step name 'a'" in found["workflow.steps[1].name"][1]
    assert found["workflow.steps[1].prompt[0].step"][0] == 10
    assert "'later', which is a later step" in found["workflow.steps[1].prompt[0].step"][1]
    assert found["workflow.steps[1].prompt[1].step"][0] == 12
    assert "no step of that name" in found["workflow.steps[1].prompt[1].step"][1]
    assert found["workflow.steps[1].prompt[2].type"][0] == 13
    assert "unsupported prompt part type 'image'" in found["workflow.steps[1].prompt[2].type"][1]
    assert found["workflow.steps[2].condition"][0] == 16
    for problem in error.problems:
        assert problem.location.file == str(path)
        assert f"{path}:{problem.location.line} at {problem.location.path}" in str(error)


def test_nested_steps_are_checked(runtime: Runtime, write: Callable[..., Path]) -> None:
    path = write(
        "workflow:\n"
        "  name: nested\n"
        "  steps:\n"
        "    - name: outer\n"
        "      type: test_echo\n"
        "    - name: loop\n"
        "      type: for_loop\n"
        "      iterator: x\n"
        "      data_source: [1]\n"
        "      steps:\n"
        "        - name: inner\n"
        "          type: warp\n"
        "        - name: uses_outer\n"
        "          type: claude\n"
        "          prompt:\n"
        "            - type: previous_response\n"
        "              step: outer\n"
        "            - type: previous_response\n"
        "              step: inner\n"
        "            - type: previous_response\n"
        "              step: after\n"
        "    - name: after\n"
        "      type: test_echo\n"
    )
    with pytest.raises(WorkflowSemanticError) as info:
        runtime.validate(path)
    found = problems_of(info.value)
    assert set(found) == {
        "workflow.steps[1].steps[0].type",
        "workflow.steps[1].steps[1].prompt[2].step",
    }
    assert found["workflow.steps[1].steps[0].type"][0] == 12
    assert "a later step" in found["workflow.steps[1].steps[1].prompt[2].step"][1]
    assert "'warp'" in found["workflow.steps[1].steps[0].type"][1]


def test_parallel_task_prompts_are_checked(
    runtime: Runtime, wf: Callable[..., dict[str, object]]
) -> None:
    document = wf(
        {
            "name": "fan",
            "type": "parallel_claude",
            "parallel_tasks": [
                {"id": "t1", "prompt": [{"type": "previous_response", "step": "nope"}]}
            ],
        }
    )
    with pytest.raises(WorkflowSemanticError) as info:
        runtime.validate(document)
    assert "workflow.steps[0].parallel_tasks[0].prompt[0].step" in problems_of(info.value)


@pytest.mark.parametrize(
    ("step", "path", "text"),
    [
        (
            {"name": "l", "type": "for_loop", "steps": [{"name": "x", "type": "test_echo"}]},
            "workflow.steps[0]",
            "for_loop needs 'iterator'",
        ),
        (
            {"name": "w", "type": "while_loop", "steps": [{"name": "x", "type": "test_echo"}]},
            "workflow.steps[0]",
            "while_loop needs 'condition'",
        ),
        (
            {"name": "s", "type": "set_variable", "variables": {}},
            "workflow.steps[0].variables",
            "non-empty 'variables'",
        ),
        (
            {"name": "s", "type": "set_variable", "variable": "x", "value": 1},
            "workflow.steps[0].variables",
            "'variable'/'value'",
        ),
        (
            {"name": "c", "type": "test_echo", "condition": {"xor": ["a"]}},
            "workflow.steps[0].condition",
            "and/or/not",
        ),
        (
            {"name": "c", "type": "test_echo", "condition": "f(x)"},
            "workflow.steps[0].condition",
            "unsupported expression",
        ),
    ],
)
def test_step_type_checks(
    runtime: Runtime,
    wf: Callable[..., dict[str, object]],
    step: dict[str, object],
    path: str,
    text: str,
) -> None:
    with pytest.raises(WorkflowSemanticError) as info:
        runtime.validate(wf(step))
    messages = [p.message for p in info.value.problems if p.location.path == path]
    assert any(text in message for message in messages), messages


def test_schema_errors_come_with_unknown_step_types(
    runtime: Runtime, write: Callable[..., Path]
) -> None:
    path = write(
        "workflow:\n"
        "  name: mixed\n"
        "  steps:\n"
        "    - name: a\n"
        "      type: claude_smart\n"
        "      prompt: |\n"
        "        A prompt given as text, which pipeline_ex's claude does not take.\n"
    )
    with pytest.raises(SchemaValidationError) as info:
        runtime.validate(path)
    found = problems_of(info.value)
    assert found["workflow.steps[0].prompt"][0] == 6
    assert "expected array, found string" in found["workflow.steps[0].prompt"][1]
    assert found["workflow.steps[0].type"][0] == 5
    assert "unknown step type 'claude_smart'" in found["workflow.steps[0].type"][1]


def test_document_without_a_workflow_key(runtime: Runtime, write: Callable[..., Path]) -> None:
    path = write("name: genesis\nsteps: []\n")
    with pytest.raises(SchemaValidationError) as info:
        runtime.validate(path)
    message = str(info.value)
    assert "top-level 'workflow'" in message
    assert "'name', 'steps'" in message
    assert f"{path}:1" in message


def test_validate_runs_nothing(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    document = {
        "workflow": {
            "name": "quiet",
            "steps": [
                {
                    "name": "boom",
                    "type": "test_echo",
                    "error_message": "would fail",
                    "output_to_file": "x.txt",
                }
            ],
            "output_dir": "out",
        }
    }
    validated = runtime.validate(document)
    assert validated.data["workflow"]["name"] == "quiet"
    assert not (tmp_path / "out").exists()


def test_mapping_documents_have_no_file_but_still_a_path(
    runtime: Runtime, wf: Callable[..., dict[str, object]]
) -> None:
    with pytest.raises(WorkflowSemanticError) as info:
        runtime.validate(wf({"name": "a", "type": "nope"}))
    problem = info.value.problems[0]
    assert problem.location.file is None
    assert problem.location.path == "workflow.steps[0].type"
    assert str(problem).startswith("<document> at workflow.steps[0].type")


@pytest.mark.parametrize(
    ("part", "needed"),
    [
        ({"type": "static"}, "content"),
        ({"type": "file"}, "path"),
        ({"type": "previous_response"}, "step"),
    ],
)
def test_each_prompt_part_type_needs_its_key(part: dict[str, str], needed: str) -> None:
    from pipeline_ex import Runtime
    from pipeline_ex.errors import WorkflowSemanticError

    workflow = {
        "workflow": {"name": "w", "steps": [{"name": "s", "type": "claude", "prompt": [part]}]}
    }
    with pytest.raises(WorkflowSemanticError) as info:
        Runtime().validate(workflow)
    (problem,) = info.value.problems
    assert problem.location.path == "workflow.steps[0].prompt[0]"
    assert problem.message == f"a {part['type']} prompt part needs {needed!r}"
