"""prompts.py: static, file and previous_response parts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from wf_helpers import RecordingProvider

from pipeline_ex import Runtime
from pipeline_ex.errors import StepFailedError


def claude(name: str, *parts: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "claude", "prompt": list(parts), **extra}


def static(content: Any) -> dict[str, Any]:
    return {"type": "static", "content": content}


def previous(step: str, **extra: Any) -> dict[str, Any]:
    return {"type": "previous_response", "step": step, **extra}


def test_parts_are_joined_with_a_newline(
    run: Callable[..., dict[str, Any]],
    wf: Callable[..., dict[str, Any]],
    recorders: dict[str, RecordingProvider],
) -> None:
    run(wf(claude("a", static("one"), static("two"), static(3))))
    assert recorders["claude"].prompts == ["one\ntwo\n3"]


def test_previous_response_whole_extract_and_mapping_json(
    run: Callable[..., dict[str, Any]],
    wf: Callable[..., dict[str, Any]],
    recorders: dict[str, RecordingProvider],
) -> None:
    data = {"summary": "short", "nested": {"k": [1, 2]}, "n": 4}
    run(
        wf(
            {"name": "data", "type": "test_echo", "value": data},
            {"name": "plain", "type": "test_echo", "value": "just text"},
            claude(
                "a",
                previous("data", extract="summary"),
                previous("data", extract="nested"),
                previous("data", extract="nested.k.1"),
                previous("data", extract="n"),
                previous("data"),
                previous("plain"),
            ),
        )
    )
    lines = recorders["claude"].prompts[0].split("\n")
    assert lines[0] == "short"
    assert json.loads(lines[1]) == {"k": [1, 2]}
    assert lines[2] == "2"
    assert lines[3] == "4"
    assert json.loads(lines[4]) == data
    assert lines[5] == "just text"


def test_claude_then_gemini_chain_with_extract_text(
    run: Callable[..., dict[str, Any]], wf: Callable[..., dict[str, Any]]
) -> None:
    results = run(
        wf(
            claude("plan", static("Write a plan")),
            {
                "name": "critique",
                "type": "gemini",
                "prompt": [static("Critique:"), previous("plan", extract="text")],
            },
        )
    )
    assert results["plan"]["text"] == "Mock response for: Write a plan"
    assert results["critique"]["text"] == (
        "Mock response for: Critique:\nMock response for: Write a plan"
    )


def test_strict_extract_of_a_missing_field_fails_the_step(
    run: Callable[..., dict[str, Any]], wf: Callable[..., dict[str, Any]]
) -> None:
    with pytest.raises(StepFailedError) as info:
        run(
            wf(
                {"name": "data", "type": "test_echo", "value": {"a": 1}},
                claude("a", previous("data", extract="b.c")),
            )
        )
    assert info.value.step_name == "a"
    assert "'b.c'" in info.value.reason


def test_non_strict_extract_of_a_missing_field_gives_empty_text(
    run: Callable[..., dict[str, Any]],
    wf: Callable[..., dict[str, Any]],
    recorders: dict[str, RecordingProvider],
) -> None:
    run(
        wf(
            {"name": "data", "type": "test_echo", "value": {"a": 1}},
            claude(
                "a",
                static("before"),
                previous("data", extract="zz", strict=False),
                static("after"),
            ),
        )
    )
    assert recorders["claude"].prompts == ["before\n\nafter"]


def test_non_strict_reference_to_a_skipped_step(
    run: Callable[..., dict[str, Any]],
    wf: Callable[..., dict[str, Any]],
    recorders: dict[str, RecordingProvider],
) -> None:
    results = run(
        wf(
            {"name": "maybe", "type": "test_echo", "value": {"t": "x"}, "condition": False},
            claude("a", previous("maybe", extract="t", strict=False), static("end")),
        )
    )
    assert results["maybe"]["skipped"] is True
    assert recorders["claude"].prompts == ["\nend"]


def test_file_parts_relative_to_the_workflow(
    runtime: Runtime, tmp_path: Path, recorders: dict[str, RecordingProvider]
) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "intro.md").write_text("From a file.", encoding="utf-8")
    workflow = tmp_path / "workflow.yaml"
    workflow.write_text(
        "workflow:\n  name: files\n  steps:\n    - name: a\n      type: claude\n"
        "      prompt:\n        - type: file\n          path: prompts/intro.md\n"
        "        - type: static\n          content: Then this.\n"
    )
    runtime.run(workflow, output_dir=tmp_path / "out")
    assert recorders["claude"].prompts == ["From a file.\nThen this."]


@pytest.mark.parametrize(
    "path",
    ["../secret.txt", "prompts/../../secret.txt", "/etc/hostname", "{{inputs.where}}"],
)
def test_file_parts_outside_the_workflow_folder_are_refused(
    runtime: Runtime, tmp_path: Path, path: str
) -> None:
    inner = tmp_path / "inner"
    inner.mkdir()
    (tmp_path / "secret.txt").write_text("secret")
    workflow = inner / "workflow.yaml"
    workflow.write_text(
        "workflow:\n  name: files\n  steps:\n    - name: a\n      type: claude\n"
        f"      prompt:\n        - type: file\n          path: '{path}'\n"
    )
    with pytest.raises(StepFailedError) as info:
        runtime.run(workflow, inputs={"where": str(tmp_path / "secret.txt")})
    assert info.value.step_name == "a"
    assert info.value.step_type == "claude"
    assert "escapes" in info.value.reason


def test_symlink_out_of_the_folder_is_refused(runtime: Runtime, tmp_path: Path) -> None:
    inner = tmp_path / "inner"
    inner.mkdir()
    (tmp_path / "secret.txt").write_text("secret")
    (inner / "link.txt").symlink_to(tmp_path / "secret.txt")
    workflow = inner / "workflow.yaml"
    workflow.write_text(
        "workflow:\n  name: files\n  steps:\n    - name: a\n      type: claude\n"
        "      prompt:\n        - type: file\n          path: link.txt\n"
    )
    with pytest.raises(StepFailedError, match="escapes"):
        runtime.run(workflow)


def test_missing_file_part_is_a_step_failure(runtime: Runtime, tmp_path: Path) -> None:
    workflow = tmp_path / "workflow.yaml"
    workflow.write_text(
        "workflow:\n  name: files\n  steps:\n    - name: a\n      type: gemini\n"
        "      prompt:\n        - type: file\n          path: absent.md\n"
    )
    with pytest.raises(StepFailedError, match=r"cannot read prompt file 'absent\.md'") as info:
        runtime.run(workflow)
    assert info.value.step_type == "gemini"


def test_templates_in_prompt_parts(
    run: Callable[..., dict[str, Any]],
    wf: Callable[..., dict[str, Any]],
    recorders: dict[str, RecordingProvider],
) -> None:
    run(
        wf(claude("a", static("Topic: {{inputs.topic}}; data {{inputs.data}}"))),
        inputs={"topic": "owls", "data": {"k": 1}},
    )
    assert recorders["claude"].prompts == ['Topic: owls; data {"k": 1}']
