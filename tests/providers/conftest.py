"""Fixtures for the live providers: a fake LLM server on 127.0.0.1 and keyed environments."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_llm_server import CLAUDE_KEY, GEMINI_KEY, FakeLLMServer


@pytest.fixture
def fake_llm() -> Iterator[FakeLLMServer]:
    server = FakeLLMServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def api_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", CLAUDE_KEY)
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI_KEY)


@pytest.fixture
def live_env(
    api_keys: None, fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> FakeLLMServer:
    """Keys set and both base URLs pointing at the fake server, through the environment."""
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_llm.url)
    monkeypatch.setenv("GEMINI_BASE_URL", fake_llm.url)
    return fake_llm
