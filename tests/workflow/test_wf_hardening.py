"""Hostile workflows and inputs: typed failures, bounded time and memory, nothing escapes."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from pipeline_ex import Runtime
from pipeline_ex.errors import InvalidInputError, StepFailedError
from pipeline_ex.workflow.context import StepBudget
from pipeline_ex.workflow.executor import output_value
from pipeline_ex.workflow.expressions import ExpressionError, evaluate


def _wf(*steps: dict[str, Any]) -> dict[str, Any]:
    return {"workflow": {"name": "w", "steps": list(steps)}}


@pytest.mark.parametrize("target", [".", "a/..", "x\u0000y"])
def test_output_to_file_cannot_replace_the_output_folder(
    runtime: Runtime, tmp_path: Path, target: str
) -> None:
    out = tmp_path / "out"
    step = {"name": "s", "type": "test_echo", "value": "x", "output_to_file": target}
    with pytest.raises(StepFailedError) as info:
        runtime.run(_wf(step), output_dir=out)
    assert info.value.step_name == "s"
    assert not out.is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_failed_write_leaves_no_temporary_file(runtime: Runtime, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "taken").mkdir(parents=True)  # a folder where the file should go
    step = {"name": "s", "type": "test_echo", "value": "x", "output_to_file": "taken"}
    with pytest.raises(StepFailedError) as info:
        runtime.run(_wf(step), output_dir=out)
    assert info.value.cause_code == "io_error"
    assert [p.name for p in out.iterdir()] == ["taken"]


def test_prompt_files_must_be_regular_utf8_files(runtime: Runtime, tmp_path: Path) -> None:
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    os.mkfifo(tmp_path / "pipe")
    workflow = tmp_path / "wf.yaml"
    for name, fragment in (("latin1.txt", "not UTF-8"), ("pipe", "not a regular file")):
        workflow.write_text(
            "workflow:\n  name: w\n  steps:\n    - name: s\n      type: claude\n"
            f"      prompt:\n        - type: file\n          path: {name}\n"
        )
        with pytest.raises(StepFailedError) as info:
            runtime.run(workflow)
        assert fragment in info.value.reason and info.value.cause_code == "prompt_error"


def test_expansions_are_weighed_before_they_are_built() -> None:
    # CPU time of this thread, not wall time: a busy machine must not fail a complexity check.
    started = time.thread_time()
    with pytest.raises(ExpressionError):
        evaluate("[[['x' * 100] * 1000] * 1000] * 1000", lambda name: None)
    with pytest.raises(ExpressionError):
        evaluate("[big, big, big]", lambda name: [["y" * 1000] * 1000] * 1000)
    assert time.thread_time() - started < 5


def test_quoted_text_is_not_rewritten(runtime: Runtime) -> None:
    results = runtime.run(
        _wf(
            {"name": "v", "type": "set_variable", "variables": {"ver": "v.2", "op": "a || b"}},
            {"name": "dot", "type": "test_echo", "value": 1, "condition": "state.ver == 'v.2'"},
            {"name": "bars", "type": "test_echo", "value": 2, "condition": "state.op == 'a || b'"},
        )
    )
    assert results["dot"] == 1 and results["bars"] == 2


@pytest.mark.slow  # runs steps until the run's budget is spent
def test_a_run_has_a_step_budget(runtime: Runtime) -> None:
    inner = {"name": "tick", "type": "test_echo", "value": 1}
    loop = {
        "name": "outer",
        "type": "for_loop",
        "iterator": "i",
        "data_source": "{{ [0] * 600 }}",
        "steps": [
            {
                "name": "mid",
                "type": "for_loop",
                "iterator": "j",
                "data_source": "{{ [0] * 600 }}",
                "steps": [inner],
            }
        ],
    }
    started = time.process_time()  # CPU time: waiting for a busy machine does not count
    with pytest.raises(StepFailedError) as info:
        runtime.run(_wf(loop))
    assert info.value.cause_code == "step_budget_exceeded"
    assert time.process_time() - started < 60
    budget = StepBudget(limit=2)
    budget.take()
    budget.take()
    with pytest.raises(Exception, match="limit of 2 steps"):
        budget.take()


def test_fence_stripping_is_linear() -> None:
    started = time.thread_time()  # CPU time: waiting for a busy machine does not count
    _, problem = output_value({"text": "```" + "\n" * 200_000})
    assert problem is not None and time.thread_time() - started < 10  # quadratic: minutes
    assert output_value({"text": '```json\n{"a": 1}\n```'}) == ({"a": 1}, None)
    assert output_value({"text": '{"a": 2}'}) == ({"a": 2}, None)


def test_a_bad_mock_regex_is_refused_when_set(runtime: Runtime) -> None:
    with pytest.raises(InvalidInputError, match="not a valid regex"):
        runtime.providers.get("mock_claude").set_response_pattern("re:(", "x")
