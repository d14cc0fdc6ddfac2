"""Live mode through the engine: Runtime(mode="live") -> steps -> real SDKs -> fake server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fake_llm_server import FakeLLMServer, anthropic_error

from pipeline_ex import Runtime
from pipeline_ex.errors import ProviderConfigurationError, StepFailedError


def chain_workflow() -> dict[str, Any]:
    """pipeline_ex's claude -> gemini chain, with Claude Code options live mode must ignore."""
    return {
        "workflow": {
            "name": "live_chain",
            "steps": [
                {
                    "name": "draft",
                    "type": "claude",
                    "claude_options": {
                        "model": "haiku",
                        "max_tokens": 200,
                        "max_turns": 2,
                        "allowed_tools": ["Read"],
                        "timeout_ms": 30000,
                    },
                    "prompt": [{"type": "static", "content": "Write a haiku about plugins."}],
                },
                {
                    "name": "review",
                    "type": "gemini",
                    "model": "gemini-2.5-flash",
                    "token_budget": {"max_output_tokens": 128, "temperature": 0.2},
                    "prompt": [
                        {"type": "static", "content": "Review:"},
                        {"type": "previous_response", "step": "draft", "extract": "text"},
                    ],
                },
            ],
        }
    }


def plugin_config(url: str) -> dict[str, Any]:
    """The seed's plugin_config format, pointing live_providers at ``url`` with no retries
    (the SDKs would otherwise honour a 429's retry-after before giving up)."""
    return {
        "plugins": {
            "live_providers": {
                "module": "pipeline_ex.builtin.live_providers:LiveProvidersPlugin",
                "config": {
                    "anthropic_base_url": url,
                    "gemini_base_url": url,
                    "timeout": 5,
                    "max_retries": 0,
                },
            }
        }
    }


@pytest.fixture
def live_runtime(api_keys: None, fake_llm: FakeLLMServer) -> Iterator[Runtime]:
    rt = Runtime(plugin_config=plugin_config(fake_llm.url), mode="live")
    try:
        yield rt
    finally:
        rt.close()


def test_claude_then_gemini_chain_runs_live(live_env: FakeLLMServer) -> None:
    with Runtime(mode="live") as rt:  # keys and base URLs from the environment
        results = rt.run(chain_workflow())

    draft, review = results["draft"], results["review"]
    assert draft["text"] == "claude says: Write a haiku about plugins."
    assert draft["model"] == "claude-haiku-5-5"
    assert review["text"] == "gemini says: Review:\nclaude says: Write a haiku about plugins."
    assert draft["cost"] > 0 and review["cost"] > 0
    assert {"max_turns", "allowed_tools", "timeout_ms"} <= set(draft["ignored_options"])

    [to_claude] = live_env.requests_to("anthropic")
    assert to_claude.body["model"] == "claude-haiku-5-5"
    assert to_claude.body["max_tokens"] == 200
    [to_gemini] = live_env.requests_to("gemini")
    assert "/models/gemini-2.5-flash:generateContent" in to_gemini.path
    assert "claude says: Write a haiku about plugins." in str(to_gemini.body["contents"])
    assert to_gemini.body["generationConfig"]["maxOutputTokens"] == 128


def test_base_urls_from_plugin_config(live_runtime: Runtime, fake_llm: FakeLLMServer) -> None:
    results = live_runtime.run(chain_workflow())

    assert results["review"]["success"] is True
    assert [r.api for r in fake_llm.requests] == ["anthropic", "gemini"]


@pytest.mark.parametrize("missing", ["ANTHROPIC_API_KEY", "GEMINI_API_KEY"])
def test_missing_key_fails_before_the_first_step(
    live_env: FakeLLMServer, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    monkeypatch.delenv(missing)
    events: list[str] = []

    with Runtime(mode="live") as rt, pytest.raises(ProviderConfigurationError, match=missing):
        rt.run(chain_workflow(), on_event=lambda kind, data: events.append(kind))

    assert events == []  # not even the claude step started when only gemini's key is gone
    assert live_env.requests == []


def test_rate_limit_during_a_run_fails_the_step_by_name_and_type(
    live_runtime: Runtime, fake_llm: FakeLLMServer
) -> None:
    fake_llm.queue(
        "anthropic", anthropic_error(429, "rate_limit_error", "Too many requests", retry_after="30")
    )

    with pytest.raises(StepFailedError) as caught:
        live_runtime.run(chain_workflow())

    error = caught.value
    assert error.step_name == "draft"
    assert error.step_type == "claude"
    assert error.cause_code == "provider_rate_limited"
    message = str(error)
    assert "'draft'" in message and "'claude'" in message
    assert "rate limit" in message and "retry after 30s" in message
    assert fake_llm.requests_to("gemini") == []  # the run stopped at the failing step


def test_mock_mode_never_touches_the_live_providers(live_env: FakeLLMServer) -> None:
    with Runtime() as rt:
        results = rt.run(chain_workflow())

    assert results["draft"]["text"].startswith("Mock response for:")
    assert live_env.requests == []
