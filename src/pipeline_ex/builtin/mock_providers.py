"""Built-in plugin ``mock_providers``: ``mock_claude`` and ``mock_gemini``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline_ex.builtin.providers.mock import MockProvider, load_response_file
from pipeline_ex.plugins.behaviour import Plugin, Providers


class MockProvidersPlugin(Plugin):
    def init(self, config: Mapping[str, Any]) -> Any:
        claude = MockProvider("mock_claude", "claude", "mock-claude")
        gemini = MockProvider("mock_gemini", "gemini", "mock-gemini")
        responses = config.get("responses_file")
        if responses:
            fixtures = load_response_file(responses)
            for provider in (claude, gemini):
                provider.set_response_patterns(fixtures.get(provider.family, {}))
                provider.set_response_patterns(fixtures.get("*", {}))
        return {"claude": claude, "gemini": gemini}

    def get_metadata(self, state: Any) -> Mapping[str, Any]:
        return {
            "name": "mock_providers",
            "version": "1.0.0",
            "api_version": 1,
            "description": "Deterministic mock claude and gemini providers (mock mode)",
            "capabilities": ["text_generation", "mock"],
        }

    def get_providers(self, state: Any) -> Providers:
        return [
            ("mock_claude", state["claude"], ["text_generation", "claude", "mock"]),
            ("mock_gemini", state["gemini"], ["text_generation", "gemini", "mock"]),
        ]
