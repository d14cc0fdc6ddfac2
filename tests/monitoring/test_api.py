"""``runtime.monitoring``: the snapshot contract, run records, provider counting, status
history, disabled and unloaded plugins, observers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from monitoring_samples import AsksProvider, Boom, Echo, Noop, plugin

from pipeline_ex import Runtime
from pipeline_ex.errors import StepFailedError
from pipeline_ex.monitoring import Observer, RunRecord

PLUGIN_KEYS = {
    "name",
    "version",
    "status",
    "isolation",
    "load_seconds",
    "loads",
    "restarts",
    "calls",
    "errors",
    "errors_by_code",
    "p50_ms",
    "p99_ms",
    "last_error",
    "health",
    "history",
    "components",
}
RUN_KEYS = {
    "id",
    "workflow",
    "started_at",
    "duration_s",
    "outcome",
    "error_code",
    "error",
    "steps",
    "step_types",
    "providers",
    "source",
}


def _workflow(*steps: dict[str, Any], name: str = "probe") -> dict[str, Any]:
    return {"workflow": {"name": name, "steps": list(steps)}}


@pytest.fixture
def rt() -> Iterator[Runtime]:
    runtime = Runtime()
    runtime.plugins.load_plugin("echoes", plugin("echoes", providers={"echo": Echo}))
    runtime.plugins.load_plugin(
        "asker", plugin("asker", steps={"ask": AsksProvider, "noop": Noop, "boom": Boom})
    )
    try:
        yield runtime
    finally:
        runtime.close()


def test_snapshot_dict_has_the_contract_keys_and_is_strict_json(rt: Runtime) -> None:
    rt.run(_workflow({"name": "a", "type": "ask", "provider": "echo"}))
    document = rt.monitoring.snapshot().as_dict()
    json.dumps(document, allow_nan=False)  # strict JSON
    assert {"plugins", "runs", "taken_at"} <= set(document)
    names = [p["name"] for p in document["plugins"]]
    assert names[:5] == [
        "core_steps",
        "mock_providers",
        "live_providers",
        "enhanced_schema_validator",
        "json_yaml_bridge",
    ]  # load order
    for entry in document["plugins"]:
        assert set(entry) >= PLUGIN_KEYS, entry["name"]
        assert set(entry["health"]) == {"ok", "message", "checked_at"}
        for component in entry["components"]:
            assert component["kind"] in ("step_type", "provider", "schema_extension")
            assert {"name", "calls", "errors", "errors_by_code", "p50_ms", "p99_ms"} <= set(
                component
            )
    asker = rt.monitoring.plugin("asker")
    assert asker is not None and asker.version == "1.2.3" and asker.status == "active"
    assert asker.loads == 1 and asker.load_seconds is not None and asker.restarts == 0
    assert [h.status for h in asker.history] == ["loading", "active"]
    assert rt.monitoring.plugin("nobody") is None


def test_provider_queries_from_inside_a_step_count_as_the_providers_calls(rt: Runtime) -> None:
    rt.run(_workflow({"name": "a", "type": "ask", "provider": "echo"}))
    echoes = rt.monitoring.plugin("echoes")
    asker = rt.monitoring.plugin("asker")
    assert echoes is not None and asker is not None
    provider = {(c.kind, c.name): c for c in echoes.components}[("provider", "echo")]
    step = {(c.kind, c.name): c for c in asker.components}[("step_type", "ask")]
    assert provider.calls == 1 and step.calls == 1
    assert provider.p50_ms is not None and step.p50_ms is not None
    # the provider's time is also inside the step's
    assert step.total_seconds >= provider.total_seconds
    (run,) = rt.monitoring.runs()
    assert run.providers == ("echo",) and run.step_types == ("ask",)


def test_every_run_is_recorded_newest_first_with_its_outcome(rt: Runtime) -> None:
    rt.run(_workflow({"name": "a", "type": "noop"}, {"name": "b", "type": "noop"}))
    with pytest.raises(StepFailedError):
        rt.run(_workflow({"name": "c", "type": "boom"}, name="breaks"), source="server")
    rt.run(_workflow({"name": "d", "type": "noop"}), labels={"request": "r-1"}, run_id="r-1")
    newest, failed, first = rt.monitoring.runs()
    assert newest.id == "r-1" and len({newest.id, failed.id, first.id}) == 3
    assert (first.workflow, first.outcome, first.steps, first.source) == ("probe", "ok", 2, "api")
    assert (failed.outcome, failed.error_code, failed.source) == ("failed", "step_failed", "server")
    assert failed.error is not None and "boom" in failed.error
    assert newest.labels == {"request": "r-1"}
    assert [r.as_dict()["outcome"] for r in rt.monitoring.runs(limit=2)] == ["ok", "failed"]
    for record in rt.monitoring.runs():
        assert set(record.as_dict()) >= RUN_KEYS
    assert rt.monitoring.run_counts() == {"ok": 2, "failed": 1, "interrupted": 0}


def test_invalid_workflows_and_interrupts_are_recorded_too(
    rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("workflow: [unclosed\n")
    with pytest.raises(Exception):  # noqa: B017 - a DocumentError subclass
        rt.run(bad)

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(rt.executor, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        rt.run(_workflow({"name": "a", "type": "noop"}))
    stopped, broken = rt.monitoring.runs()
    assert (broken.workflow, broken.outcome) == ("broken", "failed")
    assert broken.error_code is not None
    assert (stopped.outcome, stopped.error_code) == ("interrupted", "interrupted")


def test_run_history_is_bounded() -> None:
    with Runtime(run_history=3) as runtime:
        for index in range(5):
            runtime.run(
                _workflow(
                    {"name": "a", "type": "claude", "prompt": [{"type": "static", "content": "x"}]},
                    name=f"w{index}",
                )
            )
        assert [r.workflow for r in runtime.monitoring.runs()] == ["w4", "w3", "w2"]
        assert runtime.monitoring.run_counts()["ok"] == 5


def test_disabled_entries_and_unloaded_plugins_keep_a_status(tmp_path: Path) -> None:
    config = tmp_path / "plugins.yaml"
    config.write_text(
        "plugins:\n  off_duty:\n    module: not.imported:Plugin\n    enabled: false\n"
    )
    with Runtime(plugin_config=config) as runtime:
        off = runtime.monitoring.plugin("off_duty")
        assert off is not None and off.status == "disabled"
        assert off.history[-1].reason == "enabled: false in the plugin config"
        runtime.plugins.unload_plugin("json_yaml_bridge")
        gone = runtime.monitoring.plugin("json_yaml_bridge")
        assert gone is not None and gone.status == "unloaded"
        assert [h.status for h in gone.history] == ["loading", "active", "unloaded"]
        statuses = {p.name: p.status for p in runtime.monitoring.snapshot().plugins}
        assert statuses["off_duty"] == "disabled" and statuses["json_yaml_bridge"] == "unloaded"


def test_observers_see_status_changes_and_runs_until_they_unsubscribe(rt: Runtime) -> None:
    seen: list[str] = []

    class Watcher(Observer):
        def status_changed(self, plugin: str, change: Any) -> None:
            seen.append(f"{plugin}:{change.status}")

        def run_finished(self, record: RunRecord) -> None:
            seen.append(f"run:{record.outcome}")

        def step_started(self, path: str, name: str, kind: str) -> None:
            seen.append(f"step:{name}")

    unsubscribe = rt.monitoring.subscribe(Watcher())
    rt.run(_workflow({"name": "a", "type": "noop"}))
    rt.plugins.unload_plugin("echoes")
    unsubscribe()
    rt.run(_workflow({"name": "b", "type": "noop"}))
    assert seen == ["step:a", "run:ok", "echoes:unloaded"]


def test_an_observer_that_raises_does_not_fail_the_run(rt: Runtime) -> None:
    class Broken:
        def run_finished(self, record: RunRecord) -> None:
            raise RuntimeError("observer bug")

    rt.monitoring.subscribe(Broken())
    assert rt.run(_workflow({"name": "a", "type": "noop"}))["a"]["success"] is True


def test_a_provider_registered_straight_into_the_registry_is_counted_too(rt: Runtime) -> None:
    rt.providers.register_providers([("loose", Echo(), ["text"])], owner="host_app")
    assert rt.providers.get("loose").query("hi", {})["text"] == "echo: hi"
    reading = rt.monitoring.metrics.cell("host_app", "provider", "loose").read()
    assert reading.calls == 1


def test_restarts_are_read_from_the_isolated_host() -> None:
    from pipeline_ex.monitoring.service import _restarts
    from pipeline_ex.plugins.registry import PluginRecord, PluginStatus

    class Host:  # what ProcessPlugin exposes: its restart budget's total
        restarts = 2

    record = PluginRecord(name="iso", status=PluginStatus.ACTIVE, origin="x", adapter=Host())
    assert _restarts(record) == 2
    assert _restarts(record.evolve(adapter=None)) == 0
