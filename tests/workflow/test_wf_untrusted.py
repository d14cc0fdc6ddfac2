"""Issue 7: workflow files are untrusted input.  One regression test (at least) per finding,
named after it; the fuzz suite (test_wf_fuzz.py) generates the siblings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


class _CountingServer:
    """An HTTP server on 127.0.0.1 that answers every GET with a schema and counts them."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.requests: list[str] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append(self.path)
                body = b'{"type": "string"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/schema+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def counting_server() -> Any:
    server = _CountingServer()
    try:
        yield server
    finally:
        server.close()


def test_output_schema_remote_ref_is_refused_and_never_fetched(
    runtime: Runtime, tmp_path: Path, counting_server: _CountingServer
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
    runtime: Runtime, tmp_path: Path, counting_server: _CountingServer
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

    started = time.perf_counter()
    spans = list(find_templates(hostile))
    render(hostile, lambda name: "value")
    # Generous for a busy 2-core machine: linear takes ~0.5 s, quadratic takes minutes.
    assert time.perf_counter() - started < 10
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
        None: 1,
    }
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
