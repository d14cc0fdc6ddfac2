"""Built-in plugin ``live_providers``: ``claude`` (anthropic SDK) and ``gemini`` (google-genai).

The SDKs are optional (``pip install pipeline-ex[providers]``) and imported on the first
live call, so mock-mode start-up never pays for them.  Config keys: ``anthropic_base_url``,
``gemini_base_url``, ``timeout`` (seconds per attempt), ``max_retries``; environment:
``ANTHROPIC_API_KEY``, ``GEMINI_API_KEY`` (or ``GOOGLE_API_KEY``), ``ANTHROPIC_BASE_URL``,
``GEMINI_BASE_URL``.  Keys are read from the environment only, never from config files.

A failed call raises ``ProviderError`` whose ``code`` tells what happened, and the engine
turns it into a failed step carrying that code: ``provider_rate_limited``,
``provider_timeout``, ``provider_auth_failed``, ``provider_unreachable``,
``provider_api_error``, ``provider_bad_option``, ``provider_truncated``,
``provider_blocked``, ``provider_refusal``.  A missing key or SDK raises
``ProviderConfigurationError`` from ``preflight``, before the first step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline_ex.builtin.providers.anthropic import AnthropicProvider
from pipeline_ex.builtin.providers.gemini import GeminiProvider
from pipeline_ex.plugins.behaviour import Plugin, Providers


class LiveProvidersPlugin(Plugin):
    def init(self, config: Mapping[str, Any]) -> Any:
        timeout = float(config.get("timeout", 600.0))
        retries = int(config.get("max_retries", 2))
        return {
            "claude": AnthropicProvider(
                base_url=config.get("anthropic_base_url"), timeout=timeout, max_retries=retries
            ),
            "gemini": GeminiProvider(
                base_url=config.get("gemini_base_url"), timeout=timeout, max_retries=retries
            ),
        }

    def terminate(self, state: Any) -> None:
        """Close the SDKs' HTTP connection pools when the plugin is unloaded."""
        for provider in (state["claude"], state["gemini"]):
            provider.close()

    def get_metadata(self, state: Any) -> Mapping[str, Any]:
        return {
            "name": "live_providers",
            "version": "1.0.0",
            "api_version": 1,
            "description": "Live claude (anthropic SDK) and gemini (google-genai SDK) providers",
            "capabilities": ["text_generation", "live"],
            "permissions": [
                "network",
                "env:ANTHROPIC_API_KEY",
                "env:ANTHROPIC_BASE_URL",
                "env:GEMINI_API_KEY",
                "env:GOOGLE_API_KEY",
                "env:GEMINI_BASE_URL",
            ],
        }

    def get_providers(self, state: Any) -> Providers:
        return [
            ("claude", state["claude"], ["text_generation", "claude", "live"]),
            ("gemini", state["gemini"], ["text_generation", "gemini", "live"]),
        ]
