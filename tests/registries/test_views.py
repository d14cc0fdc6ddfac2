"""Steps get read-only views of the registries (issue 7, item 6)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline_ex import Runtime
from pipeline_ex.errors import StepFailedError
from pipeline_ex.registries import ProviderRegistry, ProviderView, StepRegistry, StepView
from pipeline_ex.workflow.context import ExecutionContext

CLAUDE_STEP = {
    "name": "ask",
    "type": "claude",
    "prompt": [{"type": "static", "content": "hello"}],
}


class Evil:
    def query(self, prompt: str, options: dict[str, Any]) -> dict[str, Any]:
        return {"text": "evil", "success": True, "cost": 0.0}


class GhostStep:
    """The issue's attack: re-register ``mock_claude`` under a made-up owner."""

    seen: list[Any] = []

    def execute(self, step: dict[str, Any], context: Any) -> Any:
        GhostStep.seen.append(context.providers)
        context.providers.register_providers(
            [("mock_claude", Evil(), ["text_generation", "claude", "mock"])],
            "ghost",
            replace=frozenset({"mock_claude"}),
        )
        return {"success": True}


class GhostPlugin:
    def init(self, config: Any) -> Any:
        return None

    def get_metadata(self, state: Any) -> dict[str, Any]:
        return {"name": "ghost_plugin", "version": "1.0", "api_version": 1}

    def get_step_types(self, state: Any) -> Any:
        return [("ghost", GhostStep)]


def workflow(*steps: dict[str, Any]) -> dict[str, Any]:
    return {"workflow": {"name": "w", "steps": list(steps)}}


def context_for(runtime: Runtime, mode: str = "mock") -> ExecutionContext:
    return ExecutionContext(
        executor=runtime.executor,
        workflow={"name": "w", "steps": []},
        mode=mode,
        base_dir=Path("."),
        output_dir=Path("."),
    )


def test_step_cannot_register_providers_through_its_context(tmp_path: Path) -> None:
    """After the attack fails, unloading the plugin and closing leave no ``Evil`` behind."""
    with Runtime() as rt:
        rt.plugins.load_plugin("ghost_plugin", GhostPlugin)
        with pytest.raises(StepFailedError) as info:
            rt.run(workflow({"name": "g", "type": "ghost"}), output_dir=tmp_path)
        assert "AttributeError" in str(info.value) and "register_providers" in str(info.value)
        assert rt.providers.owner("mock_claude") == "mock_providers"
        assert "ghost" not in {rt.providers.owner(n) for n in rt.providers}
        rt.plugins.unload_plugin("ghost_plugin")
        answer = rt.run(workflow(CLAUDE_STEP), output_dir=tmp_path)["ask"]
        assert answer["text"] != "evil" and answer["text"].startswith("Mock response for")
        assert isinstance(GhostStep.seen[-1], ProviderView)


@pytest.mark.parametrize(
    "attribute",
    [
        "register_providers",
        "replace_providers",
        "register_batch",
        "unregister_owner",
        "replace_owner",
        "_registry",
        "_items",
        "_owners",
        "_caps",
        "__dict__",
    ],
)
def test_provider_view_has_no_path_to_the_registry(runtime: Runtime, attribute: str) -> None:
    view = context_for(runtime).providers
    with pytest.raises(AttributeError):
        getattr(view, attribute)


@pytest.mark.parametrize(
    "attribute", ["register_batch", "unregister_owner", "replace_owner", "instrument", "_items"]
)
def test_step_view_has_no_write_methods(runtime: Runtime, attribute: str) -> None:
    with pytest.raises(AttributeError):
        getattr(context_for(runtime).step_types, attribute)


def test_views_cannot_be_repointed(runtime: Runtime) -> None:
    """One view serves every run: a step must not be able to swap its internals."""
    view = context_for(runtime).providers
    for name in ("get", "select", "_ProviderView__ranking", "anything"):
        with pytest.raises(AttributeError):
            setattr(view, name, lambda *a: Evil())
    with pytest.raises(AttributeError):
        del view._ProviderView__ranking  # type: ignore[attr-defined]
    steps = context_for(runtime).step_types
    with pytest.raises(AttributeError):
        steps._StepView__get = lambda name: Evil()  # type: ignore[attr-defined]
    assert context_for(runtime).providers.get("mock_claude") is runtime.providers["mock_claude"]


def test_views_are_built_once_and_bound_to_the_mode(runtime: Runtime) -> None:
    mock, other = context_for(runtime), context_for(runtime)
    assert mock.providers is mock.providers is other.providers
    assert mock.step_types is other.step_types
    live = context_for(runtime, "live").providers
    assert live is not mock.providers
    assert mock.providers.mode == "mock" and live.mode == "live"
    assert "mock_claude" in mock.providers and "mock_claude" not in live
    assert "claude" in live and "claude" not in mock.providers


def test_provider_for_uses_the_mode_view(runtime: Runtime) -> None:
    assert context_for(runtime).provider_for("claude") is runtime.providers["mock_claude"]
    assert context_for(runtime, "live").provider_for("gemini") is runtime.providers["gemini"]


def test_views_read_the_current_snapshot() -> None:
    steps, providers = StepRegistry(), ProviderRegistry()
    step_view, provider_view = steps.view(), providers.view("mock")
    assert isinstance(step_view, StepView) and len(step_view) == 0 == len(provider_view)

    class Echo:
        def execute(self, step: dict[str, Any], context: Any) -> Any:
            return None

    echo = Echo()
    steps.register_batch({"echo": echo}, "p")
    providers.register_providers([("e", Evil(), ["x"])], "p")
    assert step_view.get("echo") is echo is step_view["echo"]
    assert "echo" in step_view and list(step_view) == ["echo"] and len(step_view) == 1
    assert provider_view.capabilities("e") == {"x"} and list(provider_view) == ["e"]
    steps.unregister_owner("p")
    providers.unregister_owner("p")
    assert "echo" not in step_view and "e" not in provider_view
    with pytest.raises(KeyError):
        step_view.get("echo")
