"""``validate``, ``steps``, ``providers``, ``schema``, ``--version``, help and usage errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from typer.testing import Result

from pipeline_ex import __version__

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CORE_STEP_TYPES = {
    "claude",
    "gemini",
    "parallel_claude",
    "set_variable",
    "for_loop",
    "while_loop",
    "test_echo",
}

Invoke = Callable[..., Result]
Write = Callable[[str, str], Path]


def test_validate_ok(cli: Invoke) -> None:
    result = cli("validate", EXAMPLES / "loop_with_variables.yaml")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("valid: ")
    assert "loop_with_variables" in result.stdout


def test_validate_reports_problems_with_exit_2(cli: Invoke, write: Write) -> None:
    workflow = write(
        "bad.yaml",
        """
        workflow:
          name: x
          steps:
            - name: a
              type: claude
              prompt:
                - type: previous_response
                  step: later
            - name: later
              type: test_echo
              value: 1
    """,
    )
    result = cli("validate", workflow)
    assert result.exit_code == 2
    assert f"{workflow}:" in result.stderr
    assert "workflow.steps[0].prompt[0]" in result.stderr
    assert "Traceback" not in result.stderr


def test_steps_lists_types_with_owner(cli: Invoke) -> None:
    result = cli("steps", "--json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    owners = {row["name"]: row["plugin"] for row in rows}
    assert set(owners) >= CORE_STEP_TYPES
    assert {owners[name] for name in CORE_STEP_TYPES} == {"core_steps"}
    table = cli("steps")
    assert table.exit_code == 0
    assert "parallel_claude" in table.stdout and "core_steps" in table.stdout


def test_steps_include_plugin_step_types(cli: Invoke, hello_config: Path) -> None:
    rows = json.loads(cli("steps", "--json", "--plugins", hello_config).stdout)
    hello = next(row for row in rows if row["name"] == "hello")
    assert hello["plugin"] == "hello_plugin"
    assert hello["description"] == "Greets whoever ``who`` names."


def test_providers_lists_capabilities_and_owner(cli: Invoke) -> None:
    result = cli("providers", "--json")
    assert result.exit_code == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["mock_claude"]["plugin"] == "mock_providers"
    assert {"claude", "mock", "text_generation"} <= set(rows["mock_claude"]["capabilities"])
    assert "gemini" in rows["mock_gemini"]["capabilities"]
    table = cli("providers")
    assert "mock_gemini" in table.stdout and "text_generation" in table.stdout


def test_schema_is_the_compiled_json_schema(cli: Invoke, hello_config: Path) -> None:
    base = json.loads(cli("schema").stdout)
    assert base["properties"]["workflow"]["required"] == ["name", "steps"]
    extended = cli("schema", "--plugins", hello_config)
    assert extended.exit_code == 0, extended.stderr
    assert extended.stdout.startswith('{\n  "')  # indent 2
    workflow = json.loads(extended.stdout)["properties"]["workflow"]["properties"]
    assert workflow["greeting_style"] == {"type": "string"}
    assert "greeting_style" not in base["properties"]["workflow"]["properties"]


def test_version(cli: Invoke) -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"pipeline-ex {__version__}"


def test_bare_command_shows_help(cli: Invoke) -> None:
    result = cli()
    assert result.exit_code == 0
    for command in ("run", "validate", "steps", "providers", "schema", "convert", "plugins"):
        assert command in result.stdout


def test_help_documents_exit_codes(cli: Invoke) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    assert "provider_not_configured" in result.stdout
    assert "error [code]" in result.stdout


def test_unknown_command_is_a_usage_error(cli: Invoke) -> None:
    result = cli("frobnicate")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error [usage]: ")


def test_verbose_logging_goes_to_stderr(cli: Invoke) -> None:
    result = cli("-v", "steps", "--json")
    assert result.exit_code == 0
    json.loads(result.stdout)  # logs never pollute stdout
    assert "INFO pipeline_ex" in result.stderr
