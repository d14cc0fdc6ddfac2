"""The CLI's small parts: input parsing, previews, the event tracker, progress, exit codes."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from rich.console import Console
from typer.testing import Result

from pipeline_ex.cli.errors import error_lines, exit_code_for
from pipeline_ex.cli.options import parse_inputs
from pipeline_ex.cli.progress import StepProgress
from pipeline_ex.cli.render import preview, results_table
from pipeline_ex.cli.tracker import RunTracker
from pipeline_ex.errors import (
    InvalidInputError,
    Location,
    PipelineExError,
    PluginError,
    Problem,
    ProviderConfigurationError,
    SchemaValidationError,
    StepFailedError,
    UnknownStepTypeError,
)

Invoke = Callable[..., Result]
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "pipeline_ex_corpus"


def test_parse_inputs_json_or_text() -> None:
    assert parse_inputs(["n=3", "flag=true", "items=[1, 2]", "name=hello world", "eq=a=b"]) == {
        "n": 3,
        "flag": True,
        "items": [1, 2],
        "name": "hello world",
        "eq": "a=b",
    }
    assert parse_inputs(["k=1", "k=2"]) == {"k": 2}
    assert parse_inputs(["empty="]) == {"empty": ""}


@pytest.mark.parametrize("bad", ["novalue", "=value"])
def test_parse_inputs_rejects_non_pairs(bad: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_inputs([bad])


def test_preview_shapes() -> None:
    assert preview({"text": "a\n  b", "success": True}) == "a b"
    assert preview({"success": True, "skipped": True, "reason": "condition not met: x"}) == (
        "condition not met: x"
    )
    assert preview({"success": True, "iterations": [{}, {}], "count": 2}) == "2 iteration(s)"
    assert preview({"success": True, "variables": {"x": 1}}) == "x=1"
    assert preview("x" * 100, width=10) == "x" * 9 + "…"
    assert preview([1, 2]) == "[1, 2]"


def _events(tracker: RunTracker | StepProgress) -> None:
    tracker.on_event(
        "step_started", {"name": "a", "type": "test_echo", "path": "workflow.steps[0]"}
    )
    tracker.on_event(
        "step_finished", {"name": "a", "type": "test_echo", "path": "workflow.steps[0]"}
    )
    tracker.on_event("step_skipped", {"name": "b", "type": "claude", "path": "workflow.steps[1]"})
    tracker.on_event(
        "step_started", {"name": "loop", "type": "for_loop", "path": "workflow.steps[2]"}
    )
    # a nested loop literally named "workflow" has inner paths that look top-level
    tracker.on_event(
        "step_started", {"name": "inner", "type": "test_echo", "path": "workflow.steps[0]"}
    )
    tracker.on_event(
        "step_finished", {"name": "inner", "type": "test_echo", "path": "workflow.steps[0]"}
    )
    tracker.on_event(
        "step_started", {"name": "inner2", "type": "test_echo", "path": "loop.steps[0]"}
    )
    tracker.on_event(
        "step_finished", {"name": "inner2", "type": "test_echo", "path": "loop.steps[0]"}
    )


def test_tracker_keeps_top_level_steps_only() -> None:
    tracker = RunTracker()
    _events(tracker)
    tracker.mark_failed()
    assert {n: (r.type, r.status) for n, r in tracker.steps.items()} == {
        "a": ("test_echo", "ok"),
        "b": ("claude", "skipped"),
        "loop": ("for_loop", "failed"),
    }
    assert tracker.steps["loop"].nested == 2
    table = results_table("wf", tracker.steps.values(), {"a": "x"}, "mock", width=100)
    assert table.row_count == 3


def test_progress_display_renders_on_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    with pytest.raises(RuntimeError), StepProgress(console) as progress:
        _events(progress)
        raise RuntimeError("a step failed")
    text = out.getvalue()
    assert "(test_echo)" in text and "(for_loop)" in text and "skipped" in text
    assert "✓" in text  # a finished
    assert "✗" in text and "failed" in text  # the loop was running when the run stopped


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidInputError("bad"), 2),
        (SchemaValidationError([Problem("m", Location("f.yaml", "workflow", 3))]), 2),
        (ProviderConfigurationError("no key"), 2),
        (UnknownStepTypeError("step type", "x", ["a"]), 2),
        (PluginError("gone", code="not_loaded"), 2),
        (StepFailedError("s", "t", "r"), 1),
        (PluginError("bad", code="init_failed"), 1),
        (PipelineExError("other"), 1),
        (ValueError("bug"), 1),
    ],
)
def test_exit_codes(error: BaseException, code: int) -> None:
    assert exit_code_for(error) == code


def test_error_lines_carry_codes_and_locations() -> None:
    error = SchemaValidationError(
        [
            Problem("'name' is a required property", Location("f.yaml", "workflow.steps[0]", 3)),
            Problem("other", Location("f.yaml", "workflow", 1)),
        ]
    )
    assert error_lines(error) == [
        "[schema_invalid]: f.yaml:3 at workflow.steps[0]: 'name' is a required property",
        "[schema_invalid]: f.yaml:1 at workflow: other",
    ]
    crashed = StepFailedError("s", "t", "ZeroDivisionError", cause_code="crashed")
    assert error_lines(crashed) == [
        "[step_failed]: step 's' (type 't') failed: ZeroDivisionError (cause: crashed)"
    ]
    assert error_lines(KeyError("k"))[0].startswith("[internal]: KeyError")


@pytest.mark.skipif(not CORPUS.is_dir(), reason="pipeline_ex corpus not present")
def test_corpus_files_validate_or_fail_cleanly(cli: Invoke) -> None:
    files = sorted(CORPUS.glob("*.yaml"))
    assert files
    for path in files:
        result = cli("validate", path)
        assert result.exit_code in (0, 2), (path.name, result.stderr)
        assert "Traceback" not in result.stderr
        if result.exit_code == 2:
            assert result.stderr.startswith("error ["), (path.name, result.stderr)


def test_input_values_that_are_not_plain_json_stay_text() -> None:
    from pipeline_ex.cli.options import parse_value

    assert parse_value("NaN") == "NaN" and parse_value("Infinity") == "Infinity"
    deep = "[" * 100_000
    assert parse_value(deep) == deep
    assert parse_value("[1, 2]") == [1, 2]
