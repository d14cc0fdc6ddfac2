"""``pipeline-ex plugins status`` and ``--log-format json``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from typer.testing import Result

Invoke = Callable[..., Result]
Write = Callable[[str, str], Path]

DISABLED = """
plugins:
  sleeper:
    module: not_imported_because_disabled:Plugin
    enabled: false
"""


def test_status_table_lists_every_plugin_with_its_numbers(cli: Invoke, write: Write) -> None:
    config = write("cfg.yaml", DISABLED)
    result = cli("plugins", "status", "--plugins", config, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    for header in ("status", "version", "load ms", "calls", "errors", "p50 ms", "p99 ms"):
        assert header in result.stdout
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if "│" in line}
    assert "active" in rows["core_steps"] and "ok" in rows["core_steps"]  # health checked
    assert "disabled" in rows["sleeper"]


def test_status_json_is_the_monitoring_snapshot(cli: Invoke, write: Write) -> None:
    config = write("cfg.yaml", DISABLED)
    result = cli("plugins", "status", "--json", "--plugins", config)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert {"plugins", "runs", "taken_at"} <= set(document)
    by_name = {p["name"]: p for p in document["plugins"]}
    assert by_name["sleeper"]["status"] == "disabled"
    core = by_name["core_steps"]
    assert core["status"] == "active" and core["health"]["ok"] is True
    assert core["calls"] >= 1 and core["loads"] == 1
    assert {c["name"] for c in core["components"]} >= {"claude", "gemini"}


def test_status_watch_refreshes_a_bounded_number_of_times(cli: Invoke) -> None:
    result = cli("plugins", "status", "--watch", "--count", "3", "--interval", "0.05", "--json")
    assert result.exit_code == 0, result.stderr
    documents = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(documents) == 3
    checks = [d["plugins"][0]["health"]["checked_at"] for d in documents]
    assert checks == sorted(checks) and len(set(checks)) == 3  # fresh checks each time
    table = cli("plugins", "status", "--watch", "--count", "2", "--interval", "0.05")
    assert table.exit_code == 0, table.stderr
    assert "core_steps" in table.stdout


def test_log_format_json_writes_one_object_per_record(cli: Invoke, write: Write) -> None:
    workflow = write(
        "wf.yaml",
        """
        workflow:
          name: logged
          steps:
            - name: ask
              type: claude
              prompt:
                - type: static
                  content: hello
        """,
    )
    result = cli("--log-format", "json", "-v", "run", workflow)
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert records, result.stderr
    for record in records:
        assert {"time", "level", "logger", "message", "plugin", "workflow", "step"} <= set(record)
    finished = [r for r in records if r["logger"] == "pipeline_ex.monitoring.service"]
    assert finished and finished[-1]["workflow"] == "logged"
    assert "ok" in finished[-1]["message"]
