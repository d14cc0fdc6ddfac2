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

    # Registered providers are frozen handles; a test swaps the answer on purpose.
    object.__setattr__(mock, "query", flaky)
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


def test_a_step_type_unloaded_mid_run_fails_the_step(runtime: Runtime) -> None:
    class Unloader:
        def execute(self, step: dict[str, Any], context: Any) -> Any:
            runtime.plugins.unload_plugin("json_yaml_bridge")
            return {"success": True}

    runtime.steps.register_batch({"unloader": Unloader()}, "tests")
    workflow = {
        "workflow": {
            "name": "w",
            "steps": [
                {"name": "a", "type": "unloader"},
                {"name": "b", "type": "format_convert", "source": "{}", "to": "yaml"},
            ],
        }
    }
    events: list[str] = []
    with pytest.raises(StepFailedError) as info:
        runtime.run(workflow, on_event=lambda kind, data: events.append(f"{kind}:{data['name']}"))
    assert info.value.step_name == "b" and info.value.cause_code == "unknown_step_type"
    assert events[-1] == "step_failed:b"


def test_a_preflight_that_raises_is_a_step_failure(runtime: Runtime) -> None:
    class Broken:
        def preflight(self, step: Any, context: Any) -> None:
            raise ValueError("boom in preflight")

        def execute(self, step: Any, context: Any) -> Any:
            return None

    runtime.steps.register_batch({"broken": Broken()}, "tests")
    with pytest.raises(StepFailedError) as info:
        runtime.run({"workflow": {"name": "w", "steps": [{"name": "s", "type": "broken"}]}})
    assert info.value.cause_code == "crashed" and "boom in preflight" in info.value.reason
