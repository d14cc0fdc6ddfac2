"""``pipeline-ex dspy optimize`` and ``pipeline-ex dspy cache list|clear``; ``run --json``
stays clean while DSPy compiles; the example workflow."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from dspy_helpers import qa_workflow
from typer.testing import CliRunner

from pipeline_ex.cli import app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dspy"


def cli(*args: str | Path) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args], prog_name="pipeline-ex")


def workflow_file(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_optimize_prints_held_out_metric_before_and_after_as_json(
    plugin_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = plugin_config()
    result = cli(
        "dspy", "optimize", workflow_file(tmp_path, qa_workflow()), "--plugins", config, "--json"
    )
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert row["step"] == "answer" and row["status"] == "optimized"
    assert row["optimizer"] == "BootstrapFewShot" and row["provider"] == "mock_claude"
    assert (row["train_size"], row["holdout_size"]) == (4, 2)
    assert row["metric_before"] == 1.0 and row["metric_after"] == 1.0
    assert row["num_demos"] == 2 and row["lm_calls"] > 4
    # the compile replaced the cached program: the next run is a cache hit
    listed = cli("dspy", "cache", "list", "--plugins", config, "--json")
    [entry] = json.loads(listed.stdout)
    assert entry["key"] == row["key"] and entry["step"] == "answer"


def test_optimize_table_and_unknown_step(
    plugin_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = plugin_config()
    wf = workflow_file(tmp_path, qa_workflow())
    table = cli("dspy", "optimize", wf, "--plugins", config)
    assert table.exit_code == 0, table.output
    assert "held-out" in table.stdout and "BootstrapFewShot" in table.stdout
    missing = cli("dspy", "optimize", wf, "--plugins", config, "--step", "nope")
    assert missing.exit_code == 2
    assert "no DSPy step or chain link named 'nope'" in missing.stderr


def test_optimize_without_the_plugin_is_a_usage_error(tmp_path: Path) -> None:
    result = cli(
        "dspy",
        "optimize",
        workflow_file(
            tmp_path,
            {
                "workflow": {
                    "name": "w",
                    "steps": [
                        {
                            "name": "s",
                            "type": "claude",
                            "prompt": [{"type": "static", "content": "x"}],
                        }
                    ],
                }
            },
        ),
    )
    assert result.exit_code == 2
    assert "[dspy_plugin_not_loaded]" in result.stderr


def test_cache_clear_removes_entries_and_list_shows_none(
    plugin_config: Callable[..., Path], runtimes: Callable[..., Any]
) -> None:
    runtimes(plugin_config()).run(qa_workflow())
    listed = cli("dspy", "cache", "list")  # the default folder under the working directory
    assert listed.exit_code == 0 and "answer" in listed.stdout
    cleared = cli("dspy", "cache", "clear")
    assert cleared.exit_code == 0 and "removed 1 compiled program(s)" in cleared.stdout
    assert "no compiled programs" in cli("dspy", "cache", "list").stdout


def test_run_json_stdout_stays_one_json_document_while_dspy_compiles(
    plugin_config: Callable[..., Path], tmp_path: Path
) -> None:
    result = cli(
        "run", workflow_file(tmp_path, qa_workflow()), "--plugins", plugin_config(), "--json"
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["answer"]["dspy"]["cache_hit"] is False


def test_example_workflow_compiles_then_hits_the_cache(tmp_path: Path) -> None:
    folder = tmp_path / "example"
    shutil.copytree(EXAMPLE, folder)
    args = (
        "run",
        folder / "qa_pipeline.yaml",
        "--plugins",
        folder / "plugin_config.yaml",
        "--json",
    )
    first, second = (json.loads(cli(*args).stdout) for _ in range(2))
    for name in ("answer", "profile"):
        assert first[name]["dspy"]["optimized"] or name == "profile"
        assert first[name]["dspy"]["cache_hit"] is False
    assert second["answer"]["dspy"]["cache_hit"] is True
    assert second["profile"]["links"]["country"]["dspy"]["cache_hit"] is True
    assert second["answer"]["answer"] == "Paris" and second["profile"]["country"] == "France"
