"""``pipeline-ex run``: the examples, JSON output, exit codes and the flags that feed a run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
MOCK_RESPONSES = EXAMPLES / "fixtures" / "mock_responses.yaml"
EXAMPLE_STEPS = {
    "claude_gemini_chain": ["review", "plan", "summary"],
    "loop_with_variables": [
        "setup",
        "review_topics",
        "consolidate",
        "escalate",
        "refine",
        "report",
    ],
    "parallel_review": ["reviews", "merge"],
}

Invoke = Callable[..., Result]
Write = Callable[[str, str], Path]


def no_traceback(result: Result) -> None:
    for stream in (result.stdout, result.stderr):
        assert "Traceback" not in stream


@pytest.mark.parametrize("example", sorted(EXAMPLE_STEPS))
def test_each_example_runs_and_prints_a_summary(cli: Invoke, example: str, tmp_path: Path) -> None:
    result = cli("run", EXAMPLES / f"{example}.yaml", "--output-dir", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    assert f"{example} (mock mode)" in result.stdout
    for step in EXAMPLE_STEPS[example]:
        assert step in result.stdout
    no_traceback(result)


@pytest.mark.parametrize("example", sorted(EXAMPLE_STEPS))
def test_json_output_is_one_object_keyed_by_step_name(
    cli: Invoke, example: str, tmp_path: Path
) -> None:
    result = cli("run", EXAMPLES / f"{example}.yaml", "--json", "--output-dir", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    results = json.loads(result.stdout)  # nothing else on stdout
    assert list(results) == EXAMPLE_STEPS[example]


def test_loop_example_results(cli: Invoke, tmp_path: Path) -> None:
    result = cli("run", EXAMPLES / "loop_with_variables.yaml", "--json")
    results = json.loads(result.stdout)
    assert results["review_topics"]["count"] == 3
    assert results["escalate"]["skipped"] is True
    assert results["consolidate"]["success"] is True
    assert results["refine"]["count"] == 3
    assert results["report"]["rounds"] == 3


def test_parallel_example_runs_every_task(cli: Invoke) -> None:
    result = cli("run", EXAMPLES / "parallel_review.yaml", "--json")
    reviews = json.loads(result.stdout)["reviews"]
    assert set(reviews["results"]) == {"security", "performance", "readability"}
    assert (Path("outputs") / "merged_review.md").is_file()


def test_mock_responses_file_feeds_the_chain(cli: Invoke, tmp_path: Path) -> None:
    result = cli(
        "run",
        EXAMPLES / "claude_gemini_chain.yaml",
        "--json",
        "--mock-responses",
        MOCK_RESPONSES,
        "--output-dir",
        tmp_path / "out",
    )
    assert result.exit_code == 0, result.stderr
    results = json.loads(result.stdout)
    assert "ZeroDivisionError" in results["review"]["text"]
    assert results["plan"]["text"].startswith("1. Return 0.0")
    assert results["plan"]["model"] == "mock-gemini-fixture"
    assert results["summary"]["text"] == "Guard against empty input, then add a test for it."
    written = json.loads((tmp_path / "out" / "plan.json").read_text())
    assert written["text"] == results["plan"]["text"]


def test_invalid_mock_responses_file_is_exit_2(cli: Invoke, write: Write) -> None:
    fixture = write("mock.yaml", "claude: [not, a, mapping]\n")
    result = cli("run", EXAMPLES / "parallel_review.yaml", "--mock-responses", fixture)
    assert result.exit_code == 2
    assert "error [mock_responses_invalid]" in result.stderr
    assert "mock.yaml" in result.stderr
    no_traceback(result)


def test_input_reaches_templates_and_conditions(cli: Invoke, write: Write) -> None:
    workflow = write(
        "inputs.yaml",
        """
        workflow:
          name: inputs_demo
          steps:
            - name: greet
              type: test_echo
              value: "hello {{inputs.who}}"
            - name: big
              type: test_echo
              condition: "inputs.count > 2"
              value: "{{inputs.count}}"
    """,
    )
    result = cli("run", workflow, "--json", "--input", "who=world", "-i", "count=3")
    assert result.exit_code == 0, result.stderr
    results = json.loads(result.stdout)
    assert results == {"greet": "hello world", "big": 3}
    low = json.loads(cli("run", workflow, "--json", "--input", "count=1").stdout)
    assert low["big"]["skipped"] is True


def test_malformed_input_flag_is_a_usage_error(cli: Invoke) -> None:
    result = cli("run", EXAMPLES / "parallel_review.yaml", "--input", "no-equals-sign")
    assert result.exit_code == 2
    assert "error [usage]" in result.stderr and "--input" in result.stderr


def test_output_dir_receives_output_to_file(cli: Invoke, write: Write, tmp_path: Path) -> None:
    workflow = write(
        "out.yaml",
        """
        workflow:
          name: writer
          steps:
            - name: data
              type: test_echo
              value: {answer: 42}
              output_to_file: nested/answer.json
            - name: text
              type: test_echo
              value: plain text
              output_to_file: text.txt
    """,
    )
    target = tmp_path / "custom-out"
    result = cli("run", workflow, "--output-dir", target)
    assert result.exit_code == 0, result.stderr
    assert json.loads((target / "nested" / "answer.json").read_text()) == {"answer": 42}
    assert (target / "text.txt").read_text() == "plain text"


def test_malformed_yaml_is_exit_2_with_file_and_line(cli: Invoke, write: Write) -> None:
    workflow = write("broken.yaml", "workflow:\n  name: x\n  steps: [\n")
    result = cli("run", workflow)
    assert result.exit_code == 2
    assert result.stderr.startswith("error [yaml_invalid]: ")
    assert "broken.yaml:" in result.stderr
    assert result.stdout == ""
    no_traceback(result)


def test_schema_error_names_file_line_and_path(cli: Invoke, write: Write) -> None:
    workflow = write(
        "schema.yaml",
        """
        workflow:
          name: x
          steps:
            - type: claude
              prompt:
                - type: static
                  content: hi
    """,
    )
    result = cli("run", workflow)
    assert result.exit_code == 2
    assert (
        f"error [schema_invalid]: {workflow}:4 at workflow.steps[0]: 'name' is a required property"
    ) in result.stderr
    no_traceback(result)


def test_unknown_step_type_names_file_line_path_and_choices(cli: Invoke, write: Write) -> None:
    workflow = write(
        "unknown.yaml",
        """
        workflow:
          name: x
          steps:
            - name: ok
              type: test_echo
              value: 1
            - name: odd
              type: frobnicate
    """,
    )
    result = cli("run", workflow)
    assert result.exit_code == 2
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error [workflow_invalid]: ")
    assert f"{workflow}:8 at workflow.steps[1].type" in line
    assert "frobnicate" in line and "test_echo" in line


def test_every_problem_is_reported_with_its_code(cli: Invoke, write: Write) -> None:
    workflow = write(
        "many.yaml",
        """
        workflow:
          name: x
          steps:
            - name: a
              type: nope_one
            - name: b
              type: nope_two
    """,
    )
    result = cli("validate", workflow)
    assert result.exit_code == 2
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error [")]
    assert len(errors) == 2
    assert "nope_one" in errors[0] and "nope_two" in errors[1]


FAILING_WORKFLOW = """
    workflow:
      name: failing
      steps:
        - name: first
          type: test_echo
          value: fine
        - name: explode
          type: test_echo
          error_message: kaboom
        - name: never
          type: test_echo
          value: unreachable
"""


def test_failing_step_is_exit_1_naming_step_and_type(cli: Invoke, write: Write) -> None:
    workflow = write("fail.yaml", FAILING_WORKFLOW)
    result = cli("run", workflow)
    assert result.exit_code == 1
    assert "error [step_failed]: step 'explode' (type 'test_echo') failed: kaboom" in result.stderr
    assert "first" in result.stdout and "failed" in result.stdout  # the partial summary
    assert "never" not in result.stdout
    no_traceback(result)
    as_json = cli("run", workflow, "--json")
    assert as_json.exit_code == 1
    assert "error [step_failed]" in as_json.stderr


def test_json_run_with_a_failed_step_prints_partial_results_and_the_error(
    cli: Invoke, write: Write
) -> None:
    """Issue 8.2: ``run --json`` printed nothing on stdout when a step failed."""
    workflow = write("fail.yaml", FAILING_WORKFLOW)
    result = cli("run", workflow, "--json")
    assert result.exit_code == 1  # unchanged
    document = json.loads(result.stdout)
    assert document["results"]["first"] == "fine"
    assert document["results"]["explode"] == {"success": False, "error": "kaboom"}
    assert "never" not in document["results"]
    assert document["error"] == {
        "code": "step_failed",
        "message": "step 'explode' (type 'test_echo') failed: kaboom",
        "step": "explode",
        "type": "test_echo",
        "reason": "kaboom",
        "cause": "step_reported_failure",
    }
    assert "error [step_failed]" in result.stderr


RAISING_PLUGIN = """
def init(config):
    return None

def get_metadata(state):
    return {"name": "raiser", "version": "1.0", "api_version": 1}

class Boom:
    def execute(self, step, context):
        raise RuntimeError("the disk is on fire")

def get_step_types(state):
    return [("boom", Boom)]
"""


def test_summary_counts_the_failed_step_and_previews_a_raised_error(
    cli: Invoke, write: Write
) -> None:
    write("raiser/plugin.yaml", "name: raiser\nversion: '1.0'\nmodule: raiser_impl\n")
    write("raiser/raiser_impl.py", RAISING_PLUGIN)
    config = write("plugins.yaml", "plugins:\n  raiser:\n    path: raiser\n")
    workflow = write(
        "boom.yaml",
        """
        workflow:
          name: boom
          steps:
            - name: first
              type: test_echo
              value: fine
            - name: blast
              type: boom
    """,
    )
    result = cli("run", workflow, "--plugins", config)
    assert result.exit_code == 1
    rows = {ln.split()[1]: ln for ln in result.stdout.splitlines() if ln.startswith("│")}
    assert "failed" in rows["blast"]
    assert "RuntimeError: the disk is on fire" in rows["blast"]  # the error as preview
    assert "1 ran, 1 failed, 0 skipped" in result.stdout
    as_json = json.loads(cli("run", workflow, "--plugins", config, "--json").stdout)
    assert as_json["results"] == {"first": "fine"}
    assert as_json["error"]["cause"] == "crashed"


def test_live_mode_without_keys_fails_before_running(cli: Invoke, tmp_path: Path) -> None:
    for args, env in (
        (("--mode", "live"), None),
        ((), {"PIPELINE_EX_MODE": "live"}),
    ):
        result = cli(
            "run",
            EXAMPLES / "claude_gemini_chain.yaml",
            *args,
            "--output-dir",
            tmp_path / "out",
            env=env,
        )
        assert result.exit_code == 2, result.stderr
        assert "error [" in result.stderr
        assert "ANTHROPIC_API_KEY" in result.stderr or "live" in result.stderr
        assert result.stdout == ""
        no_traceback(result)
    assert not (tmp_path / "out").exists()  # nothing ran


def test_unknown_mode_is_a_usage_error(cli: Invoke) -> None:
    result = cli("run", EXAMPLES / "parallel_review.yaml", env={"PIPELINE_EX_MODE": "bogus"})
    assert result.exit_code == 2
    assert "error [usage]" in result.stderr


def test_missing_workflow_file_is_a_usage_error(cli: Invoke) -> None:
    result = cli("run", "does-not-exist.yaml")
    assert result.exit_code == 2
    assert "error [usage]" in result.stderr and "does-not-exist.yaml" in result.stderr


def test_plugin_step_runs_with_plugins_flag(cli: Invoke, write: Write, hello_config: Path) -> None:
    workflow = write(
        "hello.yaml",
        """
        workflow:
          name: hello_run
          greeting_style: warm
          steps:
            - name: hi
              type: hello
              who: plugins
    """,
    )
    result = cli("run", workflow, "--plugins", hello_config, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["hi"]["text"] == "hello plugins"
    via_env = cli("run", workflow, "--json", env={"PIPELINE_EX_PLUGINS": str(hello_config)})
    assert via_env.exit_code == 0, via_env.stderr
    without = cli("run", workflow)
    assert without.exit_code == 2
    assert "unknown step type 'hello'" in without.stderr


def test_failed_plugin_is_a_warning_and_the_run_goes_on(
    cli: Invoke, write: Write, broken_config: Path
) -> None:
    workflow = write(
        "echo.yaml",
        """
        workflow:
          name: echo
          steps:
            - name: a
              type: test_echo
              value: still works
    """,
    )
    result = cli("run", workflow, "--plugins", broken_config, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"a": "still works"}
    warnings = [ln for ln in result.stderr.splitlines() if ln.startswith("warning [")]
    assert len(warnings) == 1
    assert warnings[0].startswith("warning [validation_failed]:")
    assert "ghost" in warnings[0]


def test_invalid_plugin_config_stops_a_run_with_exit_2(cli: Invoke, write: Write) -> None:
    config = write("bad_config.yaml", "plugins:\n  x:\n    module: a:b\n    surprise: 1\n")
    result = cli("run", EXAMPLES / "parallel_review.yaml", "--plugins", config)
    assert result.exit_code == 2
    assert "error [schema_invalid]" in result.stderr and "surprise" in result.stderr
