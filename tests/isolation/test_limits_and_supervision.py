"""Limits, the restart budget and the settings' validation."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pipeline_ex.errors import PluginError
from pipeline_ex.plugins.isolation import (
    IsolationError,
    IsolationSpec,
    Limits,
    RestartPolicy,
)
from pipeline_ex.plugins.isolation.supervisor import RestartBudget

ACTIONS = """
    def init(config):
        return config
    def get_metadata(state):
        return {"name": "hostile"}
    class Step:
        def execute(self, step, context):
            scope = {}
            exec(step["code"], scope)
            return scope.get("out")
    def get_step_types(state):
        return [("act", Step())]
"""


def step_of(plugin: Any) -> Any:
    ((_, step),) = plugin.get_step_types(plugin.init({}))
    return step


def test_restart_budget_slides_with_its_window() -> None:
    now = [0.0]
    budget = RestartBudget(RestartPolicy(max_restarts=2, window_s=10.0), clock=lambda: now[0])
    assert budget.take() and budget.take()
    assert not budget.take()  # third within 10 s
    now[0] = 10.0  # the first two fall out of the window
    assert budget.recent() == 0
    assert budget.take()
    assert budget.total == 3


def test_zero_restarts_fails_at_the_first_crash(start, write_plugin) -> None:
    failed: list[PluginError] = []
    plugin = start(
        write_plugin(ACTIONS),
        restart=RestartPolicy(max_restarts=0, window_s=1.0),
        on_failed=failed.append,
    )
    with pytest.raises(IsolationError, match="restart budget used up"):
        step_of(plugin).execute({"code": "import os\nos._exit(2)"}, None)
    assert plugin.status == "failed" and len(failed) == 1


@pytest.mark.parametrize(
    ("settings", "text"),
    [
        ({"memory_mb": 0}, "memory_mb must be a positive integer"),
        ({"cpu_s": True}, "cpu_s must be a positive integer"),
        ({"open_files": "64"}, "open_files must be a positive integer"),
        ({"call_timeout_s": 0}, "call_timeout_s must be a positive number"),
    ],
)
def test_bad_limits_are_refused(settings: dict[str, Any], text: str) -> None:
    with pytest.raises(ValueError, match=text):
        Limits(**settings)


def test_limits_are_values() -> None:
    assert Limits(memory_mb=64) == Limits(memory_mb=64) != Limits()
    assert hash(Limits()) == hash(Limits())
    with pytest.raises(AttributeError):
        Limits().cpu_s = 5  # type: ignore[misc]
    assert Limits().as_wire() == {
        "memory_mb": 512,
        "cpu_s": 60,
        "open_files": 64,
        "call_timeout_s": 10.0,
    }


@pytest.mark.parametrize(
    ("settings", "text"),
    [
        ({}, "exactly one of reference and directory"),
        ({"reference": "a:b", "directory": "/x"}, "exactly one of reference and directory"),
        ({"reference": "a:b", "tier": "vm"}, "tier must be one of process, sandbox"),
        ({"reference": "a:b", "env": "HOME"}, "env must be a collection"),
    ],
)
def test_bad_specs_are_refused(settings: dict[str, Any], text: str) -> None:
    with pytest.raises(PluginError, match=text) as caught:
        IsolationSpec(plugin="p", **settings)
    assert caught.value.code == "validation_failed"


def test_bad_restart_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="max_restarts"):
        RestartPolicy(max_restarts=-1)
    with pytest.raises(ValueError, match="window_s"):
        RestartPolicy(window_s=0)


@pytest.mark.slow  # a child spins until its CPU limit
def test_cpu_limit_ends_a_spinning_child(start, write_plugin, still_serving) -> None:
    plugin = start(write_plugin(ACTIONS), timeout=60.0)
    spinning = start(
        write_plugin(ACTIONS),
        timeout=60.0,
        cpu_s=1,
    )
    with pytest.raises(IsolationError) as caught:
        step_of(spinning).execute({"code": "while True:\n    pass"}, None)
    assert caught.value.code == "crashed"
    assert "SIGXCPU" in caught.value.message or "SIGKILL" in caught.value.message
    assert plugin.status == "running"
    still_serving()


def test_open_files_limit_holds(start, write_plugin) -> None:
    plugin = start(write_plugin(ACTIONS), open_files=16)
    code = "files = [open('/dev/null') for _ in range(32)]"
    with pytest.raises(IsolationError) as caught:
        step_of(plugin).execute({"code": code}, None)
    assert caught.value.remote_type == "OSError"  # type: ignore[attr-defined]
    assert "Too many open files" in caught.value.message


def test_close_during_a_hanging_call_ends_the_call(start, write_plugin) -> None:
    plugin = start(write_plugin(ACTIONS), timeout=120.0)
    step = step_of(plugin)
    pid = plugin.pid
    caught: list[BaseException] = []

    def call() -> None:
        try:
            step.execute({"code": "import time\ntime.sleep(600)"}, None)
        except BaseException as exc:
            caught.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until the worker's call holds the plugin's lock
        if not plugin._lock.acquire(blocking=False):
            break
        plugin._lock.release()
        time.sleep(0.005)
    time.sleep(0.1)  # let the request reach the child (either way the call must end)
    plugin.close()
    worker.join(30)
    assert not worker.is_alive()
    assert len(caught) == 1 and isinstance(caught[0], IsolationError)
    assert caught[0].code == "crashed" and plugin.restarts == 0
    assert plugin.status == "closed" and not Path(f"/proc/{pid}").exists()
