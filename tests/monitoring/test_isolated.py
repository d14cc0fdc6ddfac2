"""An isolated plugin's restarts and failure, as monitoring shows them."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from pipeline_ex import Runtime
from pipeline_ex.errors import StepFailedError

PLUGIN = """
import os


class Crash:
    def execute(self, step, context):
        if step.get("how") == "exit":
            os._exit(7)
        return {"success": True, "text": "fine"}


def init(config):
    return {}


def get_metadata(state):
    return {"name": "iso", "version": "1.0.0", "api_version": 1}


def get_step_types(state):
    return [("crash", Crash)]
"""


def _run(runtime: Runtime, how: str | None = None) -> Any:
    step: dict[str, Any] = {"name": "s", "type": "crash"}
    if how is not None:
        step["how"] = how
    return runtime.run({"workflow": {"name": "w", "steps": [step]}})


def test_restarts_and_the_used_up_budget_show_in_the_snapshot(tmp_path: Path) -> None:
    folder = tmp_path / "iso"
    folder.mkdir()
    (folder / "plugin.yaml").write_text("name: iso\nversion: 1.0.0\nmodule: plugin\n")
    (folder / "plugin.py").write_text(textwrap.dedent(PLUGIN))
    config = {
        "plugins": {
            "iso": {
                "path": str(folder),
                "isolation": "process",
                "restart": {"max_restarts": 1, "window_s": 60},
            }
        }
    }
    with Runtime(config) as runtime:
        assert runtime.load_report.ok, runtime.load_report.failed
        with pytest.raises(StepFailedError):
            _run(runtime, "exit")
        assert _run(runtime)["s"]["text"] == "fine"  # the restarted child serves
        snapshot = runtime.monitoring.plugin("iso")
        assert snapshot is not None and snapshot.isolation == "process"
        assert snapshot.restarts == 1 and snapshot.status == "active"
        step = {(c.kind, c.name): c for c in snapshot.components}[("step_type", "crash")]
        assert (step.calls, step.errors, step.errors_by_code) == (2, 1, {"crashed": 1})
        with pytest.raises(StepFailedError):
            _run(runtime, "exit")  # over the budget: the plugin is failed
        snapshot = runtime.monitoring.plugin("iso")
        assert snapshot is not None and snapshot.status == "failed"
        assert "restart" in snapshot.history[-1].reason
