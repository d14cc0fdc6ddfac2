"""How ``select`` chooses a provider: mode, then priority, then name (issue 8)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline_ex import Runtime
from pipeline_ex.errors import (
    InvalidInputError,
    NoSuitableProviderError,
    PluginError,
    UnknownProviderError,
)
from pipeline_ex.registries import ProviderRegistry
from pipeline_ex.registries.providers import FALLBACK_PRIORITY, ProviderNotInModeError
from pipeline_ex.workflow.context import ExecutionContext

TEXT_TOOLS = {"plugins": {"text_tools": {"module": "text_tools"}}}


class Named:
    def __init__(self, name: str, priority: Any = None) -> None:
        self.name = name
        if priority is not None:
            self.priority = priority

    def query(self, prompt: str, options: dict[str, Any]) -> dict[str, Any]:
        return {"text": self.name, "success": True, "cost": 0.0}


def names(providers: list[Any]) -> list[str]:
    return [p.name for p in providers]


@pytest.fixture
def mixed() -> ProviderRegistry:
    """A mock-only, a live-only and a mode-neutral provider, all offering ``text``."""
    registry = ProviderRegistry()
    registry.register_providers(
        [
            ("a_mock", Named("a_mock"), ["text", "mock"]),
            ("b_live", Named("b_live"), ["text", "live"]),
            ("c_any", Named("c_any"), ["text"]),
        ],
        "p",
    )
    return registry


@pytest.fixture
def text_tools_runtime() -> Iterator[Runtime]:
    with Runtime(plugin_config=TEXT_TOOLS) as rt:
        assert rt.load_report.ok, rt.load_report
        yield rt


class TestMode:
    def test_mock_mode_never_selects_a_live_provider(self, mixed: ProviderRegistry) -> None:
        assert names(mixed.select_all(["text"], mode="mock")) == ["a_mock", "c_any"]

    def test_live_mode_never_selects_a_mock_provider(self, mixed: ProviderRegistry) -> None:
        assert names(mixed.select_all(["text"], mode="live")) == ["b_live", "c_any"]
        assert mixed.select(["text"], mode="live").name == "b_live"

    def test_provider_with_both_mode_capabilities_serves_both(self) -> None:
        registry = ProviderRegistry()
        registry.register_providers([("both", Named("both"), ["mock", "live"])], "p")
        assert registry.select_name([], mode="mock") == registry.select_name([], mode="live")

    def test_registry_select_without_mode_considers_every_provider(
        self, mixed: ProviderRegistry
    ) -> None:
        assert names(mixed.select_all(["text"])) == ["a_mock", "b_live", "c_any"]

    def test_no_match_names_the_mode_and_the_providers_left_out(
        self, mixed: ProviderRegistry
    ) -> None:
        with pytest.raises(NoSuitableProviderError) as info:
            mixed.select(["live"], mode="mock")
        message = str(info.value)
        assert "for mock mode" in message and "b_live" in message and "other mode" in message

    def test_view_get_of_other_mode_provider_says_so(self, mixed: ProviderRegistry) -> None:
        view = mixed.view("mock")
        with pytest.raises(ProviderNotInModeError) as info:
            view.get("b_live")
        assert isinstance(info.value, UnknownProviderError)
        assert info.value.code == "unknown_provider"
        assert "serves only live mode" in str(info.value) and "mock mode" in str(info.value)
        with pytest.raises(UnknownProviderError, match="'nope'"):
            view["nope"]
        assert "b_live" not in view and "c_any" in view
        assert list(view) == ["a_mock", "c_any"] and len(view) == 2


class TestPriority:
    def test_higher_priority_wins_whatever_the_registration_order(self) -> None:
        registry = ProviderRegistry()
        registry.register_providers([("a", Named("a"), ["x"])], "p1")
        registry.register_providers([("z", Named("z", priority=5), ["x"])], "p2")
        registry.register_providers([("m", Named("m", priority=-3), ["x"])], "p3")
        assert names(registry.select_all(["x"])) == ["z", "a", "m"]
        assert registry.priority("z") == 5 and registry.priority("a") == 0

    def test_ties_break_by_name_not_by_load_order(self) -> None:
        first, second = ProviderRegistry(), ProviderRegistry()
        first.register_providers([("beta", Named("beta"), ["x"])], "p1")
        first.register_providers([("alpha", Named("alpha"), ["x"])], "p2")
        second.register_providers([("alpha", Named("alpha"), ["x"])], "p2")
        second.register_providers([("beta", Named("beta"), ["x"])], "p1")
        assert first.select_name(["x"]) == second.select_name(["x"]) == "alpha"

    def test_priority_is_read_once_at_registration(self) -> None:
        registry = ProviderRegistry()
        late = Named("late", priority=-1)
        registry.register_providers([("late", late, ["x"]), ("other", Named("other"), ["x"])], "p")
        late.priority = 100
        assert registry.select_name(["x"]) == "other"

    @pytest.mark.parametrize("bad", ["high", 1.5, True, None])
    def test_non_integer_priority_is_refused(self, bad: Any) -> None:
        provider = Named("bad")
        provider.priority = bad  # type: ignore[attr-defined]
        registry = ProviderRegistry()
        with pytest.raises(InvalidInputError) as info:
            registry.register_providers([("bad", provider, ["x"])], "p")
        assert info.value.code == "validation_failed" and "'bad'" in str(info.value)
        assert "bad" not in registry

    def test_plugin_with_non_integer_priority_fails_validation(self) -> None:
        class BadPriorityPlugin:
            def init(self, config: Any) -> Any:
                return None

            def get_metadata(self, state: Any) -> dict[str, Any]:
                return {"name": "badprio", "version": "1.0", "api_version": 1}

            def get_providers(self, state: Any) -> Any:
                return [("odd", Named("odd", priority="high"), ["x"])]

        with Runtime() as rt:
            with pytest.raises(PluginError) as info:
                rt.plugins.load_plugin("badprio", BadPriorityPlugin)
            assert info.value.code == "validation_failed"
            assert "'odd'" in str(info.value) and "priority" in str(info.value)
            assert "odd" not in rt.providers

    def test_ranking_follows_later_writes(self) -> None:
        registry = ProviderRegistry()
        registry.register_providers([("a", Named("a"), ["x"])], "p1")
        view = registry.view("mock")
        assert view.select_name(["x"]) == "a"
        registry.register_providers([("b", Named("b", priority=1), ["x"])], "p2")
        assert view.select_name(["x"]) == "b"
        registry.unregister_owner("p2")
        assert view.select_name(["x"]) == "a"

    def test_builtin_providers_are_fallbacks(self, runtime: Runtime) -> None:
        for name in ("mock_claude", "mock_gemini"):
            assert runtime.providers.priority(name) == FALLBACK_PRIORITY < 0
        with Runtime(mode="live") as live:
            for name in ("claude", "gemini"):
                assert live.providers.priority(name) == FALLBACK_PRIORITY


def _view(runtime: Runtime, mode: str) -> Any:
    """What a step of a run in ``mode`` receives as ``context.providers``."""
    context = ExecutionContext(
        executor=runtime.executor,
        workflow={"name": "w", "steps": []},
        mode=mode,
        base_dir=Path("."),
        output_dir=Path("."),
    )
    return context.providers


class TestTheIssue:
    """issue 8: ``select(["text_generation"])`` returned ``mock_claude``, even in live mode."""

    @pytest.mark.parametrize("mode", ["mock", "live"])
    def test_select_text_generation_prefers_the_plugin_provider(
        self, text_tools_runtime: Runtime, mode: str
    ) -> None:
        view = _view(text_tools_runtime, mode)
        assert view.select_name(["text_generation"]) == "echo"
        ranked = view.select_all(["text_generation"])
        assert ranked[0] is text_tools_runtime.providers["echo"]
        prefix = "mock_" if mode == "mock" else ""
        expected = ["echo", f"{prefix}claude", f"{prefix}gemini"]  # the README's example
        assert len(ranked) == len(expected)
        assert all(
            p is text_tools_runtime.providers[n] for p, n in zip(ranked, expected, strict=True)
        )
        other = "live" if mode == "mock" else "mock"
        assert all(other not in text_tools_runtime.providers.capabilities(n) for n in view)

    def test_without_plugins_each_mode_gets_its_own_builtin(self, runtime: Runtime) -> None:
        assert _view(runtime, "mock").select_name(["text_generation"]) == "mock_claude"
        assert _view(runtime, "live").select_name(["text_generation"]) == "claude"
        assert _view(runtime, "live").select_name(["gemini"]) == "gemini"

    def test_shout_step_runs_in_live_mode_without_touching_a_mock(self, tmp_path: Path) -> None:
        config = {
            "plugins": {
                "text_tools": {"module": "text_tools"},
                "shouting": {"module": "pipeline_ex_text_tools.shouting"},
            }
        }
        with Runtime(plugin_config=config, mode="live") as rt:
            mock = rt.providers["mock_claude"]
            before = mock.calls
            step = {"name": "s", "type": "shout", "text": "hi"}
            workflow = {"workflow": {"name": "w", "steps": [step]}}
            results = rt.run(workflow, output_dir=tmp_path)
            assert results["s"]["text"] == "HI!"
            assert mock.calls == before
