"""registries/: copy-on-write snapshot registries, StepRegistry, ProviderRegistry."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pytest

from pipeline_ex import Runtime
from pipeline_ex.errors import (
    ComponentConflictError,
    NoSuitableProviderError,
    PipelineExError,
    UnknownProviderError,
    UnknownStepTypeError,
)
from pipeline_ex.registries import ProviderRegistry, StepRegistry


class Echo:
    def execute(self, step: dict[str, Any], context: Any) -> Any:
        return step.get("value")


class Named:
    def __init__(self, name: str) -> None:
        self.name = name

    def query(self, prompt: str, options: dict[str, Any]) -> dict[str, Any]:
        return {"text": self.name, "success": True, "cost": 0.0}


@pytest.fixture
def steps() -> StepRegistry:
    registry = StepRegistry()
    registry.register_batch({"a": Echo(), "b": Echo()}, "p1")
    return registry


@pytest.fixture
def providers() -> ProviderRegistry:
    registry = ProviderRegistry()
    registry.register_providers(
        [
            ("claude_like", Named("claude_like"), ["text_generation", "claude"]),
            ("gemini_like", Named("gemini_like"), ["text_generation", "gemini", "vision"]),
        ],
        "p1",
    )
    return registry


class TestMappingBehaviour:
    def test_is_a_read_only_mapping(self, steps: StepRegistry) -> None:
        assert isinstance(steps, Mapping)
        assert "a" in steps and "zz" not in steps
        assert list(steps) == ["a", "b"]
        assert len(steps) == 2
        assert set(steps.keys()) == {"a", "b"}
        assert not hasattr(steps, "__setitem__")
        assert not hasattr(steps, "__delitem__")

    def test_get_returns_the_component_itself(self, steps: StepRegistry) -> None:
        component = steps.get("a")
        assert isinstance(component, Echo)
        assert steps["a"] is component

    def test_missing_name_is_a_keyerror_listing_what_is_registered(
        self, steps: StepRegistry
    ) -> None:
        for lookup in (lambda: steps.get("zz"), lambda: steps["zz"]):
            with pytest.raises(KeyError) as info:
                lookup()
            error = info.value
            assert isinstance(error, UnknownStepTypeError)
            assert isinstance(error, PipelineExError)
            assert error.code == "unknown_step_type"
            assert "'zz'" in str(error) and "a, b" in str(error)

    def test_get_with_default(self, steps: StepRegistry) -> None:
        sentinel = Echo()
        assert steps.get("zz", sentinel) is sentinel

    def test_provider_miss_is_its_own_keyerror(self, providers: ProviderRegistry) -> None:
        with pytest.raises(UnknownProviderError) as info:
            providers.get("nope")
        assert isinstance(info.value, KeyError)
        assert "claude_like, gemini_like" in str(info.value)

    def test_snapshot_is_immutable_and_isolated_from_later_writes(
        self, steps: StepRegistry
    ) -> None:
        view = steps.snapshot()
        steps.register_batch({"c": Echo()}, "p2")
        assert "c" not in view
        assert "c" in steps
        with pytest.raises(TypeError):
            view["d"] = Echo()  # type: ignore[index]


class TestWrites:
    def test_batch_is_all_or_nothing(self, steps: StepRegistry) -> None:
        with pytest.raises(ComponentConflictError) as info:
            steps.register_batch({"new1": Echo(), "a": Echo(), "new2": Echo()}, "p2")
        assert info.value.code == "component_conflict"
        assert "'a'" in str(info.value) and "'p1'" in str(info.value)
        assert list(steps) == ["a", "b"]  # neither new1 nor new2 appeared

    def test_owner_can_re_register_its_own_names(self, steps: StepRegistry) -> None:
        replacement = Echo()
        steps.register_batch({"a": replacement}, "p1")
        assert steps["a"] is replacement

    def test_unregister_owner_removes_exactly_its_components(self, steps: StepRegistry) -> None:
        steps.register_batch({"c": Echo()}, "p2")
        assert steps.unregister_owner("p2") == ["c"]
        assert list(steps) == ["a", "b"]
        assert steps.unregister_owner("nobody") == []

    def test_override_and_restore(self, steps: StepRegistry) -> None:
        original = steps["a"]
        override = Echo()
        steps.register_batch({"a": override}, "p2", replace=frozenset({"a"}))
        assert steps["a"] is override
        assert steps.owner("a") == "p2"
        steps.unregister_owner("p2")
        assert steps["a"] is original
        assert steps.owner("a") == "p1"
        assert list(steps) == ["a", "b"]  # the restored name keeps its place

    def test_replace_owner_swaps_in_one_step(self, steps: StepRegistry) -> None:
        old = steps.replace_owner("p1", {"b": Echo(), "c": Echo()})
        assert set(old) == {"a", "b"}
        assert set(steps) == {"b", "c"}

    def test_readers_never_see_a_half_batch(self) -> None:
        registry = StepRegistry()
        names = [f"s{i}" for i in range(50)]
        stop = threading.Event()
        partial: list[int] = []

        def reader() -> None:
            while not stop.is_set():
                view = registry.snapshot()
                seen = sum(1 for n in names if n in view)
                if seen not in (0, len(names)):
                    partial.append(seen)

        threads = [threading.Thread(target=reader) for _ in range(3)]
        for thread in threads:
            thread.start()
        for _ in range(200):
            registry.register_batch(dict.fromkeys(names, Echo()), "p")
            registry.unregister_owner("p")
        stop.set()
        for thread in threads:
            thread.join()
        assert partial == []


class TestProviders:
    def test_select_by_capabilities(self, providers: ProviderRegistry) -> None:
        assert providers.select(["gemini"]).name == "gemini_like"
        assert providers.select(["text_generation"]).name == "claude_like"  # registration order
        assert providers.select([]).name == "claude_like"
        assert providers.select_name(["vision", "text_generation"]) == "gemini_like"

    def test_no_suitable_provider(self, providers: ProviderRegistry) -> None:
        with pytest.raises(NoSuitableProviderError) as info:
            providers.select(["vision", "claude"])
        assert info.value.code == "no_suitable_provider"
        assert "claude_like" in str(info.value) and "vision" in str(info.value)

    def test_capabilities(self, providers: ProviderRegistry) -> None:
        assert providers.capabilities("gemini_like") == {"text_generation", "gemini", "vision"}
        with pytest.raises(UnknownProviderError):
            providers.capabilities("nope")

    def test_refused_batch_keeps_no_capabilities(self, providers: ProviderRegistry) -> None:
        with pytest.raises(ComponentConflictError):
            providers.register_providers(
                [("audio", Named("audio"), ["audio"]), ("claude_like", Named("x"), ["audio"])],
                "p2",
            )
        assert "audio" not in providers
        with pytest.raises(NoSuitableProviderError):
            providers.select(["audio"])
        assert providers.capabilities("claude_like") == {"text_generation", "claude"}

    def test_override_restores_capabilities_and_order(self, providers: ProviderRegistry) -> None:
        providers.register_providers(
            [("claude_like", Named("override"), ["audio"])],
            "p2",
            replace=frozenset({"claude_like"}),
        )
        assert providers.select(["audio"]).name == "override"
        assert providers.capabilities("claude_like") == {"audio"}
        providers.unregister_owner("p2")
        assert providers["claude_like"].name == "claude_like"
        assert providers.capabilities("claude_like") == {"text_generation", "claude"}
        assert providers.select(["text_generation"]).name == "claude_like"
        with pytest.raises(NoSuitableProviderError):
            providers.select(["audio"])

    def test_readers_tolerate_the_window_between_the_two_swaps(self) -> None:
        """A write publishes items and owners as two assignments; a reader in between
        (old items, new owners) must still answer, not raise a bare KeyError."""
        registry = ProviderRegistry()
        registry.register_providers([("base", Named("base"), ["text"])], "base")
        registry.register_providers([("extra", Named("extra"), ["text", "x"])], "extra")
        registry._owners = {"base": "base"}  # as if "extra" were half-way out
        assert registry.select_name(["text"]) == "base"
        assert registry.all_capabilities()["extra"] == frozenset()

    def test_select_during_unregistration_never_crashes(self) -> None:
        registry = ProviderRegistry()
        registry.register_providers([("base", Named("base"), ["text"])], "base")
        stop = threading.Event()
        errors: list[BaseException] = []

        def reader() -> None:
            while not stop.is_set():
                try:
                    registry.select(["text"])
                    registry.all_capabilities()
                except BaseException as exc:
                    errors.append(exc)
                    return

        threads = [threading.Thread(target=reader) for _ in range(3)]
        for thread in threads:
            thread.start()
        for index in range(300):
            registry.register_providers(
                [(f"p{index}", Named("x"), ["text", "extra"])], f"owner{index}"
            )
            registry.unregister_owner(f"owner{index}")
        stop.set()
        for thread in threads:
            thread.join()
        assert errors == []


class TestRuntimeRegistries:
    def test_builtin_step_types_and_mock_providers(self, runtime: Runtime) -> None:
        for kind in (
            "claude",
            "gemini",
            "parallel_claude",
            "set_variable",
            "for_loop",
            "while_loop",
            "test_echo",
        ):
            assert kind in runtime.steps
        assert {"mock_claude", "mock_gemini"} <= set(runtime.providers)
        assert runtime.providers.select(["claude", "mock"]) is runtime.providers["mock_claude"]
        assert runtime.providers.select(["gemini", "mock"]) is runtime.providers["mock_gemini"]

    def test_each_runtime_has_its_own_registries(self) -> None:
        with Runtime() as one, Runtime() as two:
            one.steps.register_batch({"only_here": Echo()}, "test")
            assert "only_here" in one.steps
            assert "only_here" not in two.steps
