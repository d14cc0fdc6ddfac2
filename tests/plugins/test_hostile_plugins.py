"""Plugins that raise odd things, hang in odd places or change under a reload: the host
keeps going and nothing of them stays half-registered."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from plugin_samples import EchoStep, make_plugin

from pipeline_ex.errors import PluginError
from pipeline_ex.plugins import Plugin, PluginManager, PluginStatus
from pipeline_ex.plugins.loader import PluginSpec
from waiting import PATIENCE, finish


def _load_all(manager: PluginManager, plugins: dict[str, Any]) -> Any:
    original = manager._resolve
    manager._resolve = lambda spec, target: original(spec, plugins[spec.name])  # type: ignore[method-assign]
    try:
        return manager.load_specs([PluginSpec(name=n, module="x:y") for n in plugins])
    finally:
        manager._resolve = original  # type: ignore[method-assign]


def test_sys_exit_and_lying_generators_fail_only_their_plugin(manager: PluginManager) -> None:
    events: list[str] = []

    class Exits(Plugin):
        def init(self, config: Any) -> Any:
            raise SystemExit(3)

        def get_metadata(self, state: Any) -> Any:
            return {"name": "exits", "version": "1"}

    class Lies(Plugin):
        def terminate(self, state: Any) -> None:
            events.append("terminate:lies")

        def get_metadata(self, state: Any) -> Any:
            return {"name": "lies", "version": "1"}

        def get_step_types(self, state: Any) -> Iterator[tuple[str, Any]]:
            yield ("lies_step", EchoStep)
            raise RuntimeError("lying generator")

    report = _load_all(
        manager,
        {"exits": Exits, "lies": Lies, "good": make_plugin("good", steps={"g": EchoStep})},
    )
    assert report.loaded == ("good",)
    assert report.failed["exits"].code == "init_failed"
    assert "SystemExit" in report.failed["exits"].message
    assert "lying generator" in report.failed["lies"].message
    assert events == ["terminate:lies"]
    for name in ("exits", "lies"):
        assert manager.get_plugin(name).status == PluginStatus.FAILED
        assert not manager.integrator.leftovers(name)


def test_a_component_that_hangs_when_instantiated_is_a_timeout(manager: PluginManager) -> None:
    release = threading.Event()
    stuck: list[threading.Thread] = []

    class SlowStep:
        def __init__(self) -> None:
            stuck.append(threading.current_thread())
            release.wait(PATIENCE)

        def execute(self, step: Any, context: Any) -> Any:
            return None

    manager.guard.timeout = 0.3
    try:
        with pytest.raises(PluginError) as info:
            manager.load_plugin(
                "slow_component", make_plugin("slow_component", steps={"slow": SlowStep})
            )
        assert info.value.code == "timeout" and "components" in info.value.message
        manager.guard.timeout = 2.0  # the fixture's again: the next load races no short deadline
        manager.load_plugin("after", make_plugin("after", steps={"after_step": EchoStep}))
    finally:
        release.set()
    finish(stuck[0], "the abandoned worker instantiating SlowStep")
    assert "slow" not in manager.steps and not manager.integrator.leftovers("slow_component")


def test_a_step_whose_execute_breaks_on_the_second_read_is_read_once(
    manager: PluginManager,
) -> None:
    """Hooks are read once, inside the plugin's deadline; the host never asks again."""

    class Liar:
        def __init__(self) -> None:
            self.reads = 0

        @property
        def execute(self) -> Any:
            self.reads += 1
            if self.reads > 1:
                raise RuntimeError("execute is gone")
            return lambda step, context: "ran"

    liar = Liar()
    manager.load_plugin("liar", make_plugin("liar", steps={"liar_step": liar}))
    _, call = manager.steps.resolve("liar_step")
    assert call({}, None) == "ran"
    assert manager.steps.resolve("liar_step")[1]({}, None) == "ran"
    assert liar.reads == 1  # once, in the deadline: never at registration or dispatch


def test_a_degraded_plugin_still_counts_as_loaded(manager: PluginManager) -> None:
    events: list[str] = []

    class Sick(Plugin):
        def terminate(self, state: Any) -> None:
            events.append("terminate:sick")

        def get_metadata(self, state: Any) -> Any:
            return {"name": "sick", "version": "1.0"}

        def get_step_types(self, state: Any) -> Any:
            return [("sick_step", EchoStep)]

        def health_check(self, state: Any) -> Any:
            raise RuntimeError("unwell")

    manager.load_plugin("sick", Sick)
    assert manager.health("sick")["status"] == "degraded"
    manager.load_plugin("needs_sick", make_plugin("needs_sick", dependencies=["sick>=1"]))
    with pytest.raises(PluginError) as info:
        manager.unload_plugin("sick")
    assert info.value.code == "in_use"
    manager.shutdown()
    assert "terminate:sick" in events and "sick_step" not in manager.steps


def test_loading_a_config_again_with_an_active_plugin_and_a_new_dependent(
    manager: PluginManager,
) -> None:
    assert _load_all(manager, {"base": make_plugin("base")}).ok
    report = _load_all(
        manager,
        {"base": make_plugin("base"), "child": make_plugin("child", dependencies=["base"])},
    )
    assert report.loaded == ("child",)
    assert report.failed["base"].code == "component_conflict"  # already loaded, said so
    assert manager.get_plugin("base").status == PluginStatus.ACTIVE


def test_overrides_survive_reloads(manager: PluginManager) -> None:
    manager.load_plugin("a", make_plugin("a", steps={"x": EchoStep("a:")}))
    manager.load_plugin("b", make_plugin("b", steps={"x": EchoStep("b:")}), overrides=("x",))
    manager.reload_plugin("b")
    assert manager.steps.get("x").target.tag == "b:"
    manager.unload_plugin("b")
    assert manager.steps.get("x").target.tag == "a:" and manager.steps.owner("x") == "a"


def test_reload_refuses_what_would_break_dependents(manager: PluginManager) -> None:
    versions = iter(["2.0", "1.0"])

    class Shifting(Plugin):
        version = next(versions)

        def get_metadata(self, state: Any) -> Any:
            return {"name": "lib", "version": Shifting.version}

        def get_step_types(self, state: Any) -> Any:
            return [("lib_step", EchoStep(f"v{Shifting.version}:"))]

    manager.load_plugin("lib", Shifting)
    manager.load_plugin("app", make_plugin("app", dependencies=["lib>=2"]))
    Shifting.version = next(versions)
    with pytest.raises(PluginError) as info:
        manager.reload_plugin("lib")
    assert info.value.code == "version_conflict" and "lib>=2" in info.value.message
    assert manager.get_plugin("lib").version == "2.0"
    assert manager.steps.get("lib_step").target.tag == "v2.0:"


def test_reloading_an_instance_is_refused_with_a_code(manager: PluginManager) -> None:
    instance = make_plugin("inst")()
    manager.load_plugin("inst", instance)
    with pytest.raises(PluginError) as info:
        manager.reload_plugin("inst")
    assert info.value.code == "validation_failed"
    assert manager.get_plugin("inst").status == PluginStatus.ACTIVE


def test_state_of_a_plugin_timed_out_after_init_is_terminated(manager: PluginManager) -> None:
    release = threading.Event()
    terminated = threading.Event()
    states: list[Any] = []
    stuck: list[threading.Thread] = []

    class SlowAfterInit(Plugin):
        def init(self, config: Any) -> Any:
            return {"resource": "open"}

        def terminate(self, state: Any) -> None:
            states.append(state)
            terminated.set()

        def get_metadata(self, state: Any) -> Any:
            return {"name": "slow_after", "version": "1"}

        def get_providers(self, state: Any) -> Any:
            stuck.append(threading.current_thread())
            release.wait(PATIENCE)
            return []

    manager.guard.timeout = 0.3
    try:
        with pytest.raises(PluginError) as info:
            manager.load_plugin("slow_after", SlowAfterInit)
        assert info.value.code == "timeout"
    finally:
        release.set()
    assert terminated.wait(PATIENCE)
    finish(stuck[0], "the abandoned get_providers call")
    assert states == [{"resource": "open"}]
    assert manager.get_plugin("slow_after").status == PluginStatus.FAILED
