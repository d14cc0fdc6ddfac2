"""Issue 7: workflow files are untrusted input.  One regression test (at least) per finding,
named after it; the fuzz suite (test_wf_fuzz.py) generates the siblings."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from counting_server import CountingServer
from pipeline_ex import Runtime
from pipeline_ex.errors import WorkflowSemanticError


def _wf(*steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"workflow": {"name": "w", "steps": list(steps), **extra}}


def _yaml_workflow(folder: Path, output_dir: str, target: str = "authorized_keys") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "wf.yaml"
    path.write_text(
        "workflow:\n  name: od\n"
        f"  output_dir: {output_dir!r}\n"
        "  steps:\n    - name: a\n      type: test_echo\n"
        f"      value: 'ssh-ed25519 AAAA x'\n      output_to_file: {target}\n",
        encoding="utf-8",
    )
    return path


# -- 1. output_dir may point anywhere ------------------------------------------------------


@pytest.mark.parametrize("escape", ["absolute", "../../../../tmp/x", "../sibling", "a/../.."])
def test_output_dir_outside_workflow_folder_is_refused(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, escape: str
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    folder = tmp_path / "downloads" / "shared"
    value = str(victim) if escape == "absolute" else escape
    workflow = _yaml_workflow(folder, value)
    monkeypatch.chdir(folder)  # the relative forms used to resolve from here
    for call in (runtime.validate, runtime.run):
        with pytest.raises(WorkflowSemanticError) as info:
            call(workflow)
        (problem,) = info.value.problems
        assert problem.location.file == str(workflow)
        assert problem.location.path == "workflow.output_dir"
        assert problem.location.line == 3
        assert info.value.code == "workflow_invalid"
    written = [p for p in tmp_path.rglob("authorized_keys")]
    assert written == []


def test_output_dir_through_a_symlink_out_of_the_folder_is_refused(
    runtime: Runtime, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = tmp_path / "wf"
    folder.mkdir()
    (folder / "link").symlink_to(outside, target_is_directory=True)
    workflow = _yaml_workflow(folder, "link/keys")
    with pytest.raises(WorkflowSemanticError, match="outside the workflow's folder"):
        runtime.run(workflow)
    assert not (outside / "keys").exists()


def test_relative_output_dir_resolves_against_the_workflow_folder(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "wf"
    workflow = _yaml_workflow(folder, "results/run1", target="out.txt")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    runtime.run(workflow)
    assert (folder / "results" / "run1" / "out.txt").read_text() == "ssh-ed25519 AAAA x"
    assert list(elsewhere.iterdir()) == []


def test_mapping_workflow_output_dir_is_confined_to_the_current_directory(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    step = {"name": "a", "type": "test_echo", "value": "x", "output_to_file": "a.txt"}
    runtime.run(_wf(step, output_dir="inside"))
    assert (tmp_path / "inside" / "a.txt").read_text() == "x"
    for value in ("../up", "/tmp/pipeline-ex-od"):
        with pytest.raises(WorkflowSemanticError) as info:
            runtime.run(_wf(step, output_dir=value))
        assert info.value.problems[0].location.path == "workflow.output_dir"
    assert not Path("/tmp/pipeline-ex-od").exists()


def test_output_dir_given_by_the_caller_is_trusted_anywhere(
    runtime: Runtime, tmp_path: Path
) -> None:
    folder = tmp_path / "wf"
    workflow = _yaml_workflow(folder, "../escape", target="a.txt")  # overridden, still invalid
    with pytest.raises(WorkflowSemanticError):
        runtime.run(workflow, output_dir=tmp_path / "mine")
    workflow = _yaml_workflow(folder, "fine", target="a.txt")
    runtime.run(workflow, output_dir=tmp_path / "mine")
    assert (tmp_path / "mine" / "a.txt").is_file()
    assert not (folder / "fine").exists()
    assert os.path.isdir(tmp_path / "mine")


# -- 2. output_schema $ref fetches URLs ----------------------------------------------------


@pytest.fixture
def counting_server() -> Iterator[CountingServer]:
    server = CountingServer()
    try:
        yield server
    finally:
        server.close()


def test_output_schema_remote_ref_is_refused_and_never_fetched(
    runtime: Runtime, tmp_path: Path, counting_server: CountingServer
) -> None:
    schema = {"$ref": counting_server.url + "/x?k={{inputs.key}}"}
    nested = {"type": "object", "properties": {"a": {"$dynamicRef": counting_server.url + "/y"}}}
    for index, bad in enumerate((schema, nested)):
        step = {"name": "s", "type": "test_echo", "value": "v", "output_schema": bad}
        for call in (runtime.validate, runtime.run):
            with pytest.raises(WorkflowSemanticError) as info:
                call(_wf(step), **({"inputs": {"key": "SECRET"}} if call == runtime.run else {}))
            (problem,) = info.value.problems
            where = "$ref" if index == 0 else "properties.a.$dynamicRef"
            assert problem.location.path == f"workflow.steps[0].output_schema.{where}"
            assert "nothing is fetched" in problem.message
    assert counting_server.requests == []


def test_output_schema_remote_ref_past_validation_is_a_step_error_not_a_request(
    runtime: Runtime, tmp_path: Path, counting_server: CountingServer
) -> None:
    from pipeline_ex.configuration import ConfigurationSystem
    from pipeline_ex.documents import Document
    from pipeline_ex.errors import StepFailedError

    schema = {"$ref": counting_server.url + "/z"}
    problems = ConfigurationSystem.output_problems(schema, "v")
    assert len(problems) == 1 and "nothing is fetched" in problems[0]
    # A Document that skips validation's semantic pass (validated by an older rule set):
    step = {"name": "s", "type": "test_echo", "value": "v", "output_schema": schema}
    document = Document(_wf(step))
    runtime.executor.prepare = lambda source: document  # type: ignore[method-assign]
    with pytest.raises(StepFailedError) as info:
        runtime.run(document, output_dir=tmp_path)
    assert info.value.cause_code == "output_schema_invalid"
    assert info.value.step_name == "s"
    # A reference that looks local but resolves nowhere is a problem, not a crash:
    assert ConfigurationSystem.output_problems({"$ref": "#/$defs/none"}, 1)
    assert counting_server.requests == []


def test_output_schema_is_never_templated(runtime: Runtime, tmp_path: Path) -> None:
    from pipeline_ex.errors import StepFailedError

    schema = {"const": "{{inputs.key}}"}  # stays as written: "SECRET" does not match it
    step = {"name": "s", "type": "test_echo", "value": "SECRET", "output_schema": schema}
    with pytest.raises(StepFailedError) as info:
        runtime.run(_wf(step), inputs={"key": "SECRET"}, output_dir=tmp_path)
    assert info.value.cause_code == "output_schema_mismatch"
    assert "{{inputs.key}}" in info.value.reason


def test_output_schema_local_refs_and_meta_schema_refs_still_work(
    runtime: Runtime, tmp_path: Path
) -> None:
    schema = {
        "$defs": {"score": {"type": "integer"}},
        "type": "object",
        "properties": {"score": {"$ref": "#/$defs/score"}},
        "$id": "https://example.invalid/s.json",
    }
    step = {"name": "s", "type": "test_echo", "value": {"score": 3}, "output_schema": schema}
    schema["properties"]["$ref"] = {"const": {"$ref": "http://data.invalid/not-a-ref"}}
    meta = {"$ref": "https://json-schema.org/draft/2020-12/schema"}
    step2 = {"name": "m", "type": "test_echo", "value": {"type": "string"}, "output_schema": meta}
    results = runtime.run(_wf(step, step2), output_dir=tmp_path)
    assert results["s"] == {"score": 3}


# -- 5. sys.exit(0) in a step or a provider ends the run silently --------------------------


class _PluginBaseException(BaseException):
    pass


class _Raises:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def execute(self, step: dict[str, Any], context: Any) -> Any:
        raise self.exc

    def query(self, prompt: str, options: dict[str, Any]) -> dict[str, Any]:
        if "boom" in prompt:
            raise self.exc
        return {"text": "fine", "success": True, "cost": 0.5}


@pytest.mark.parametrize(
    "exc", [SystemExit(0), SystemExit(3), GeneratorExit(), _PluginBaseException("mine")]
)
def test_sys_exit_in_step_execute_is_step_failed(
    runtime: Runtime, tmp_path: Path, exc: BaseException
) -> None:
    from pipeline_ex.errors import StepFailedError

    runtime.steps.register_batch({"exits": _Raises(exc)}, "exiting_plugin")
    later = {"name": "later", "type": "test_echo", "value": 1}
    with pytest.raises(StepFailedError) as info:
        runtime.run(_wf({"name": "x", "type": "exits"}, later), output_dir=tmp_path)
    assert info.value.step_name == "x" and info.value.cause_code == "crashed"
    assert type(exc).__name__ in info.value.reason
    assert "later" not in info.value.results


def test_sys_exit_in_provider_query_is_step_failed(runtime: Runtime, tmp_path: Path) -> None:
    from pipeline_ex.errors import StepFailedError

    runtime.providers.register_providers(
        [("mock_claude", _Raises(SystemExit(0)), ["text_generation"])],
        "exiting_provider",
        replace=frozenset({"mock_claude"}),
    )
    step = {"name": "ask", "type": "claude", "prompt": [{"type": "static", "content": "boom"}]}
    with pytest.raises(StepFailedError) as info:
        runtime.run(_wf(step), output_dir=tmp_path)
    assert info.value.cause_code == "crashed" and "SystemExit" in info.value.reason


def test_sys_exit_in_parallel_claude_task_fails_that_task_only(
    runtime: Runtime, tmp_path: Path
) -> None:
    from pipeline_ex.errors import StepFailedError

    runtime.providers.register_providers(
        [("mock_claude", _Raises(SystemExit(0)), ["text_generation"])],
        "exiting_provider",
        replace=frozenset({"mock_claude"}),
    )
    tasks = [
        {"id": "ok", "prompt": [{"type": "static", "content": "hi"}]},
        {"id": "bad", "prompt": [{"type": "static", "content": "boom"}]},
    ]
    step = {"name": "p", "type": "parallel_claude", "parallel_tasks": tasks}
    with pytest.raises(StepFailedError) as info:
        runtime.run(_wf(step), output_dir=tmp_path)
    result = info.value.results["p"]
    assert result["results"]["ok"]["text"] == "fine"
    assert "bad: SystemExit" in info.value.reason


def test_keyboard_interrupt_raised_by_plugin_code_is_step_failed(
    runtime: Runtime, tmp_path: Path
) -> None:
    from pipeline_ex import interrupts
    from pipeline_ex.errors import StepFailedError

    runtime.steps.register_batch({"interrupts": _Raises(KeyboardInterrupt())}, "rude")
    loop = {
        "name": "loop",
        "type": "for_loop",
        "iterator": "i",
        "data_source": [1, 2, 3],
        "parallel": True,
        "steps": [{"name": "x", "type": "interrupts"}],
    }
    restore = interrupts.install()  # as the CLI does: the user's Ctrl-C is recognisable
    try:
        for step in ({"name": "x", "type": "interrupts"}, loop):
            with pytest.raises(StepFailedError) as info:
                runtime.run(_wf(step), output_dir=tmp_path)
            assert "KeyboardInterrupt" in info.value.reason
    finally:
        restore()
    # Without the handler a main-thread interrupt cannot be told apart: it is the user's.
    with pytest.raises(KeyboardInterrupt):
        runtime.run(_wf({"name": "x", "type": "interrupts"}), output_dir=tmp_path)


# -- 7. template scanning is quadratic -----------------------------------------------------


def _quadratic_find_templates(text: str) -> list[tuple[int, int, str]]:
    """The scan as it was before the fix: the reference for which spans are templates."""
    found = []
    position = 0
    while True:
        start = text.find("{{", position)
        if start < 0:
            return found
        end = text.find("}}", start + 2)
        if end < 0:
            return found
        inner_open = text.find("{{", start + 2, end)
        if inner_open >= 0:
            position = inner_open
            continue
        expression = text[start + 2 : end].strip()
        if expression:
            found.append((start, end + 2, expression))
        position = end + 2


@given(st.text(alphabet="{} a.", max_size=60))
@settings(max_examples=400, deadline=None)
def test_template_scanning_keeps_which_spans_are_templates(text: str) -> None:
    from pipeline_ex.workflow.templates import find_templates

    assert list(find_templates(text)) == _quadratic_find_templates(text)


@pytest.mark.slow  # megabyte-sized hostile templates
@pytest.mark.parametrize(
    "hostile",
    [
        "{{" * 1_000_000 + "}}",  # 2 MB: minutes with the quadratic scan
        "{{ " * 700_000 + "}}",
        "{{" * 500_000 + "x}}" + "{{" * 500_000 + "}}",
        "{{{" * 600_000 + "}}}",
    ],
    ids=["opens", "opens-spaced", "two-runs", "triple-braces"],
)
def test_template_scanning_is_linear(hostile: str) -> None:
    import time

    from pipeline_ex.workflow.templates import find_templates, render

    started = time.thread_time()
    spans = list(find_templates(hostile))
    render(hostile, lambda name: "value")
    # CPU time of this thread, so a busy machine does not count; generous all the same:
    # linear takes ~0.5 s, quadratic takes minutes.
    assert time.thread_time() - started < 10
    assert spans == [] or all(expr for _, _, expr in spans)


# -- 8. the YAML node budget is checked after the whole document is built ------------------


def test_yaml_node_budget_is_checked_while_composing(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline_ex import documents
    from pipeline_ex.errors import YAMLDocumentError

    monkeypatch.setattr(documents, "MAX_NODES", 2_000)
    composed = 0
    original = documents._BoundedLoader.compose_node

    def counting(self: Any, parent: Any, index: Any) -> Any:
        nonlocal composed
        composed += 1
        return original(self, parent, index)

    monkeypatch.setattr(documents._BoundedLoader, "compose_node", counting)
    flat = tmp_path / "flat.yaml"
    flat.write_text("workflow:\n  steps:\n" + "    - 1\n" * 300_000)  # 2.4 MB flat list
    with pytest.raises(YAMLDocumentError, match="more than 2000 nodes") as info:
        runtime.validate(flat)
    assert info.value.problems[0].location.line is not None
    assert composed <= 2_001 + 10  # stopped at the budget, not after 300,000 nodes

    composed = 0  # an alias bomb is weighed by each alias's expanded size, not walked
    bomb = "a: &a [" + ", ".join(["x"] * 10) + "]\n"
    for level in "bcdefgh":
        previous = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [" + ", ".join([f"*{previous}"] * 10) + "]\n"
    with pytest.raises(YAMLDocumentError, match="alias bomb"):
        documents.load_yaml(bomb)
    assert composed < 200


def test_yaml_recursive_alias_is_refused_while_composing() -> None:
    from pipeline_ex.documents import load_yaml
    from pipeline_ex.errors import YAMLDocumentError

    with pytest.raises(YAMLDocumentError, match="recursive alias") as info:
        load_yaml("workflow: &w\n  steps:\n    - *w\n")
    assert info.value.problems[0].location.line == 3


@pytest.mark.parametrize("kind", ["dev_zero", "fifo", "folder", "huge_sparse"])
def test_validate_dev_zero_and_fifo_are_refused_without_reading_forever(
    runtime: Runtime, tmp_path: Path, kind: str
) -> None:
    from pipeline_ex.documents import MAX_BYTES
    from pipeline_ex.errors import YAMLDocumentError

    if kind == "dev_zero":
        path = Path("/dev/zero")
    elif kind == "fifo":
        path = tmp_path / "pipe.yaml"
        os.mkfifo(path)  # nobody writes: opening it for reading would block forever
    elif kind == "folder":
        path = tmp_path
    else:
        path = tmp_path / "huge.yaml"
        with path.open("wb") as handle:
            handle.truncate(MAX_BYTES + 4096)  # sparse: claims more than the limit
    expected = "larger than" if kind == "huge_sparse" else "not a regular file"
    with pytest.raises(YAMLDocumentError, match=expected) as info:
        runtime.validate(path)
    assert info.value.problems[0].location.file == str(path)


def test_validate_dev_zero_through_the_cli_exits_2() -> None:
    from typer.testing import CliRunner

    from pipeline_ex.cli import app

    result = CliRunner().invoke(app, ["validate", "/dev/zero"], prog_name="pipeline-ex")
    assert result.exit_code == 2
    assert "error [yaml_invalid]" in result.output and "not a regular file" in result.output


# -- 14. --json prints NaN/Infinity; duplicate parallel task ids -------------------------


def test_json_output_of_non_finite_numbers_is_strict_json(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from pipeline_ex.cli import app

    workflow = tmp_path / "nan.yaml"
    workflow.write_text(
        "workflow:\n  name: n\n  steps:\n"
        "    - {name: inf, type: test_echo, value: '{{1e308 * 10}}', output_to_file: inf.json}\n"
        "    - {name: many, type: test_echo, value: ['{{-1e308*10}}', 1.5, {k: '{{1e308*10}}'}]}\n"
    )
    result = CliRunner().invoke(
        app, ["run", str(workflow), "--json", "--output-dir", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    assert "NaN" not in result.stdout and "Infinity" not in result.stdout

    def refuse(constant: str) -> Any:
        raise AssertionError(f"not strict JSON: {constant}")

    parsed = json.loads(result.stdout, parse_constant=refuse)
    assert parsed == {"inf": None, "many": [None, 1.5, {"k": None}]}
    assert json.loads((tmp_path / "out" / "inf.json").read_text(), parse_constant=refuse) is None


def test_results_json_converts_what_json_cannot_hold() -> None:
    from pipeline_ex.results_json import ResultEncodingError, dumps, jsonable

    assert jsonable({"a": (1, float("nan")), (1, 2): {3}, None: 1}) == {
        "a": [1, None],
        "(1, 2)": "{3}",
        "null": 1,
    }
    assert jsonable({1: "a", False: "b", 1.5: "c"}) == {"1": "a", "false": "b", "1.5": "c"}
    assert dumps({"b": 1, "a": 2}, indent=None) == '{"b": 1, "a": 2}'  # order kept
    looped: list[Any] = []
    looped.append(looped)
    with pytest.raises(ResultEncodingError) as info:
        dumps(looped)
    assert info.value.code == "result_not_encodable"


def test_duplicate_parallel_task_ids_are_a_validation_problem(runtime: Runtime) -> None:
    prompt = [{"type": "static", "content": "hi"}]
    tasks = [
        {"id": 1, "prompt": prompt},
        {"id": "x", "prompt": prompt},
        {"id": "1", "prompt": prompt},
    ]
    step = {"name": "p", "type": "parallel_claude", "parallel_tasks": tasks}
    with pytest.raises(WorkflowSemanticError) as info:
        runtime.validate(_wf(step))
    (problem,) = info.value.problems
    assert problem.location.path == "workflow.steps[0].parallel_tasks[2].id"
    assert "duplicate parallel task id '1'" in problem.message


def test_parallel_task_ids_templated_into_the_same_text_fail_the_step(
    runtime: Runtime, tmp_path: Path
) -> None:
    from pipeline_ex.errors import StepFailedError

    prompt = [{"type": "static", "content": "hi"}]
    tasks = [{"id": "{{inputs.a}}", "prompt": prompt}, {"id": "{{inputs.b}}", "prompt": prompt}]
    step = {"name": "p", "type": "parallel_claude", "parallel_tasks": tasks}
    with pytest.raises(StepFailedError, match="same id '7'"):
        runtime.run(_wf(step), inputs={"a": 7, "b": "7"}, output_dir=tmp_path)


# -- 12. optional step hooks that raise or answer wrongly; deeply nested results ----------


class _Echo:
    def execute(self, step: dict[str, Any], context: Any) -> Any:
        return step.get("value")


class _RaisingRawKeys(_Echo):
    @property
    def raw_keys(self) -> Any:
        raise ValueError("no keys today")


class _WrongRawKeys(_Echo):
    raw_keys = 42


class _RaisingSemanticCheck(_Echo):
    def semantic_check(self, step: dict[str, Any]) -> Any:
        raise SystemExit(1)


class _WrongSemanticCheck(_Echo):
    def semantic_check(self, step: dict[str, Any]) -> Any:
        return ["just a message", (("value",), "fine: a real problem")]


@pytest.mark.parametrize(
    ("hook", "fragment", "code"),
    [
        (_RaisingRawKeys(), "raw_keys raised ValueError: no keys today", "crashed"),
        (_WrongRawKeys(), "raw_keys must be a collection of key names, not int", None),
    ],
)
def test_step_hook_raw_keys_that_raises_or_has_wrong_type_names_the_plugin(
    runtime: Runtime, tmp_path: Path, hook: Any, fragment: str, code: str | None
) -> None:
    from pipeline_ex.errors import StepFailedError

    runtime.steps.register_batch({"odd": hook}, "odd_plugin")
    with pytest.raises(StepFailedError) as info:
        runtime.run(_wf({"name": "s", "type": "odd", "value": 1}), output_dir=tmp_path)
    assert "step type 'odd' (plugin 'odd_plugin')" in info.value.reason
    assert fragment in info.value.reason
    assert info.value.cause_code == (code or "step_hook_invalid")


def test_step_hook_semantic_check_that_raises_is_a_validation_problem_at_the_step(
    runtime: Runtime,
) -> None:
    runtime.steps.register_batch(
        {"exits": _RaisingSemanticCheck(), "wrong": _WrongSemanticCheck()}, "odd_plugin"
    )
    steps = [{"name": "a", "type": "test_echo"}, {"name": "s", "type": "exits"}]
    steps.append({"name": "t", "type": "wrong", "value": 1})
    with pytest.raises(WorkflowSemanticError) as info:
        runtime.validate(_wf(*steps))
    found = {(p.location.path, p.message) for p in info.value.problems}
    assert (
        "workflow.steps[1]",
        "step type 'exits' (plugin 'odd_plugin'): semantic_check raised SystemExit: 1",
    ) in found
    assert ("workflow.steps[2].value", "fine: a real problem") in found
    assert any(
        path == "workflow.steps[2]" and "not a (path, message) pair" in message
        for path, message in found
    )


def test_step_type_unloaded_before_preflight_is_a_step_failure_with_a_code(
    runtime: Runtime, tmp_path: Path
) -> None:
    from pipeline_ex.errors import StepFailedError

    class Unloads(_Echo):
        def preflight(self, step: dict[str, Any], context: Any) -> None:
            runtime.steps.unregister_owner("leaving_plugin")

    runtime.steps.register_batch({"unloads": Unloads()}, "unloading_plugin")
    runtime.steps.register_batch({"leaving": _Echo()}, "leaving_plugin")
    steps = [{"name": "a", "type": "unloads"}, {"name": "b", "type": "leaving"}]
    with pytest.raises(StepFailedError) as info:
        runtime.run(_wf(*steps), output_dir=tmp_path)
    assert info.value.step_name == "b" and info.value.cause_code == "unknown_step_type"


# -- 11. resource exhaustion inside the step budget ---------------------------------------


def test_result_budget_exceeded_stops_a_loop_of_large_results(
    runtime: Runtime, tmp_path: Path
) -> None:
    from pipeline_ex.errors import StepFailedError
    from pipeline_ex.workflow.budgets import MAX_RESULT_BYTES_PER_RUN, RunLimits

    assert RunLimits().max_result_bytes == MAX_RESULT_BYTES_PER_RUN == 256 * 1024 * 1024
    runtime.executor.limits = RunLimits(max_result_bytes=20_000_000)
    loop = {
        "name": "loop",
        "type": "for_loop",
        "iterator": "i",
        "data_source": "{{[0]*499999}}",
        "steps": [{"name": "big", "type": "test_echo", "value": "{{'x'*999999}}"}],
    }
    ran: list[str] = []
    with pytest.raises(StepFailedError) as info:
        runtime.run(
            _wf(loop),
            output_dir=tmp_path,
            on_event=lambda kind, data: ran.append(data["name"]) if kind == "step_started" else 0,
        )
    assert info.value.cause_code == "result_budget_exceeded"
    assert "result budget of 20,000,000 bytes" in info.value.reason
    assert 15 <= ran.count("big") <= 25  # ~1 MB each: stopped at the budget, not at 499,999


def test_result_budget_exceeded_by_a_templated_definition_before_it_is_built(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline_ex.errors import StepFailedError
    from pipeline_ex.workflow import templates
    from pipeline_ex.workflow.budgets import RunLimits

    runtime.executor.limits = RunLimits(max_result_bytes=10_000_000)
    evaluated = 0
    original = templates._resolve_expression

    def counting(expression: str, resolve: Any) -> Any:
        nonlocal evaluated
        evaluated += 1
        return original(expression, resolve)

    monkeypatch.setattr(templates, "_resolve_expression", counting)
    step = {"name": "s", "type": "test_echo", "value": ["{{'x'*999999}}"] * 1000}
    with pytest.raises(StepFailedError) as info:
        runtime.run(_wf(step), output_dir=tmp_path)
    assert info.value.cause_code == "result_budget_exceeded"
    assert "templated definition" in info.value.reason
    assert evaluated <= 11  # stopped after ~10 MB, not after 1 GB


@pytest.mark.slow  # 1000 iterations, each encoding a result one level deeper
def test_deeply_nested_result_is_a_typed_error_not_a_recursion_error(
    runtime: Runtime, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from pipeline_ex.cli import app
    from pipeline_ex.errors import StepFailedError

    nest = {
        "name": "nest",
        "type": "while_loop",
        "condition": "state.n < 1000",
        "max_iterations": 1000,
        "steps": [
            {
                "name": "deeper",
                "type": "set_variable",
                "variables": {"x": "{{[state.x]}}", "n": "{{state.n + 1}}"},
            }
        ],
    }
    workflow = _wf(nest, variables={"x": 0, "n": 0})
    with pytest.raises(StepFailedError) as info:
        runtime.run(workflow, output_dir=tmp_path)
    assert info.value.cause_code == "result_not_encodable"
    assert "nested deeper than" in info.value.reason

    class Deep:
        def execute(self, step: dict[str, Any], context: Any) -> Any:
            value: Any = 1
            for _ in range(5000):
                value = [value]
            return value

    runtime.steps.register_batch({"deep": Deep()}, "deep_plugin")
    with pytest.raises(StepFailedError) as info:
        runtime.run(_wf({"name": "d", "type": "deep"}), output_dir=tmp_path)
    assert info.value.cause_code == "result_not_encodable"

    path = tmp_path / "nest.yaml"
    import yaml

    path.write_text(yaml.safe_dump(workflow))
    result = CliRunner().invoke(app, ["run", str(path), "--json"])
    assert result.exit_code == 1
    assert "error [step_failed]" in result.output and "result_not_encodable" in result.output
    assert "RecursionError" not in result.output and "internal" not in result.output


class _Concurrency:
    """A step that notes how many of its calls are running at once."""

    def __init__(self) -> None:
        import threading

        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.calls = 0

    def execute(self, step: dict[str, Any], context: Any) -> Any:
        import time

        with self.lock:
            self.running += 1
            self.calls += 1
            self.peak = max(self.peak, self.running)
        time.sleep(0.002)
        with self.lock:
            self.running -= 1
        return 1


def test_nested_parallel_loops_share_one_bounded_thread_allowance(
    runtime: Runtime, tmp_path: Path
) -> None:
    import threading

    probe = _Concurrency()
    runtime.steps.register_batch({"probe": probe}, "probe_plugin")
    before = threading.active_count()
    peak_threads = 0

    class Count:
        def execute(self, step: dict[str, Any], context: Any) -> Any:
            nonlocal peak_threads
            peak_threads = max(peak_threads, threading.active_count() - before)
            return probe.execute(step, context)

    runtime.steps.register_batch({"count": Count()}, "count_plugin")

    def loop(name: str, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": name,
            "type": "for_loop",
            "iterator": "i",
            "data_source": "{{[0]*8}}",
            "parallel": True,
            "max_parallel": 32,
            "steps": [body],
        }

    nested = loop("a", loop("b", loop("c", {"name": "leaf", "type": "count"})))
    runtime.run(_wf(nested), output_dir=tmp_path)
    assert probe.calls == 8 * 8 * 8  # every iteration ran, none deadlocked
    assert peak_threads <= 32  # extra threads of the whole run, not 32 per loop
    assert probe.peak <= 33  # the calling thread works too


def test_output_schema_on_a_result_with_non_text_keys_is_checked_as_json(
    runtime: Runtime, tmp_path: Path
) -> None:
    """Found by the hostile fuzz suite: patternProperties over ``{0: None}`` raised a
    TypeError inside jsonschema (error [internal])."""
    from pipeline_ex.configuration import ConfigurationSystem

    schema = {"patternProperties": {"^[a-z]+$": {"type": "string"}}, "type": "object"}
    assert ConfigurationSystem.output_problems(schema, {0: None}) == []
    assert ConfigurationSystem.output_problems(schema, {"k": 1, 2: "x"}) == [
        "output.k: expected string, found integer 1"
    ]
    (problem,) = ConfigurationSystem.output_problems({"pattern": "("}, "text")
    assert problem == "output_schema is not a valid JSON Schema: '(' is not a 'regex'"


def test_sys_exit_from_a_step_result_object_is_step_failed(
    runtime: Runtime, tmp_path: Path
) -> None:
    """A result is plugin code too: a mapping whose ``get`` exits, an object whose
    ``__str__`` exits while it is written out."""
    from collections.abc import Mapping

    from pipeline_ex.errors import StepFailedError

    class ExitingMapping(Mapping[str, Any]):
        def __getitem__(self, key: str) -> Any:
            raise SystemExit(0)

        def __iter__(self) -> Iterator[str]:
            raise SystemExit(0)

        def __len__(self) -> int:
            return 1

    class ExitingText:
        def __str__(self) -> str:
            raise SystemExit(0)

    class Returns:
        def __init__(self, value: Any) -> None:
            self.value = value

        def execute(self, step: dict[str, Any], context: Any) -> Any:
            return self.value

    runtime.steps.register_batch(
        {"mapping": Returns(ExitingMapping()), "text": Returns({"x": ExitingText()})}, "odd"
    )
    with pytest.raises(StepFailedError) as info:
        runtime.run(_wf({"name": "m", "type": "mapping"}), output_dir=tmp_path)
    assert info.value.cause_code == "crashed" and "SystemExit" in info.value.reason
    step = {"name": "t", "type": "text", "output_to_file": "t.json"}
    runtime.run(_wf(step), output_dir=tmp_path)
    assert "str() raised SystemExit" in (tmp_path / "t.json").read_text()


def _naive_measure(value: Any) -> tuple[int, int]:
    from pipeline_ex.workflow import budgets

    leaf = budgets._leaf_size(value)
    if leaf is not None:
        return leaf, 0
    children = list(value.keys()) + list(value.values()) if isinstance(value, dict) else value
    total, depth = budgets._CONTAINER, 0
    for child in children:
        size, child_depth = _naive_measure(child)
        total += size + budgets._SCALAR
        if budgets._leaf_size(child) is None:
            depth = max(depth, child_depth + 1)
    return total, depth


_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=5), inner, max_size=4),
    ),
    max_leaves=30,
)


@given(_values)
@settings(max_examples=300, deadline=None)
def test_result_budget_measure_matches_the_expanded_size(value: Any) -> None:
    from pipeline_ex.workflow.budgets import ResultBudget, measure

    assert measure(value) == _naive_measure(value)
    shared = [value, value, {"again": value}]  # a shared part counts where it appears
    assert measure(shared) == _naive_measure(shared)
    budget = ResultBudget(limit=10**9)
    budget.charge(value)
    before = budget.used
    budget.charge({"iterations": [value]})  # a result holding a recorded one pays only once
    if isinstance(value, dict | list | tuple):
        assert budget.used - before == measure({"iterations": [0]})[0] - _naive_measure(0)[0]


def test_step_hooks_are_read_once_per_run_and_again_for_a_swapped_step_object(
    runtime: Runtime, tmp_path: Path
) -> None:
    reads: list[str] = []

    class Counted(_Echo):
        def __init__(self, tag: str) -> None:
            self.tag = tag

        @property
        def raw_keys(self) -> Any:
            reads.append(self.tag)
            return ("value",)

        @property
        def preflight(self) -> Any:
            reads.append(f"preflight {self.tag}")
            return None

    class Swaps(_Echo):
        def execute(self, step: dict[str, Any], context: Any) -> Any:
            runtime.steps.unregister_owner("counted_plugin")
            runtime.steps.register_batch({"counted": Counted("second")}, "counted_plugin")
            return None

    runtime.steps.register_batch({"counted": Counted("first")}, "counted_plugin")
    runtime.steps.register_batch({"swaps": Swaps()}, "swapping_plugin")
    counted = [{"name": f"c{i}", "type": "counted", "value": "{{inputs.x}}"} for i in range(3)]
    results = runtime.run(_wf(*counted), inputs={"x": 1}, output_dir=tmp_path)
    assert reads == ["preflight first", "first"]  # three steps, one read of each hook
    assert results["c0"] == "{{inputs.x}}"  # raw_keys kept the template as written
    reads.clear()
    steps = [counted[0], {"name": "s", "type": "swaps"}, {**counted[1], "name": "d"}]
    runtime.run(_wf(*steps), inputs={"x": 1}, output_dir=tmp_path)
    assert reads == ["preflight first", "first", "second"]
