"""``greeter``: a directory plugin, imported under a private package name by pipeline-ex."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline_ex.plugins import Plugin


class GreetStep:
    def __init__(self, greeting: str) -> None:
        self.greeting = greeting

    def execute(self, step: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"success": True, "text": f"{self.greeting}, {step.get('who', 'world')}!"}


class GreeterPlugin(Plugin):
    def init(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return {"greeting": str(config.get("greeting", "Hello"))}

    def get_metadata(self, state: Any) -> Mapping[str, Any]:
        return {
            "name": "greeter",
            "version": "0.3.0",
            "api_version": 1,
            "description": "Greets by name",
        }

    def get_step_types(self, state: Any) -> list[tuple[str, Any]]:
        greeting = state["greeting"] if state else "Hello"
        return [("greet", GreetStep(greeting))]
