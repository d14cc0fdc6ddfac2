"""An isolated step's ``context``: data sent with the call, and calls back to the host
for providers (including isolated ones, and ones of the same plugin), build_prompt,
run_steps, check_condition and set_variable."""

from __future__ import annotations

import datetime
from collections import ChainMap
from typing import Any

import pytest

from pipeline_ex.errors import PluginError
from pipeline_ex.registries import ProviderRegistry

STEPS = """
    class UsesHost:
        def execute(self, step, context):
            provider = context.providers.select(step["capabilities"])
            reply = provider.query(context.build_prompt(step["parts"]), {"temperature": 0})
            nested = context.run_steps([{"name": "inner"}]) if step.get("nest") else None
            context.set_variable("seen", reply["text"])
            return {
                "success": True,
                "reply": reply,
                "nested": nested,
                "condition": context.check_condition("state.flag"),
                "results": context.results,
                "variables": context.variables,
                "inputs": context.inputs,
                "loop": context.loop,
                "mode": context.mode,
                "has_echo": "echo" in context.providers,
            }

    class Keeps:
        kept = None
        def execute(self, step, context):
            if step.get("keep"):
                Keeps.kept = context.providers.get("echo")
                return {}
            return Keeps.kept.query("late", {})

    class Upper:
        def query(self, prompt, options):
            return {"text": prompt.upper(), "success": True, "cost": 0.0}

    def init(config):
        return config

    def get_metadata(state):
        return {"name": "caller"}

    def get_step_types(state):
        return [("uses_host", UsesHost), ("keeps", Keeps)]

    def get_providers(state):
        return [("upper", Upper, ["upper"])]
"""


class Echo:
    def query(self, prompt: str, options: dict[str, Any]) -> dict[str, Any]:
        return {"text": f"echo:{prompt}", "success": True, "cost": 0.0, "options": options}


class HostContext:
    """The parts of the engine's ExecutionContext that callbacks reach."""

    def __init__(self, providers: ProviderRegistry) -> None:
        self.providers = providers
        self.results = ChainMap({"early": {"text": "t", "when": datetime.date(2026, 1, 2)}})
        self.variables = ChainMap({"flag": True})
        self.inputs = {"topic": "plugins"}
        self.workflow = {"name": "wf"}
        self.loop = {"index": 2}
        self.mode = "mock"
        self.ran: list[Any] = []

    def build_prompt(self, parts: list[dict[str, Any]]) -> str:
        return " ".join(str(p["content"]) for p in parts)

    def run_steps(self, steps: list[Any], path: str = "") -> dict[str, Any]:
        self.ran.append(steps)
        return {"inner": {"success": True}}

    def check_condition(self, condition: Any) -> bool:
        return bool(self.variables.get(str(condition).partition(".")[2]))

    def set_variable(self, name: str, value: Any, scope: str = "global") -> None:
        self.variables.maps[-1][name] = value


@pytest.fixture
def caller(start, write_plugin):
    plugin = start(write_plugin(STEPS, name="caller"), name="caller")
    state = plugin.init({})
    steps = dict(plugin.get_step_types(state))
    providers = {name: proxy for name, proxy, _ in plugin.get_providers(state)}
    return plugin, steps, providers


def test_an_isolated_step_uses_a_host_provider(caller) -> None:
    _, steps, _ = caller
    registry = ProviderRegistry()
    registry.register_providers([("echo", Echo(), ["echo"])], "host")
    context = HostContext(registry)
    result = steps["uses_host"].execute(
        {"capabilities": ["echo"], "parts": [{"content": "hi"}], "nest": True}, context
    )
    assert result["reply"] == {
        "text": "echo:hi",
        "success": True,
        "cost": 0.0,
        "options": {"temperature": 0},
    }
    assert result["nested"] == {"inner": {"success": True}}
    assert context.ran == [[{"name": "inner"}]]
    assert context.variables["seen"] == "echo:hi"  # set_variable reached the host
    assert result["condition"] is True and result["has_echo"] is True
    # data travels with the call; values msgpack cannot carry arrive as text
    assert result["results"] == {"early": {"text": "t", "when": "2026-01-02"}}
    assert result["inputs"] == {"topic": "plugins"} and result["loop"] == {"index": 2}
    assert result["mode"] == "mock"


def test_an_isolated_step_reaches_an_isolated_provider(caller, bystander) -> None:
    _, steps, _ = caller
    ((name, echo, caps),) = bystander.get_providers(bystander._state)
    registry = ProviderRegistry()
    registry.register_providers([(name, echo, caps)], "text_tools")
    result = steps["uses_host"].execute(
        {"capabilities": ["echo"], "parts": [{"content": "via two children"}]},
        HostContext(registry),
    )
    assert result["reply"]["text"] == "VIA TWO CHILDREN"


def test_an_isolated_step_reaches_a_provider_of_its_own_plugin(caller) -> None:
    plugin, steps, providers = caller
    registry = ProviderRegistry()
    registry.register_providers([("upper", providers["upper"], ["upper"])], "caller")
    result = steps["uses_host"].execute(
        {"capabilities": ["upper"], "parts": [{"content": "re-entrant"}]}, HostContext(registry)
    )
    assert result["reply"]["text"] == "RE-ENTRANT"
    assert plugin.restarts == 0


def test_host_errors_reach_the_step_as_errors(caller) -> None:
    _, steps, _ = caller
    with pytest.raises(PluginError) as caught:
        steps["uses_host"].execute(
            {"capabilities": ["nothing"], "parts": []}, HostContext(ProviderRegistry())
        )
    assert caught.value.code == "crashed"
    assert "HostError" in caught.value.message
    assert "no_suitable_provider" in caught.value.message or "no provider" in caught.value.message


def test_a_context_kept_past_its_call_is_refused(caller) -> None:
    _, steps, _ = caller
    registry = ProviderRegistry()
    registry.register_providers([("echo", Echo(), ["echo"])], "host")
    steps["keeps"].execute({"keep": True}, HostContext(registry))
    with pytest.raises(PluginError, match="the call this context belonged to has ended"):
        steps["keeps"].execute({}, HostContext(registry))
