"""``isolation: process | sandbox`` in a plugin config, through the Runtime and the plugin
manager: the manager, registries and engine do not know where a plugin runs; a crashing
isolated step fails only its step; the restart budget marks the plugin failed; unload,
reload and shutdown leave no child behind; grants decide the child's environment."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
from isolation_processes import child_pids

from pipeline_ex import Runtime
from pipeline_ex.errors import StepFailedError
from pipeline_ex.plugins import PluginStatus

PLUGIN = """
import os


class Crash:
    def execute(self, step, context):
        if step.get("how") == "exit":
            os._exit(7)
        if step.get("how") == "segfault":
            import ctypes
            ctypes.string_at(0)
        return {"success": True, "text": "pid " + str(os.getpid())}


class Env:
    def execute(self, step, context):
        return {"success": True, "token": os.environ.get("ISO_TOKEN"),
                "secret": os.environ.get("ISO_SECRET")}


class Ask:
    def execute(self, step, context):
        reply = context.providers.get("mock_claude").query("hello from the child", {})
        return {"success": True, "text": "child saw: " + reply["text"]}


def init(config):
    return {}


def get_metadata(state):
    return {"name": "iso", "version": "1.0.0", "api_version": 1,
            "permissions": PERMISSIONS}


def get_step_types(state):
    return [("crash", Crash), ("env", Env), ("ask", Ask)]


PERMISSIONS = PERMISSIONS_HERE
"""


def _plugin(root: Path, permissions: list[str] | None = None) -> Path:
    folder = root / "iso"
    folder.mkdir()
    (folder / "plugin.yaml").write_text("name: iso\nversion: 1.0.0\nmodule: plugin\n")
    source = PLUGIN.replace("PERMISSIONS_HERE", repr(permissions or []))
    (folder / "plugin.py").write_text(textwrap.dedent(source))
    return folder


def _config(folder: Path, **entry: Any) -> dict[str, Any]:
    return {"plugins": {"iso": {"path": str(folder), "isolation": "process", **entry}}}


def _run(runtime: Runtime, step: dict[str, Any]) -> Any:
    return runtime.run({"workflow": {"name": "w", "steps": [{"name": "s", **step}]}})["s"]


@pytest.fixture(autouse=True)
def _no_leftover_children() -> Any:
    before = child_pids()
    yield
    assert child_pids() <= before, "an isolated plugin's child outlived its runtime"


def test_an_isolated_step_runs_in_its_own_process_and_reaches_host_providers(
    tmp_path: Path,
) -> None:
    with Runtime(_config(_plugin(tmp_path))) as runtime:
        assert runtime.load_report.ok, runtime.load_report.failed
        record = runtime.plugins.get_plugin("iso")
        assert record.isolation == "process" and record.summary()["isolation"] == "process"
        text = _run(runtime, {"type": "crash"})["text"]
        assert text.startswith("pid ") and int(text.split()[1]) != os.getpid()
        assert _run(runtime, {"type": "ask"})["text"].startswith("child saw: Mock response")


@pytest.mark.parametrize("how", ["exit", "segfault"])
def test_a_crashing_isolated_step_fails_only_its_step(tmp_path: Path, how: str) -> None:
    config = _config(
        _plugin(tmp_path, ["native_code"]), restart={"max_restarts": 3, "window_s": 60}
    )
    config["security"] = {"grants": {"iso": ["native_code"]}}  # ctypes, to segfault
    with Runtime(config) as runtime:
        with pytest.raises(StepFailedError) as info:
            _run(runtime, {"type": "crash", "how": how})
        assert info.value.cause_code == "crashed"
        assert ("7" if how == "exit" else "SIGSEGV") in info.value.message
        # the host goes on, the plugin restarted, the other plugins serve
        assert _run(runtime, {"type": "crash"})["success"]
        assert _run(runtime, {"type": "test_echo", "value": 1}) == 1


def test_a_used_up_restart_budget_marks_the_plugin_failed(tmp_path: Path) -> None:
    config = _config(_plugin(tmp_path), restart={"max_restarts": 1, "window_s": 60})
    with Runtime(config) as runtime:
        for _ in range(2):
            with pytest.raises(StepFailedError):
                _run(runtime, {"type": "crash", "how": "exit"})
        record = runtime.plugins.get_plugin("iso")
        assert record.status == PluginStatus.FAILED
        with pytest.raises(StepFailedError) as info:
            _run(runtime, {"type": "crash"})  # its step types answer with that error
        assert "restart" in info.value.message
        runtime.plugins.unload_plugin("iso")
        assert "crash" not in runtime.steps


def test_unload_reload_and_close_leave_no_child(tmp_path: Path) -> None:
    with Runtime(_config(_plugin(tmp_path))) as runtime:
        first = int(_run(runtime, {"type": "crash"})["text"].split()[1])
        runtime.plugins.reload_plugin("iso")
        second = int(_run(runtime, {"type": "crash"})["text"].split()[1])
        assert first != second  # a new child runs the current code
        assert first not in child_pids()
        runtime.plugins.unload_plugin("iso")
        assert second not in child_pids()


def test_the_child_gets_only_the_environment_its_grants_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ISO_TOKEN", "t-1")
    monkeypatch.setenv("ISO_SECRET", "s-1")
    config = _config(_plugin(tmp_path, ["env:ISO_TOKEN"]))
    config["security"] = {"grants": {"iso": ["env:ISO_TOKEN"]}}
    with Runtime(config) as runtime:
        result = _run(runtime, {"type": "env"})
        assert result["token"] == "t-1" and result["secret"] is None


def test_a_sandboxed_plugin_lists_its_layers_on_the_record(tmp_path: Path) -> None:
    config = _config(_plugin(tmp_path), isolation="sandbox", sandbox_degrade="allow")
    with Runtime(config) as runtime:
        assert runtime.load_report.ok, runtime.load_report.failed
        record = runtime.plugins.get_plugin("iso")
        assert record.isolation == "sandbox"
        assert record.layers  # what the kernel put in force (degraded ones allowed here)
        assert _run(runtime, {"type": "crash"})["success"]
