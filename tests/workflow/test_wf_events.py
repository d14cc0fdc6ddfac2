"""Run events and partial failure reporting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline_ex import Runtime
from pipeline_ex.errors import InvalidInputError, ProviderError, StepFailedError


def test_step_failed_is_emitted_at_each_level(runtime: Runtime) -> None:
    events: list[tuple[str, str]] = []
    workflow = {
        "workflow": {
            "name": "w",
            "steps": [
                {"name": "ok", "type": "test_echo", "value": 1},
                {
                    "name": "loop",
                    "type": "for_loop",
                    "iterator": "x",
                    "data_source": [1],
                    "steps": [{"name": "boom", "type": "test_echo", "error_message": "nope"}],
                },
            ],
        }
    }
    with pytest.raises(StepFailedError) as info:
        runtime.run(workflow, on_event=lambda kind, data: events.append((kind, data["name"])))
    assert info.value.step_name == "boom"
    assert events == [
        ("step_started", "ok"),
        ("step_finished", "ok"),
        ("step_started", "loop"),
        ("step_started", "boom"),
        ("step_failed", "boom"),
        ("step_failed", "loop"),
    ]


def test_parallel_claude_keeps_the_other_answers_when_one_task_fails(runtime: Runtime) -> None:
    mock = runtime.providers.get("mock_claude")
    original = mock.query

    def flaky(prompt: str, options: dict[str, Any]) -> dict[str, Any]:
        if "second" in prompt:
            raise ProviderError("rate limited (retry after 3s)", code="rate_limited")
        return original(prompt, options)

    mock.query = flaky
    workflow = {
        "workflow": {
            "name": "w",
            "steps": [
                {
                    "name": "par",
                    "type": "parallel_claude",
                    "parallel_tasks": [
                        {"id": "a", "prompt": [{"type": "static", "content": "first"}]},
                        {"id": "b", "prompt": [{"type": "static", "content": "second"}]},
                    ],
                }
            ],
        }
    }
    with pytest.raises(StepFailedError) as info:
        runtime.run(workflow)
    reply = info.value.results["par"]
    assert reply["results"]["a"]["text"] == "Mock response for: first"
    assert reply["results"]["b"]["code"] == "rate_limited"
    assert "b: rate limited (retry after 3s)" in info.value.reason


def test_a_bad_mock_responses_file_is_the_callers_input_error(tmp_path: Path) -> None:
    fixtures = tmp_path / "mocks.yaml"
    fixtures.write_text("llama:\n  x: y\n")
    with pytest.raises(InvalidInputError) as info:
        Runtime(mock_responses=fixtures)
    assert "llama" in str(info.value) and str(fixtures) in str(info.value)
