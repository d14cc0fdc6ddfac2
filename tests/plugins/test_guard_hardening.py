"""Issue 7's findings on the guard and the plugin lifecycle, one regression test each:
the deadline cannot be escaped (3), no BaseException passes the guard (4), reloads drain
in-flight calls and check new code before anything changes (9), timed-out work stops (10),
and the record keeps what failed with its traceback (issue 8)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from plugin_samples import EchoStep, make_plugin

from pipeline_ex.errors import PluginError, UnknownStepTypeError
from pipeline_ex.plugins import Plugin, PluginManager, PluginStatus
from pipeline_ex.plugins.components import _CHECK_EVERY, MAX_COMPONENTS
from pipeline_ex.plugins.guard import Abandoned
from pipeline_ex.plugins.loader import PluginSpec
from waiting import PATIENCE, finish, wait_until


class CustomBase(BaseException):
    """A plugin's own BaseException subclass."""


def _load_all(manager: PluginManager, plugins: dict[str, Any]) -> Any:
    original = manager._resolve
    manager._resolve = lambda spec, target: original(spec, plugins[spec.name])  # type: ignore[method-assign]
    try:
        return manager.load_specs([PluginSpec(name=n, module="x:y") for n in plugins])
    finally:
        manager._resolve = original  # type: ignore[method-assign]


# -- 3. the deadline cannot be escaped ---------------------------------------------------------
def test_init_raising_the_guards_own_abandoned_fails_only_that_plugin(
    manager: PluginManager,
) -> None:
    done = threading.Event()
    outcome: list[Any] = []

    def load() -> None:
        outcome.append(
            _load_all(
                manager,
                {
                    "sly": make_plugin("sly", init_error=Abandoned()),
                    "after": make_plugin("after", steps={"after_step": EchoStep}),
                },
            )
        )
        done.set()

    threading.Thread(target=load, daemon=True).start()
    assert done.wait(20), "the supervisor waited forever on a plugin-raised Abandoned"
    report = outcome[0]
    assert report.loaded == ("after",)
    assert report.failed["sly"].code == "init_failed"
    assert "Abandoned" in report.failed["sly"].message
    assert manager.get_plugin("sly").status == PluginStatus.FAILED


def test_a_hanging_execute_property_is_a_timeout_inside_the_deadline(
    manager: PluginManager,
) -> None:
    release = threading.Event()

    class Trap:
        @property
        def execute(self) -> Any:
            release.wait(30)
            return lambda step, context: None

    manager.guard.timeout = 0.3
    try:
        with pytest.raises(PluginError) as info:
            manager.load_plugin("trap", make_plugin("trap", steps={"trap_step": Trap()}))
        assert info.value.code == "timeout"
        # The StepRegistry's write lock is free: the next plugin registers at once.
        manager.guard.timeout = 2.0  # the fixture's again: the next load races no short deadline
        manager.load_plugin("next", make_plugin("next", steps={"next_step": EchoStep}))
        assert "next_step" in manager.steps and "trap_step" not in manager.steps
    finally:
        release.set()


@pytest.mark.parametrize("hook", ["raw_keys", "owns_condition", "preflight", "semantic_check"])
def test_optional_step_hooks_of_the_wrong_type_are_refused_at_load(
    manager: PluginManager, hook: str
) -> None:
    odd = type("Odd", (EchoStep,), {hook: 42})
    with pytest.raises(PluginError) as info:
        manager.load_plugin("odd", make_plugin("odd", steps={"odd_step": odd}))
    assert info.value.code == "validation_failed" and hook in info.value.message
    assert "odd_step" not in manager.steps


def test_a_plugin_error_claiming_timeout_does_not_fool_the_guard(manager: PluginManager) -> None:
    events: list[str] = []

    class Claims(Plugin):
        def terminate(self, state: Any) -> None:
            events.append("terminated")

        def get_metadata(self, state: Any) -> Any:
            return {"name": "claims", "version": "1"}

        def get_step_types(self, state: Any) -> Any:
            raise PluginError("pretend", code="timeout")

    with pytest.raises(PluginError) as info:
        manager.load_plugin("claims", Claims)
    assert info.value.code == "init_failed"  # the call's code, not the plugin's claim
    assert events == ["terminated"]


# -- 4. BaseExceptions from plugin code are plugin failures ---------------------------------
@pytest.mark.parametrize(
    "raised", [KeyboardInterrupt(), CustomBase("mine"), GeneratorExit(), SystemExit(0)]
)
@pytest.mark.parametrize("where", ["init", "get_metadata", "get_step_types"])
def test_base_exceptions_from_plugin_code_fail_only_that_plugin(
    manager: PluginManager, raised: BaseException, where: str
) -> None:
    events: list[str] = []

    class Raises(Plugin):
        def init(self, config: Any) -> Any:
            if where == "init":
                raise raised
            return {}

        def terminate(self, state: Any) -> None:
            events.append("terminated")

        def get_metadata(self, state: Any) -> Any:
            if where == "get_metadata" and state is not None:
                raise raised
            return {"name": "raises", "version": "1"}

        def get_step_types(self, state: Any) -> Any:
            if where == "get_step_types":
                raise raised
            return []

    report = _load_all(
        manager, {"raises": Raises, "other": make_plugin("other", steps={"o": EchoStep})}
    )
    assert report.loaded == ("other",)
    assert report.failed["raises"].code in ("init_failed", "validation_failed")
    assert type(raised).__name__ in report.failed["raises"].message
    record = manager.get_plugin("raises")
    assert record.status == PluginStatus.FAILED
    assert not manager.integrator.leftovers("raises")
    assert events == ([] if where == "init" else ["terminated"])


def test_base_exception_from_terminate_still_unloads_and_shutdown_goes_on(
    manager: PluginManager,
) -> None:
    events: list[str] = []
    manager.load_plugin("first", make_plugin("first", events=events, steps={"f": EchoStep}))
    manager.load_plugin(
        "second",
        make_plugin("second", events=events, terminate_error=KeyboardInterrupt()),
    )
    manager.load_plugin(
        "third", make_plugin("third", events=events, terminate_error=CustomBase("x"))
    )
    manager.unload_plugin("third")
    assert "third" not in manager.registry and not manager.integrator.leftovers("third")
    manager.shutdown()
    assert [e for e in events if e.startswith("terminate")] == [
        "terminate:third",
        "terminate:second",
        "terminate:first",
    ]
    assert len(manager.registry) == 0 and len(manager.steps) == 0


def test_base_exception_from_a_step_is_counted_and_reraised_to_the_engine(
    manager: PluginManager,
) -> None:
    class Exits:
        def execute(self, step: Any, context: Any) -> Any:
            raise SystemExit(0)

    manager.load_plugin("exits", make_plugin("exits", steps={"exits_step": Exits}))
    _, call = manager.steps.resolve("exits_step")
    with pytest.raises(SystemExit):
        call({}, None)
    reading = manager.guard.metrics.cell("exits", "step_type", "exits_step").read()
    assert (reading.calls, reading.errors, reading.errors_by_code) == (1, 1, {"crashed": 1})


def test_hooks_that_raise_name_the_plugin(manager: PluginManager) -> None:
    class Hooked(EchoStep):
        def preflight(self, step: Any, context: Any) -> None:
            raise KeyError("no key")

        def semantic_check(self, step: Any) -> Any:
            return "not a list"

    manager.load_plugin("hooked", make_plugin("hooked", steps={"hooked_step": Hooked}))
    handle = manager.steps.get("hooked_step")
    with pytest.raises(PluginError) as info:
        handle.preflight({}, None)
    assert info.value.plugin == "hooked" and "hooked_step.preflight" in info.value.message
    with pytest.raises(PluginError) as info:
        handle.semantic_check({})
    assert "hooked" in info.value.message and "semantic_check" in info.value.message


# -- 9. reloads drain in-flight calls; new code is checked before anything changes --------
def test_reload_does_not_terminate_state_under_running_steps(manager: PluginManager) -> None:
    class Stateful(Plugin):
        def init(self, config: Any) -> Any:
            return {"open": True}

        def terminate(self, state: Any) -> None:
            state["open"] = False

        def get_metadata(self, state: Any) -> Any:
            return {"name": "stateful", "version": "1"}

        def get_step_types(self, state: Any) -> Any:
            class Uses:
                def execute(self, step: Any, context: Any) -> Any:
                    for _ in range(20):
                        if not state["open"]:
                            return {"success": False, "error": "state terminated under me"}
                        time.sleep(0.0005)
                    return {"success": True}

            return [("uses_state", Uses)]

    manager.load_plugin("stateful", Stateful)
    stop = threading.Event()
    failures: list[Any] = []
    runs = [0]

    def runner() -> None:
        while not stop.is_set():
            _, call = manager.steps.resolve("uses_state")
            result = call({}, None)
            runs[0] += 1
            if not result["success"]:
                failures.append(result)

    threads = [threading.Thread(target=runner) for _ in range(8)]
    for thread in threads:
        thread.start()
    wait_until(lambda: runs[0] > 0, "a runner has called the step")  # reloads race calls
    for _ in range(40):
        manager.reload_plugin("stateful")
    stop.set()
    for thread in threads:
        thread.join()
    assert runs[0] > 0 and failures == []


def test_unload_waits_for_running_calls_before_terminate(manager: PluginManager) -> None:
    started, release = threading.Event(), threading.Event()
    order: list[str] = []

    class Slow:
        def execute(self, step: Any, context: Any) -> Any:
            started.set()
            release.wait(10)
            order.append("step returned")
            return "done"

    class Owner(Plugin):
        def terminate(self, state: Any) -> None:
            order.append("terminated")

        def get_metadata(self, state: Any) -> Any:
            return {"name": "owner", "version": "1"}

        def get_step_types(self, state: Any) -> Any:
            return [("slow_step", Slow)]

    manager.load_plugin("owner", Owner)
    _, call = manager.steps.resolve("slow_step")
    worker = threading.Thread(target=call, args=({}, None))
    worker.start()
    assert started.wait(5)
    unloading = threading.Thread(target=manager.unload_plugin, args=("owner",))
    unloading.start()
    # new calls cannot reach it any more, while the running one still holds it
    wait_until(lambda: "slow_step" not in manager.steps, "unload retires slow_step")
    assert order == []
    release.set()
    worker.join()
    unloading.join()
    assert order == ["step returned", "terminated"]
    with pytest.raises(UnknownStepTypeError):
        call({}, None)  # a caller still holding the retired dispatcher goes to the current one


def test_failed_module_reload_leaves_the_old_code_serving(
    manager: PluginManager, write_module: Any
) -> None:
    source = """
        TAG = "{tag}"

        class Step:
            def execute(self, step, context):
                return TAG

        def init(config):
            {fail}
            return {{}}

        def get_metadata(state):
            return {{"name": "mod", "version": "{version}"}}

        def get_step_types(state):
            return [("mod_step", Step)]
        """
    write_module("reload_mod", source.format(tag="v1", version="1.0", fail=""))
    manager.load_plugin("mod", "reload_mod")
    import reload_mod  # type: ignore[import-not-found]

    write_module("reload_mod", source.format(tag="v2", version="2.0", fail="raise ValueError()"))
    with pytest.raises(PluginError) as info:
        manager.reload_plugin("mod")
    assert info.value.code == "init_failed"
    assert reload_mod.TAG == "v1"  # the running module was never re-executed
    assert manager.steps.resolve("mod_step")[1]({}, None) == "v1"
    record = manager.get_plugin("mod")
    assert record.status == PluginStatus.ACTIVE and record.version == "1.0"
    assert record.last_error is not None and "reload failed" in record.last_error
    assert record.error_code == "init_failed"

    write_module("reload_mod", source.format(tag="v3", version="3.0", fail=""))
    manager.reload_plugin("mod")
    assert manager.steps.resolve("mod_step")[1]({}, None) == "v3"
    assert manager.get_plugin("mod").version == "3.0"
    manager.unload_plugin("mod")
    import sys

    assert not [n for n in sys.modules if n.startswith("reload_mod__reload_")]


# -- 10. timed-out work stops ---------------------------------------------------------------
def test_an_endless_get_step_types_is_refused_at_the_bound(manager: PluginManager) -> None:
    class Endless(Plugin):
        def get_metadata(self, state: Any) -> Any:
            return {"name": "endless", "version": "1"}

        def get_step_types(self, state: Any) -> Iterator[tuple[str, Any]]:
            return ((f"s{i}", EchoStep) for i in itertools.count())

    manager.guard.timeout = PATIENCE  # reading to the bound takes seconds on a busy machine
    with pytest.raises(PluginError) as info:
        manager.load_plugin("endless", Endless)
    assert info.value.code == "validation_failed"
    assert f"more than {MAX_COMPONENTS}" in info.value.message
    assert not manager.integrator.leftovers("endless")


def test_abandoned_consumption_of_plugin_data_stops(manager: PluginManager) -> None:
    """The generator stalls until the host has given up, then offers entries without end:
    the abandoned worker must stop at its next checkpoint, long before the size bound."""
    consumed = [0]
    gave_up = threading.Event()
    consumer: list[threading.Thread] = []

    def slow_count() -> Iterator[tuple[str, Any]]:
        consumer.append(threading.current_thread())
        for i in itertools.count():
            consumed[0] += 1
            if i == 10:
                gave_up.wait(PATIENCE)
            yield (f"s{i}", EchoStep)

    class Slow(Plugin):
        def get_metadata(self, state: Any) -> Any:
            return {"name": "slow_gen", "version": "1"}

        def get_step_types(self, state: Any) -> Any:
            return slow_count()

    manager.guard.timeout = 0.2
    try:
        with pytest.raises(PluginError) as info:
            manager.load_plugin("slow_gen", Slow)
        assert info.value.code == "timeout"
    finally:
        gave_up.set()
    finish(consumer[0], "the abandoned consumer")
    assert consumed[0] < 10 + 2 * _CHECK_EVERY, "the host kept consuming after giving up"


@pytest.mark.slow  # the first check waits out the 5 s floor of the health deadline
def test_a_hung_health_check_never_gets_a_second_thread(manager: PluginManager) -> None:
    release = threading.Event()

    class Hangs(Plugin):
        def get_metadata(self, state: Any) -> Any:
            return {"name": "hangs", "version": "1"}

        def health_check(self, state: Any) -> Any:
            release.wait(30)
            return {"status": "ok"}

    manager.load_plugin("hangs", Hangs)
    before = threading.active_count()
    try:
        first = manager.health("hangs")  # 5 s deadline
        assert first["code"] == "timeout"
        for _ in range(5):
            again = manager.health("hangs")
            assert again["code"] == "timeout" and "previous" in again["error"]
        assert threading.active_count() <= before + 1
        assert manager.get_plugin("hangs").status == PluginStatus.DEGRADED
    finally:
        release.set()
    wait_until(lambda: manager.health("hangs").get("code") != "timeout", "the hung check returns")
    assert manager.health("hangs")["report"] == {"status": "ok"}


# -- issue 8: what failed, with its traceback -------------------------------------------------
def test_the_record_of_a_failed_init_keeps_its_traceback(manager: PluginManager) -> None:
    class Broken(Plugin):
        def init(self, config: Any) -> Any:
            return self.open_database()

        def open_database(self) -> Any:
            raise ConnectionError("db down")

        def get_metadata(self, state: Any) -> Any:
            return {"name": "broken", "version": "1"}

    with pytest.raises(PluginError) as info:
        manager.load_plugin("broken", Broken)
    record = manager.get_plugin("broken")
    assert record.traceback is not None
    assert "Traceback" in record.traceback and "open_database" in record.traceback
    assert "ConnectionError: db down" in record.traceback
    assert info.value.traceback == record.traceback
    assert record.summary()["traceback"] == record.traceback


# -- issue 8: the plugin call timeout is configurable -----------------------------------------
def test_plugin_call_timeout_from_runtime_env_and_config_entry(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from plugin_samples import write_plugin_dir

    from pipeline_ex import Runtime
    from pipeline_ex.errors import InvalidInputError

    slow = """
        import time
        from pipeline_ex.plugins import Plugin

        class ThePlugin(Plugin):
            def init(self, config):
                time.sleep(config.get("sleep", 0))
                return {}

            def get_metadata(self, state):
                return {"name": "%s", "version": "1.0.0", "api_version": 1}
        """
    write_plugin_dir(tmp_path, "quick", slow % "quick")
    write_plugin_dir(tmp_path, "patient", slow % "patient")
    config = {
        "plugins": {
            "quick": {"path": str(tmp_path / "quick"), "config": {"sleep": 1.0}},
            "patient": {
                "path": str(tmp_path / "patient"),
                "config": {"sleep": 1.0},
                "limits": {"call_timeout_s": 5},
            },
        }
    }
    # Without the built-ins: their loads would be held to the 0.3 s deadline too, which a
    # busy machine can miss, and they are not what this test is about.
    with Runtime(config, plugin_timeout=0.3, load_builtins=False) as runtime:
        assert runtime.plugins.guard.timeout == 0.3
        assert runtime.load_report.failed["quick"].code == "timeout"
        assert "0.3s" in runtime.load_report.failed["quick"].message
        assert "patient" in runtime.load_report.loaded
    monkeypatch.setenv("PIPELINE_EX_PLUGIN_TIMEOUT", "2.5")
    with Runtime(load_builtins=False) as runtime:
        assert runtime.plugins.guard.timeout == 2.5
    monkeypatch.setenv("PIPELINE_EX_PLUGIN_TIMEOUT", "soon")
    with pytest.raises(InvalidInputError):
        Runtime(load_builtins=False)


def test_a_hanging_provider_priority_is_read_inside_the_deadline(manager: PluginManager) -> None:
    release = threading.Event()

    class Slow:
        @property
        def priority(self) -> int:
            release.wait(30)
            return 5

        def query(self, prompt: str, options: dict[str, Any]) -> dict[str, Any]:
            return {"text": "x", "success": True, "cost": 0.0}

    manager.guard.timeout = 0.3
    try:
        with pytest.raises(PluginError) as info:
            manager.load_plugin(
                "slow_prio", make_plugin("slow_prio", providers={"slow_p": (Slow(), ["t"])})
            )
        assert info.value.code == "timeout"
        assert "slow_p" not in manager.providers
    finally:
        release.set()


# -- 6. no attribute path from a step's context to a registry write ----------------------
def test_no_attribute_path_from_the_context_to_a_registry_write() -> None:
    from pipeline_ex import Runtime

    found: list[str] = []

    class Snoop:
        def execute(self, step: Any, context: Any) -> Any:
            seen: set[int] = set()
            frontier: list[tuple[str, Any]] = [("context", context)]
            for _ in range(4):  # four attribute hops deep
                nxt: list[tuple[str, Any]] = []
                for path, obj in frontier:
                    if id(obj) in seen or isinstance(obj, str | int | float | bytes):
                        continue
                    seen.add(id(obj))
                    for writer in ("register_providers", "register_batch", "replace_owner"):
                        if callable(getattr(obj, writer, None)):
                            found.append(f"{path}.{writer}")
                    for attr in dir(obj):
                        if attr.startswith("__"):
                            continue
                        try:
                            nxt.append((f"{path}.{attr}", getattr(obj, attr)))
                        except Exception:
                            continue
                frontier = nxt
            return {"success": True}

    with Runtime() as runtime:
        runtime.plugins.load_plugin("snoop", make_plugin("snoop", steps={"snoop": Snoop}))
        runtime.run({"workflow": {"name": "w", "steps": [{"name": "s", "type": "snoop"}]}})
    assert found == []


def test_guarded_hooks_that_fail_are_step_failures_and_validation_problems() -> None:
    """Issue 7 item 12 end to end: a preflight that raises is a step failure naming the
    plugin; a semantic_check that answers wrongly is a validation problem at the step."""
    from pipeline_ex import Runtime
    from pipeline_ex.errors import StepFailedError, WorkflowSemanticError

    class BadPreflight(EchoStep):
        def preflight(self, step: Any, context: Any) -> None:
            raise KeyError("no key configured")

    class BadCheck(EchoStep):
        def semantic_check(self, step: Any) -> Any:
            return 42

    with Runtime() as runtime:
        runtime.plugins.load_plugin(
            "hooks", make_plugin("hooks", steps={"bad_pre": BadPreflight, "bad_check": BadCheck})
        )
        with pytest.raises(StepFailedError) as failed:
            runtime.run({"workflow": {"name": "w", "steps": [{"name": "a", "type": "bad_pre"}]}})
        assert failed.value.cause_code == "crashed"
        assert "'hooks'" in failed.value.message and "preflight" in failed.value.message
        with pytest.raises(WorkflowSemanticError) as invalid:
            runtime.validate(
                {"workflow": {"name": "w", "steps": [{"name": "a", "type": "bad_check"}]}}
            )
        problem = invalid.value.problems[0]
        assert problem.location.path == "workflow.steps[0]"
        assert "hooks" in problem.message and "semantic_check" in problem.message


# -- issue 9: provider queries go through the guard too ---------------------------------------
def test_provider_queries_are_counted_as_the_providers_own_calls(manager: PluginManager) -> None:
    from plugin_samples import ConstProvider

    class Breaks:
        def query(self, prompt: str, options: dict[str, Any]) -> dict[str, Any]:
            raise SystemExit(0)

    manager.load_plugin(
        "provs",
        make_plugin(
            "provs", providers={"const": (ConstProvider, ["t"]), "breaks": (Breaks, ["b"])}
        ),
    )
    const = manager.providers.get("const")
    assert const.query("x", {})["text"] == "const"
    assert const.text == "const"  # other attributes are the provider object's own
    with pytest.raises(SystemExit):
        manager.providers.get("breaks").query("x", {})
    const_reading = manager.guard.metrics.cell("provs", "provider", "const").read()
    assert (const_reading.calls, const_reading.errors) == (1, 0)
    assert manager.guard.metrics.cell("provs", "provider", "breaks").read().errors == 1


def test_unload_waits_for_running_provider_queries(manager: PluginManager) -> None:
    started, release = threading.Event(), threading.Event()
    order: list[str] = []

    class Slow:
        def query(self, prompt: str, options: dict[str, Any]) -> dict[str, Any]:
            started.set()
            release.wait(10)
            order.append("query returned")
            return {"text": "", "success": True, "cost": 0.0}

    class Owner(Plugin):
        def terminate(self, state: Any) -> None:
            order.append("terminated")

        def get_metadata(self, state: Any) -> Any:
            return {"name": "prov_owner", "version": "1"}

        def get_providers(self, state: Any) -> Any:
            return [("slow_p", Slow(), ["s"])]

    manager.load_plugin("prov_owner", Owner)
    provider = manager.providers.get("slow_p")
    worker = threading.Thread(target=provider.query, args=("x", {}))
    worker.start()
    assert started.wait(5)
    unloading = threading.Thread(target=manager.unload_plugin, args=("prov_owner",))
    unloading.start()
    wait_until(lambda: "slow_p" not in manager.providers, "unload retires slow_p")
    assert order == []
    release.set()
    worker.join()
    unloading.join()
    assert order == ["query returned", "terminated"]


# -- review findings ----------------------------------------------------------------------------
def test_a_reload_whose_old_terminate_overruns_still_records_the_new_version(
    manager: PluginManager,
) -> None:
    generation = [0]
    terminated: list[int] = []
    release = threading.Event()
    overrunning: list[threading.Thread] = []

    class Versioned(Plugin):
        def init(self, config: Any) -> Any:
            generation[0] += 1
            return {"gen": generation[0]}

        def terminate(self, state: Any) -> None:
            terminated.append(state["gen"])
            if state["gen"] == 1:
                overrunning.append(threading.current_thread())
                release.wait(PATIENCE)  # past the 0.3 s deadline, until the test lets go

        def get_metadata(self, state: Any) -> Any:
            return {"name": "versioned", "version": "1.0"}

    manager.guard.timeout = 0.3
    manager.load_plugin("versioned", Versioned)
    try:
        with pytest.raises(PluginError) as info:
            manager.reload_plugin("versioned")
        assert info.value.code == "timeout"
    finally:
        release.set()
    finish(overrunning[0], "the reload whose terminate overran")
    assert manager.get_plugin("versioned").state == {"gen": 2}
    manager.unload_plugin("versioned")
    assert terminated == [1, 2]  # each version terminated once


def test_metadata_is_plain_data_read_inside_the_deadline(manager: PluginManager) -> None:
    touched: list[str] = []

    class Sticky:
        def __str__(self) -> str:
            touched.append("__str__")  # outside the deadline, this would hang the host
            threading.Event().wait(PATIENCE)
            return "1.0"

    class OddMetadata(Plugin):
        def get_metadata(self, state: Any) -> Any:
            return {"name": "odd", "version": Sticky()}

    manager.guard.timeout = 0.3
    with pytest.raises(PluginError) as info:
        manager.load_plugin("odd", OddMetadata)
    assert touched == []
    assert info.value.code == "validation_failed" and "Sticky" in info.value.message


def test_a_catastrophic_pattern_in_a_config_schema_is_refused_before_matching(
    manager: PluginManager,
) -> None:
    class Greedy(Plugin):
        def get_metadata(self, state: Any) -> Any:
            return {
                "name": "greedy",
                "version": "1.0",
                "config_schema": {"properties": {"k": {"type": "string", "pattern": "^(a+)+$"}}},
            }

    started = time.process_time()  # CPU time: backtracking would burn it, waiting does not
    with pytest.raises(PluginError) as info:
        manager.load_plugin("greedy", Greedy, config={"k": "a" * 40 + "!"})
    assert time.process_time() - started < 5
    assert info.value.code == "validation_failed" and "config_schema" in info.value.message


def test_registered_handles_are_read_only_for_steps() -> None:
    from pipeline_ex import Runtime
    from pipeline_ex.errors import StepFailedError

    class Hijack:
        def execute(self, step: Any, context: Any) -> Any:
            provider = context.providers.get("mock_claude")
            provider.query = lambda prompt, options: {"text": "HIJACKED", "success": True}
            return {"success": True}

    with Runtime() as runtime:
        runtime.plugins.load_plugin("hijack", make_plugin("hijack", steps={"hijack": Hijack}))
        with pytest.raises(StepFailedError) as info:
            runtime.run({"workflow": {"name": "w", "steps": [{"name": "h", "type": "hijack"}]}})
        assert "read-only" in info.value.message
        runtime.plugins.unload_plugin("hijack")
        out = runtime.run(
            {
                "workflow": {
                    "name": "w",
                    "steps": [
                        {
                            "name": "c",
                            "type": "claude",
                            "prompt": [{"type": "static", "content": "hi"}],
                        }
                    ],
                }
            }
        )
        assert "HIJACKED" not in out["c"]["text"]


def test_a_call_returning_after_its_deadline_is_still_counted_and_leaves_its_context() -> None:
    """Review finding: a watched call that returned late skipped its count and left the
    worker thread's log context set."""
    from pipeline_ex.monitoring import log_context
    from pipeline_ex.plugins.guard import Guard

    guard = Guard(timeout=0.1)
    returned = threading.Event()
    context_after: list[Any] = []

    def slow() -> int:
        time.sleep(0.4)
        return 1

    def work(item: str) -> Any:
        try:
            return guard.watched("p", "init", slow, code="init_failed")
        finally:
            context_after.append(log_context.current()["plugin"])
            returned.set()

    (outcome,) = guard.supervise(["only"], work)
    assert isinstance(outcome, PluginError) and outcome.code == "timeout"
    assert returned.wait(PATIENCE)
    cell = next(c for c in guard.metrics.cells("p") if c.key.name == "init")
    assert cell.read().calls == 2  # the timeout, then the late return
    assert context_after == [None]
