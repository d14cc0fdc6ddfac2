"""PluginManager: lifecycle, dependency planning, conflicts, recovery, shutdown."""

from __future__ import annotations

import gc
import threading
import time
from typing import Any

import pytest
from plugin_samples import ConstProvider, EchoStep, make_plugin

from pipeline_ex.errors import PluginError
from pipeline_ex.plugins import Plugin, PluginManager, PluginStatus
from waiting import PATIENCE, finish, wait_until

EXTENSION = {"properties": {"workflow": {"properties": {"sample": {"type": "object"}}}}}


def test_load_registers_every_component_and_unload_removes_them(manager: PluginManager) -> None:
    events: list[str] = []
    plugin = make_plugin(
        "full",
        steps={"echo": EchoStep, "echo2": EchoStep()},
        providers={"const": (ConstProvider, ["text", "const"])},
        extensions={"sample": EXTENSION},
        capabilities=["demo"],
        events=events,
    )
    state = manager.load_plugin("full", plugin, {"k": 1})
    assert state == {"config": {"k": 1}}
    assert isinstance(manager.steps.get("echo").target, EchoStep)  # a class is instantiated once
    assert manager.steps.get("echo") is manager.steps.get("echo")
    assert manager.providers.capabilities("const") == {"text", "const"}
    assert "sample" in manager.configuration
    record = manager.get_plugin("full")
    assert record.status == PluginStatus.ACTIVE
    assert record.version == "1.0.0"
    assert record.components.step_types == ("echo", "echo2")
    assert record.load_time_ms is not None and record.loaded_at is not None
    assert [r.name for r in manager.registry.with_capability("demo")] == ["full"]

    manager.unload_plugin("full")
    assert events == ["init:full", "terminate:full"]
    assert not manager.integrator.leftovers("full")
    assert "echo" not in manager.steps and "const" not in manager.providers
    assert "sample" not in manager.configuration
    assert manager.registry.get("full") is None
    with pytest.raises(PluginError) as info:
        manager.get_plugin("full")
    assert info.value.code == "not_loaded"


def test_module_style_plugin(manager: PluginManager, write_module: Any) -> None:
    write_module(
        "modstyle",
        """
        class Step:
            def execute(self, step, context):
                return step["value"]

        def init(config):
            return {"n": config.get("n", 0)}

        def get_metadata(state):
            return {"name": "modstyle", "version": "2.0", "api_version": 1}

        def get_step_types(state):
            return [("mod_step", Step)]
        """,
    )
    manager.load_plugin("modstyle", "modstyle", {"n": 3})
    assert manager.get_plugin("modstyle").adapter.kind == "module"  # type: ignore[union-attr]
    assert manager.steps.get("mod_step").execute({"value": 5}, None) == 5


@pytest.mark.parametrize(
    ("metadata", "fragment"),
    [
        ({"version": "not a version"}, "PEP 440"),
        ({"api_version": 2}, "incompatible"),
        ({"api_version": "x"}, "not a version number"),
        ({"name": "someone_else"}, "differs from the configured name"),
        ({"dependencies": ["bad name with spaces>>1"]}, "dependency"),
        ({"capabilities": "not-a-list"}, "list of strings"),
    ],
)
def test_lying_metadata_is_validation_failed(
    manager: PluginManager, metadata: dict[str, Any], fragment: str
) -> None:
    plugin = make_plugin("liar", steps={"liar_step": EchoStep}, **metadata)
    with pytest.raises(PluginError) as info:
        manager.load_plugin("liar", plugin)
    assert info.value.code == "validation_failed"
    assert fragment in info.value.message
    assert "liar_step" not in manager.steps
    assert manager.get_plugin("liar").status == PluginStatus.FAILED


def test_metadata_that_changes_after_init_is_refused(manager: PluginManager) -> None:
    class Shifty(Plugin):
        def init(self, config: Any) -> Any:
            return {"v": "9.9"}

        def get_metadata(self, state: Any) -> dict[str, Any]:
            return {"name": "shifty", "version": state["v"] if state else "1.0"}

    with pytest.raises(PluginError) as info:
        manager.load_plugin("shifty", Shifty)
    assert info.value.code == "validation_failed"
    assert "changed after init" in info.value.message


def test_contract_violations_are_validation_failed(manager: PluginManager) -> None:
    class NoMetadata:
        def init(self, config: Any) -> Any:
            return None

    class WrongArity(Plugin):
        def get_metadata(self, state: Any, extra: Any) -> Any:  # type: ignore[override]
            return {}

    class BadSteps(Plugin):
        def get_metadata(self, state: Any) -> Any:
            return {"name": "bad_steps", "version": "1"}

        def get_step_types(self, state: Any) -> Any:
            return [("no_execute", object())]

    for name, target, fragment in [
        ("no_metadata", NoMetadata, "has no get_metadata"),
        ("wrong_arity", WrongArity, "exactly one argument"),
        ("bad_steps", BadSteps, "has no execute"),
    ]:
        with pytest.raises(PluginError) as info:
            manager.load_plugin(name, target)
        assert info.value.code == "validation_failed", name
        assert fragment in info.value.message


def test_init_failure_is_init_failed_and_leaves_nothing(manager: PluginManager) -> None:
    plugin = make_plugin("refuser", steps={"r": EchoStep}, init_error=ValueError("no thanks"))
    with pytest.raises(PluginError) as info:
        manager.load_plugin("refuser", plugin)
    assert info.value.code == "init_failed"
    assert "no thanks" in info.value.message
    assert not manager.integrator.leftovers("refuser")
    record = manager.get_plugin("refuser")
    assert record.status == PluginStatus.FAILED and record.error_code == "init_failed"


def test_hanging_init_is_a_timeout_and_the_host_goes_on(manager: PluginManager) -> None:
    release = threading.Event()

    class Hangs(Plugin):
        def init(self, config: Any) -> Any:
            release.wait(30)

        def get_metadata(self, state: Any) -> Any:
            return {"name": "hangs", "version": "1"}

    manager.guard.timeout = 0.2
    try:
        with pytest.raises(PluginError) as info:
            manager.load_plugin("hangs", Hangs)
        assert info.value.code == "timeout"
        manager.guard.timeout = 2.0  # the fixture's again: the next load races no short deadline
        manager.load_plugin("fine", make_plugin("fine", steps={"ok": EchoStep}))
        assert "ok" in manager.steps
    finally:
        release.set()


class _SeesCollector(Plugin):
    """Notes whether the cyclic garbage collector runs while the plugin starts; raises or
    hangs in init when its config says so."""

    name = "sees"
    seen: list[bool]

    def init(self, config: Any) -> Any:
        self.seen.append(gc.isenabled())
        if config.get("raise"):
            raise RuntimeError("no")
        if config.get("hang"):
            config["hang"].wait(30)
        return None

    def get_metadata(self, state: Any) -> Any:
        return {"name": self.name, "version": "1"}


def _sees(name: str, seen: list[bool]) -> type[_SeesCollector]:
    return type("Sees", (_SeesCollector,), {"name": name, "seen": seen})


def test_collector_pauses_for_a_load_batch_and_resumes_whatever_happens(
    manager: PluginManager,
) -> None:
    assert gc.isenabled()
    seen: list[bool] = []
    manager.load_plugin("sees", _sees("sees", seen))
    assert seen == [False] and gc.isenabled()
    with pytest.raises(PluginError) as raised:
        manager.load_plugin("raises", _sees("raises", seen), {"raise": True})
    assert raised.value.code == "init_failed"
    assert seen == [False, False] and gc.isenabled()
    release = threading.Event()
    manager.guard.timeout = 0.2
    try:
        with pytest.raises(PluginError) as hung:
            manager.load_plugin("hangs", _sees("hangs", seen), {"hang": release})
        assert hung.value.code == "timeout"
        assert gc.isenabled()  # back on while the abandoned init still hangs
    finally:
        release.set()
        manager.guard.timeout = 2.0


def test_a_collector_the_host_switched_off_stays_off(manager: PluginManager) -> None:
    seen: list[bool] = []
    gc.disable()
    try:
        manager.load_plugin("sees", _sees("sees", seen))
        assert seen == [False] and not gc.isenabled()
    finally:
        gc.enable()


def test_an_infinite_call_timeout_means_no_deadline(manager: PluginManager) -> None:
    """Review finding: ``call_timeout_s: .inf`` overflowed the nanosecond deadline."""

    class Patient(Plugin):
        def get_metadata(self, state: Any) -> Any:
            return {"name": "patient", "version": "1"}

        def get_step_types(self, state: Any) -> Any:
            return [("patient_step", EchoStep)]

        gate: threading.Event | None = None

        def health_check(self, state: Any) -> Any:
            if self.gate is not None:
                self.gate.wait(PATIENCE)
            return {"healthy": True}

    plugin = Patient
    spec = manager.loader.config_from_mapping(
        {"plugins": {"patient": {"module": "x", "limits": {"call_timeout_s": float("inf")}}}}
    ).specs[0]
    report = manager.load_specs([spec], targets={"patient": plugin})
    assert report.ok, report.failed
    assert manager.health("patient")["status"] == "active"  # a single call, no batch
    # a second check while one runs shares its answer (waiting on it had no finite bound)
    Patient.gate = threading.Event()
    first = threading.Thread(target=manager.health, args=("patient",))
    first.start()
    wait_until(lambda: "patient" in manager._checking, "the first health check running")
    threading.Timer(0.2, Patient.gate.set).start()
    assert manager.health("patient")["status"] == "active"
    finish(first, "the first health check")
    manager.unload_plugin("patient")
    assert "patient_step" not in manager.steps


def test_component_conflict_rolls_back_and_terminates(manager: PluginManager) -> None:
    events: list[str] = []
    manager.load_plugin("first", make_plugin("first", providers={"p": (ConstProvider, ["a"])}))
    second = make_plugin(
        "second",
        steps={"second_step": EchoStep},
        providers={"p": (ConstProvider, ["b"])},
        events=events,
    )
    with pytest.raises(PluginError) as info:
        manager.load_plugin("second", second)
    assert info.value.code == "component_conflict"
    assert "'p'" in info.value.message and "first" in info.value.message
    # the step batch that went in before the provider clash was rolled back
    assert "second_step" not in manager.steps
    assert not manager.integrator.leftovers("second")
    assert events == ["init:second", "terminate:second"]
    assert manager.providers.capabilities("p") == {"a"}


def test_schema_extension_clash_is_component_conflict(manager: PluginManager) -> None:
    a = {"properties": {"workflow": {"properties": {"x": {"type": "string"}}}}}
    b = {"properties": {"workflow": {"properties": {"x": {"type": "integer"}}}}}
    manager.load_plugin("ext_a", make_plugin("ext_a", extensions={"a": a}))
    with pytest.raises(PluginError) as info:
        manager.load_plugin(
            "ext_b", make_plugin("ext_b", steps={"b_step": EchoStep}, extensions={"b": b})
        )
    assert info.value.code == "component_conflict"
    assert "'b'" in info.value.message and "'a'" in info.value.message
    assert "b_step" not in manager.steps


def test_explicit_override_and_restore(manager: PluginManager) -> None:
    manager.load_plugin("base", make_plugin("base", steps={"shared": EchoStep("base:")}))
    manager.load_plugin(
        "better",
        make_plugin("better", steps={"shared": EchoStep("better:")}),
        overrides=("shared",),
    )
    assert manager.steps.get("shared").target.tag == "better:"
    assert manager.steps.owner("shared") == "better"
    manager.unload_plugin("better")
    assert manager.steps.get("shared").target.tag == "base:"
    assert manager.steps.owner("shared") == "base"


def test_load_all_orders_by_dependency_and_reports_every_problem(manager: PluginManager) -> None:
    events: list[str] = []
    plugins = {
        "app": make_plugin("app", dependencies=["lib>=1.0"], events=events),
        "lib": make_plugin("lib", version="1.4", dependencies=["core"], events=events),
        "core": make_plugin("core", events=events),
        "needs_ghost": make_plugin("needs_ghost", dependencies=["ghost"]),
        "too_new": make_plugin("too_new", dependencies=["lib>=2"]),
        "cyc_a": make_plugin("cyc_a", dependencies=["cyc_b"]),
        "cyc_b": make_plugin("cyc_b", dependencies=["cyc_a"]),
        "after_cycle": make_plugin("after_cycle", dependencies=["cyc_a"]),
        "jealous": make_plugin("jealous", conflicts=["core"]),
        "broken": make_plugin("broken", init_error=RuntimeError("boom")),
        "on_broken": make_plugin("on_broken", dependencies=["broken"]),
    }
    from pipeline_ex.plugins.loader import PluginSpec

    specs = [PluginSpec(name=n, module=f"unused:{n}") for n in plugins]
    original = manager._resolve

    def resolve(spec: PluginSpec, target: Any) -> Any:
        return original(spec, plugins[spec.name])

    manager._resolve = resolve  # type: ignore[method-assign]
    report = manager.load_specs(specs)
    assert set(report.loaded) == {"app", "lib", "core"}
    assert [e for e in events if e.startswith("init")] == ["init:core", "init:lib", "init:app"]
    codes = {name: err.code for name, err in report.failed.items()}
    assert codes == {
        "needs_ghost": "dependency_missing",
        "too_new": "version_conflict",
        "cyc_a": "dependency_cycle",
        "cyc_b": "dependency_cycle",
        "after_cycle": "dependency_missing",
        "jealous": "component_conflict",
        "broken": "init_failed",
        "on_broken": "dependency_missing",
    }
    assert "cyc_a -> cyc_b" in report.failed["cyc_a"].message or "cyc_b -> cyc_a" in (
        report.failed["cyc_a"].message
    )
    assert "'broken'" in report.failed["on_broken"].message
    assert "ghost" in report.failed["needs_ghost"].message
    assert manager.get_plugin("broken").status == PluginStatus.FAILED


def test_single_load_checks_dependencies_against_loaded(manager: PluginManager) -> None:
    with pytest.raises(PluginError) as info:
        manager.load_plugin("child", make_plugin("child", dependencies=["parent"]))
    assert info.value.code == "dependency_missing"
    manager.load_plugin("parent", make_plugin("parent", version="0.5"))
    with pytest.raises(PluginError) as info:
        manager.load_plugin("child", make_plugin("child", dependencies=["parent>=1"]))
    assert info.value.code == "version_conflict"
    # config-declared dependencies count too (the union with metadata)
    with pytest.raises(PluginError) as info:
        manager.load_plugin("child2", make_plugin("child2"), dependencies=("missing_one",))
    assert info.value.code == "dependency_missing"


def test_unload_with_dependents_needs_cascade(manager: PluginManager) -> None:
    events: list[str] = []
    manager.load_plugin("base", make_plugin("base", events=events))
    manager.load_plugin("mid", make_plugin("mid", dependencies=["base"], events=events))
    manager.load_plugin("top", make_plugin("top", dependencies=["mid"], events=events))
    with pytest.raises(PluginError) as info:
        manager.unload_plugin("base")
    assert info.value.code == "in_use"
    assert "mid" in info.value.message and "top" in info.value.message
    assert manager.get_plugin("base").status == PluginStatus.ACTIVE
    manager.unload_plugin("base", cascade=True)
    assert [e for e in events if e.startswith("terminate")] == [
        "terminate:top",
        "terminate:mid",
        "terminate:base",
    ]
    assert len(manager.registry) == 0


def test_shutdown_reverse_order_survives_a_failing_terminate(manager: PluginManager) -> None:
    events: list[str] = []
    manager.load_plugin("a", make_plugin("a", events=events))
    manager.load_plugin(
        "b", make_plugin("b", dependencies=["a"], events=events, terminate_error=RuntimeError("no"))
    )
    manager.load_plugin("c", make_plugin("c", dependencies=["b"], events=events))
    manager.shutdown()
    assert [e for e in events if e.startswith("terminate")] == [
        "terminate:c",
        "terminate:b",
        "terminate:a",
    ]
    assert len(manager.registry) == 0 and len(manager.steps) == 0


def test_reload_swaps_and_a_failed_reload_keeps_the_old(
    manager: PluginManager, write_module: Any
) -> None:
    source = """
        class Step:
            def execute(self, step, context):
                return "{tag}"

        def init(config):
            {fail}
            return {{}}

        def get_metadata(state):
            return {{"name": "live", "version": "{version}"}}

        def get_step_types(state):
            return [("live_step", Step)]
        """
    write_module("live_mod", source.format(tag="v1", version="1.0", fail=""))
    manager.load_plugin("live", "live_mod:")  # the module itself
    assert manager.steps.get("live_step").execute({}, None) == "v1"

    write_module("live_mod", source.format(tag="v2", version="2.0", fail=""))
    time.sleep(0.01)
    manager.reload_plugin("live")
    assert manager.steps.get("live_step").execute({}, None) == "v2"
    assert manager.get_plugin("live").version == "2.0"

    write_module("live_mod", source.format(tag="v3", version="3.0", fail="raise ValueError('x')"))
    with pytest.raises(PluginError) as info:
        manager.reload_plugin("live")
    assert info.value.code == "init_failed"
    assert manager.steps.get("live_step").execute({}, None) == "v2"
    assert manager.get_plugin("live").status == PluginStatus.ACTIVE


def test_reload_never_leaves_a_gap_for_readers(manager: PluginManager) -> None:
    manager.load_plugin("hot", make_plugin("hot", steps={"hot_step": EchoStep}))
    stop = threading.Event()
    misses: list[int] = []

    def reader() -> None:
        while not stop.is_set():
            if "hot_step" not in manager.steps:
                misses.append(1)

    thread = threading.Thread(target=reader)
    thread.start()
    for _ in range(30):
        manager.reload_plugin("hot")
    stop.set()
    thread.join()
    assert misses == []


def test_health_check_degrades_a_failing_plugin(manager: PluginManager) -> None:
    class Sick(Plugin):
        def get_metadata(self, state: Any) -> Any:
            return {"name": "sick", "version": "1"}

        def health_check(self, state: Any) -> Any:
            raise RuntimeError("disk on fire")

    manager.load_plugin("sick", Sick)
    report = manager.health("sick")
    assert report["status"] == "degraded" and "disk on fire" in report["error"]
    assert manager.get_plugin("sick").status == PluginStatus.DEGRADED


def test_a_failing_plugin_leaves_the_others_working(manager: PluginManager) -> None:
    manager.load_plugin("good", make_plugin("good", steps={"good_step": EchoStep("ok:")}))
    with pytest.raises(PluginError):
        manager.load_plugin("bad", make_plugin("bad", init_error=MemoryError("oom")))
    assert manager.steps.get("good_step").execute({"value": 1}, None)["text"] == "ok:1"
    assert manager.get_plugin("good").status == PluginStatus.ACTIVE


def test_loading_twice_is_refused(manager: PluginManager) -> None:
    manager.load_plugin("once", make_plugin("once"))
    with pytest.raises(PluginError) as info:
        manager.load_plugin("once", make_plugin("once"))
    assert info.value.code == "component_conflict"


def test_load_all_survives_a_hang_in_the_middle(manager: PluginManager) -> None:
    """One supervised batch: the hung plugin times out, the others before and after load,
    and the abandoned call, once it returns, registers nothing."""
    from pipeline_ex.plugins.loader import PluginSpec

    release = threading.Event()
    stuck: list[threading.Thread] = []

    class Sleeper(Plugin):
        def init(self, config: Any) -> Any:
            stuck.append(threading.current_thread())
            release.wait(PATIENCE)
            return {}

        def get_metadata(self, state: Any) -> Any:
            return {"name": "sleeper", "version": "1"}

        def get_step_types(self, state: Any) -> Any:
            return [("sleeper_step", EchoStep)]

    plugins: dict[str, Any] = {
        "before": make_plugin("before", steps={"before_step": EchoStep}),
        "sleeper": Sleeper,
        "after": make_plugin("after", steps={"after_step": EchoStep}),
        "needs_sleeper": make_plugin("needs_sleeper", dependencies=["sleeper"]),
    }
    original = manager._resolve
    manager._resolve = lambda spec, target: original(spec, plugins[spec.name])  # type: ignore[method-assign]
    # Only the sleeper has a short deadline: the others must load whatever the machine's load.
    limits = {"sleeper": {"call_timeout_s": 0.3}}
    try:
        report = manager.load_specs(
            [PluginSpec(name=n, module="x:y", limits=limits.get(n, {})) for n in plugins]
        )
        assert set(report.loaded) == {"before", "after"}
        assert report.failed["sleeper"].code == "timeout"
        assert "init did not return within 0.3s" in report.failed["sleeper"].message
        assert report.failed["needs_sleeper"].code == "dependency_missing"
        assert manager.get_plugin("sleeper").status == PluginStatus.FAILED
    finally:
        release.set()
    finish(stuck[0], "the abandoned worker returning from init")  # it must unwind quietly
    assert "sleeper_step" not in manager.steps
    assert {"before_step", "after_step"} <= set(manager.steps)
    assert manager.get_plugin("sleeper").status == PluginStatus.FAILED


def test_hangs_before_init_are_timeouts_too(manager: PluginManager, write_module: Any) -> None:
    release = threading.Event()

    class SlowToDescribe(Plugin):
        def get_metadata(self, state: Any) -> Any:
            release.wait(30)
            return {"name": "slow_meta", "version": "1"}

    write_module("hangs_on_import", "import time\ntime.sleep(1.5)\n")
    manager.guard.timeout = 0.3
    try:
        with pytest.raises(PluginError) as info:
            manager.load_plugin("slow_meta", SlowToDescribe)
        assert info.value.code == "timeout" and "get_metadata" in info.value.message
        with pytest.raises(PluginError) as info:
            manager.load_plugin("slow_import", "hangs_on_import")
        assert info.value.code == "timeout" and "import" in info.value.message
        manager.guard.timeout = 2.0  # the fixture's again: the next load races no short deadline
        manager.load_plugin("quick", make_plugin("quick", steps={"quick_step": EchoStep}))
        assert "quick_step" in manager.steps
    finally:
        release.set()


def test_an_invalid_schema_extension_is_validation_failed(manager: PluginManager) -> None:
    broken = {"properties": {"workflow": {"type": "objectish"}}}
    with pytest.raises(PluginError) as info:
        manager.load_plugin(
            "bad_ext",
            make_plugin("bad_ext", steps={"bad_ext_step": EchoStep}, extensions={"bad": broken}),
        )
    assert info.value.code == "validation_failed"
    assert "not a valid JSON Schema" in info.value.message
    assert "bad_ext_step" not in manager.steps


def test_metadata_read_after_init_is_what_the_record_keeps(manager: PluginManager) -> None:
    """Metadata equal to the pre-init answer is reused; any other answer is parsed again
    (and still checked): the record describes the plugin as it is after init."""

    class Warming(Plugin):
        def init(self, config: Any) -> Any:
            return {"ready": True}

        def get_metadata(self, state: Any) -> dict[str, Any]:
            described = "ready" if state else "starting"
            return {"name": "warming", "version": "1.0", "description": described}

    manager.load_plugin("warming", Warming)
    assert manager.get_plugin("warming").metadata.description == "ready"  # type: ignore[union-attr]

    class Steady(Plugin):
        def get_metadata(self, state: Any) -> dict[str, Any]:
            return {"name": "steady", "version": "2.0", "capabilities": ["c"]}

    manager.load_plugin("steady", Steady)
    assert manager.get_plugin("steady").metadata.capabilities == ("c",)  # type: ignore[union-attr]


def test_a_live_plugins_requirement_is_checked_through_the_index(manager: PluginManager) -> None:
    """A dependent's requirement on a plugin is found (the registry's index) while it is
    live, and forgotten once it is unloaded."""
    manager.load_plugin("lib", make_plugin("lib", version="1.0"))
    manager.load_plugin("app", make_plugin("app", dependencies=["lib<2"]))
    assert [r.name for r in manager.registry.mentioning("lib")] == ["app"]
    manager.unload_plugin("lib", cascade=True)
    assert manager.registry.mentioning("lib") == []
    manager.load_plugin("lib", make_plugin("lib", version="3.0"))  # nobody objects now
    manager.load_plugin("hater", make_plugin("hater", conflicts=["other"]))
    assert [r.name for r in manager.registry.mentioning("other")] == ["hater"]
    with pytest.raises(PluginError) as info:
        manager.load_plugin("other", make_plugin("other"))
    assert info.value.code == "component_conflict"
    assert "other" not in manager.steps and not manager.get_plugin("other").is_live
