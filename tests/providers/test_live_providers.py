"""The live ``claude`` and ``gemini`` providers, driving the real SDKs against a fake server."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fake_llm_server import (
    CLAUDE_KEY,
    GEMINI_KEY,
    FakeLLMServer,
    Reply,
    anthropic_error,
    gemini_error,
)

from pipeline_ex.builtin.providers.anthropic import AnthropicProvider
from pipeline_ex.builtin.providers.gemini import GeminiProvider
from pipeline_ex.builtin.providers.pricing import claude_cost, gemini_cost
from pipeline_ex.errors import ProviderConfigurationError, ProviderError

Provider = AnthropicProvider | GeminiProvider


def claude(server: FakeLLMServer, timeout: float = 5.0, max_retries: int = 0) -> AnthropicProvider:
    return AnthropicProvider(base_url=server.url, timeout=timeout, max_retries=max_retries)


def gemini(server: FakeLLMServer, timeout: float = 5.0, max_retries: int = 0) -> GeminiProvider:
    return GeminiProvider(base_url=server.url, timeout=timeout, max_retries=max_retries)


def make(api: str, server: FakeLLMServer, timeout: float = 5.0, max_retries: int = 0) -> Provider:
    factory = claude if api == "anthropic" else gemini
    return factory(server, timeout=timeout, max_retries=max_retries)


def sent_key(headers: dict[str, str]) -> str | None:
    """The Anthropic key as sent: older SDKs use x-api-key, 2.x a bearer token."""
    if "x-api-key" in headers:
        return headers["x-api-key"]
    auth = headers.get("authorization", "")
    return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None


# -- claude ----------------------------------------------------------------------------
def test_claude_success_sends_the_prompt_and_prices_the_usage(
    fake_llm: FakeLLMServer, api_keys: None
) -> None:
    reply = claude(fake_llm).query(
        "Summarise plugins.", {"model": "claude-haiku-4-5", "max_tokens": 321}
    )

    assert reply["success"] is True
    assert reply["text"] == "claude says: Summarise plugins."
    assert reply["provider"] == "claude"
    assert reply["model"] == "claude-haiku-4-5"
    assert reply["usage"]["input_tokens"] == 1200
    assert reply["usage"]["output_tokens"] == 300
    assert reply["stop_reason"] == "end_turn"
    # Haiku 4.5 is $1 / $5 per million tokens.
    assert reply["cost"] == pytest.approx((1200 * 1.0 + 300 * 5.0) / 1e6)
    assert reply["priced"] is True

    [request] = fake_llm.requests_to("anthropic")
    assert request.path == "/v1/messages"
    assert sent_key(request.headers) == CLAUDE_KEY
    assert request.body["model"] == "claude-haiku-4-5"
    assert request.body["max_tokens"] == 321
    assert request.body["messages"] == [{"role": "user", "content": "Summarise plugins."}]


@pytest.mark.parametrize(
    ("alias", "model_id"),
    [
        ("haiku", "claude-haiku-5-5"),
        ("sonnet", "claude-sonnet-5-5"),
        ("opus", "claude-opus-5-5"),
        ("Sonnet", "claude-sonnet-5-5"),
        (None, "claude-sonnet-5-5"),
    ],
)
def test_claude_aliases_become_real_model_ids(
    fake_llm: FakeLLMServer, api_keys: None, alias: str | None, model_id: str
) -> None:
    options = {} if alias is None else {"model": alias}
    reply = claude(fake_llm).query("hi", options)

    assert fake_llm.requests_to("anthropic")[0].body["model"] == model_id
    assert reply["model"] == model_id
    assert reply["cost"] > 0


def test_claude_tolerates_claude_code_options_it_cannot_use(
    fake_llm: FakeLLMServer, api_keys: None
) -> None:
    options = {
        "model": "sonnet",
        "max_turns": 3,
        "allowed_tools": ["Read", "Write"],
        "timeout_ms": 1000,
        "temperature": 0.7,
        "cwd": "./workspace",
        "output_format": "json",
        "system_prompt": "You are terse.",
        "append_system_prompt": "Answer in English.",
        "step_name": "draft",
    }
    reply = claude(fake_llm).query("hi", options)

    body = fake_llm.requests_to("anthropic")[0].body
    assert body["system"] == "You are terse.\n\nAnswer in English."
    for key in ("max_turns", "allowed_tools", "timeout_ms", "temperature", "cwd"):
        assert key not in body
    assert body["max_tokens"] == 16384
    assert reply["ignored_options"] == [
        "allowed_tools",
        "cwd",
        "max_turns",
        "output_format",
        "temperature",
        "timeout_ms",
    ]


def test_claude_unpriced_model_costs_zero_and_says_so(
    fake_llm: FakeLLMServer, api_keys: None
) -> None:
    reply = claude(fake_llm).query("hi", {"model": "claude-experimental-9"})

    assert reply["success"] is True
    assert reply["cost"] == 0.0
    assert reply["priced"] is False


def test_claude_answer_lost_to_max_tokens_is_an_error(
    fake_llm: FakeLLMServer, api_keys: None
) -> None:
    thinking_only = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-5-5",
        "content": [{"type": "thinking", "thinking": "hmm", "signature": "s"}],
        "stop_reason": "max_tokens",
        "usage": {"input_tokens": 10, "output_tokens": 64},
    }
    fake_llm.queue("anthropic", Reply(body=thinking_only))

    with pytest.raises(ProviderError, match=r"raise claude_options\.max_tokens") as caught:
        claude(fake_llm).query("hi", {"max_tokens": 64})
    assert caught.value.code == "provider_truncated"


@pytest.mark.parametrize("value", ["lots", 0, -5, True])
def test_claude_bad_max_tokens_is_refused_before_sending(
    fake_llm: FakeLLMServer, api_keys: None, value: object
) -> None:
    with pytest.raises(ProviderError, match="max_tokens must be a positive integer"):
        claude(fake_llm).query("hi", {"max_tokens": value})
    assert fake_llm.requests == []


# -- gemini ----------------------------------------------------------------------------
def test_gemini_success_sends_model_budget_and_key(fake_llm: FakeLLMServer, api_keys: None) -> None:
    options = {
        "model": "gemini-2.5-flash",
        "token_budget": {"max_output_tokens": 256, "temperature": 0.3, "top_p": 0.9, "top_k": 40},
        "functions": ["unused"],
        "step_name": "review",
    }
    reply = gemini(fake_llm).query("Review this.", options)

    assert reply["success"] is True
    assert reply["text"] == "gemini says: Review this."
    assert reply["provider"] == "gemini"
    assert reply["model"] == "gemini-2.5-flash"
    assert reply["usage"]["input_tokens"] == 1200
    assert reply["usage"]["output_tokens"] == 300
    assert reply["finish_reason"] == "STOP"
    # gemini-2.5-flash is $0.30 / $2.50 per million tokens.
    assert reply["cost"] == pytest.approx((1200 * 0.30 + 300 * 2.50) / 1e6)
    assert reply["ignored_options"] == ["functions"]

    [request] = fake_llm.requests_to("gemini")
    assert request.path.endswith("/models/gemini-2.5-flash:generateContent")
    assert request.headers["x-goog-api-key"] == GEMINI_KEY
    assert request.body["contents"][-1]["parts"] == [{"text": "Review this."}]
    assert request.body["generationConfig"] == {
        "maxOutputTokens": 256,
        "temperature": 0.3,
        "topP": 0.9,
        "topK": 40,
    }


def test_gemini_default_model_and_google_api_key(
    fake_llm: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "google-key")
    reply = gemini(fake_llm).query("hi", {"system_prompt": "Be brief."})

    [request] = fake_llm.requests_to("gemini")
    assert request.path.endswith("/models/gemini-3.5-flash:generateContent")
    assert request.headers["x-goog-api-key"] == "google-key"
    assert request.body["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    assert reply["cost"] > 0


def test_gemini_blocked_prompt_is_an_error_not_an_empty_answer(
    fake_llm: FakeLLMServer, api_keys: None
) -> None:
    fake_llm.queue("gemini", Reply(body={"promptFeedback": {"blockReason": "SAFETY"}}))

    with pytest.raises(ProviderError, match=r"blocked \(SAFETY\)"):
        gemini(fake_llm).query("something", {})


def test_gemini_answer_lost_to_max_tokens_is_an_error(
    fake_llm: FakeLLMServer, api_keys: None
) -> None:
    no_text = {"candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS"}]}
    fake_llm.queue("gemini", Reply(body=no_text))

    with pytest.raises(ProviderError, match=r"raise token_budget\.max_output_tokens"):
        gemini(fake_llm).query("hi", {})


@pytest.mark.parametrize("budget", [["max_output_tokens"], {"max_output_tokens": "many"}])
def test_gemini_bad_token_budget_is_refused_before_sending(
    fake_llm: FakeLLMServer, api_keys: None, budget: object
) -> None:
    with pytest.raises(ProviderError, match="token_budget") as caught:
        gemini(fake_llm).query("hi", {"token_budget": budget})
    assert caught.value.code == "provider_bad_option"
    assert fake_llm.requests == []


# -- errors, both providers ------------------------------------------------------------
@pytest.mark.parametrize("api", ["anthropic", "gemini"])
def test_rate_limit_reports_retry_after(fake_llm: FakeLLMServer, api_keys: None, api: str) -> None:
    if api == "anthropic":
        fake_llm.queue(
            api, anthropic_error(429, "rate_limit_error", "Too many requests", retry_after="7")
        )
    else:
        fake_llm.queue(
            api, gemini_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded", retry_after="7")
        )

    with pytest.raises(ProviderError) as caught:
        make(api, fake_llm).query("hi", {})

    message = str(caught.value)
    assert "rate limit" in message
    assert "HTTP 429" in message
    assert "retry after 7s" in message
    assert caught.value.code == "provider_rate_limited"


def test_gemini_rate_limit_reads_retry_info_when_no_header(
    fake_llm: FakeLLMServer, api_keys: None
) -> None:
    retry_info = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}
    fake_llm.queue(
        "gemini", gemini_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded", details=[retry_info])
    )

    with pytest.raises(ProviderError, match="retry after 37s"):
        gemini(fake_llm).query("hi", {})


@pytest.mark.parametrize("api", ["anthropic", "gemini"])
def test_server_error_names_status_and_api_message(
    fake_llm: FakeLLMServer, api_keys: None, api: str
) -> None:
    if api == "anthropic":
        fake_llm.queue(api, anthropic_error(500, "api_error", "Internal failure X1"))
    else:
        fake_llm.queue(api, gemini_error(500, "INTERNAL", "Internal failure X1"))

    with pytest.raises(ProviderError) as caught:
        make(api, fake_llm).query("hi", {})

    assert "HTTP 500" in str(caught.value)
    assert "Internal failure X1" in str(caught.value)
    assert caught.value.code == "provider_api_error"


@pytest.mark.parametrize(
    ("api", "reply", "env"),
    [
        (
            "anthropic",
            anthropic_error(401, "authentication_error", "invalid x-api-key"),
            "ANTHROPIC_API_KEY",
        ),
        ("gemini", gemini_error(403, "PERMISSION_DENIED", "Permission denied"), "GEMINI_API_KEY"),
        (
            "gemini",
            gemini_error(
                400,
                "INVALID_ARGUMENT",
                "API key not valid.",
                details=[{"reason": "API_KEY_INVALID"}],
            ),
            "GEMINI_API_KEY",
        ),
    ],
)
def test_authentication_failure_points_at_the_key(
    fake_llm: FakeLLMServer, api_keys: None, api: str, reply: Reply, env: str
) -> None:
    fake_llm.queue(api, reply)

    with pytest.raises(ProviderError) as caught:
        make(api, fake_llm).query("hi", {})

    assert caught.value.code == "provider_auth_failed"
    assert env in str(caught.value)


@pytest.mark.parametrize("api", ["anthropic", "gemini"])
def test_timeout_says_after_how_long(fake_llm: FakeLLMServer, api_keys: None, api: str) -> None:
    fake_llm.queue(api, Reply(delay=120.0))  # the server's stop() cuts the delay short
    provider = make(api, fake_llm, timeout=0.3)

    started = time.monotonic()
    with pytest.raises(ProviderError) as caught:
        provider.query("hi", {})

    assert time.monotonic() - started < 60  # gave up long before the reply, on any machine
    assert "timed out after 0.3s" in str(caught.value)
    assert caught.value.code == "provider_timeout"


@pytest.mark.parametrize("api", ["anthropic", "gemini"])
def test_unreachable_server_is_a_connection_error(api_keys: None, api: str) -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    provider: Provider = (
        AnthropicProvider(base_url=url, timeout=2.0, max_retries=0)
        if api == "anthropic"
        else GeminiProvider(base_url=url, timeout=2.0, max_retries=0)
    )

    with pytest.raises(ProviderError) as caught:
        provider.query("hi", {})

    assert caught.value.code == "provider_unreachable"
    assert f"127.0.0.1:{port}" in str(caught.value)


@pytest.mark.parametrize(
    "api",
    # google-genai waits its default initial_delay (1 s) before the retry
    ["anthropic", pytest.param("gemini", marks=pytest.mark.slow)],
)
def test_max_retries_retries_then_succeeds(
    fake_llm: FakeLLMServer, api_keys: None, api: str
) -> None:
    if api == "anthropic":  # retry-after-ms keeps the SDK's back-off short
        fake_llm.queue(api, anthropic_error(429, "rate_limit_error", "slow", retry_after_ms="10"))
    else:
        fake_llm.queue(api, gemini_error(503, "UNAVAILABLE", "try again"))

    reply = make(api, fake_llm, max_retries=1).query("hi", {})

    assert reply["success"] is True
    assert len(fake_llm.requests_to(api)) == 2


# -- configuration ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("provider", "env"),
    [(AnthropicProvider(), "ANTHROPIC_API_KEY"), (GeminiProvider(), "GEMINI_API_KEY")],
)
def test_missing_key_fails_preflight(provider: Provider, env: str) -> None:
    with pytest.raises(ProviderConfigurationError, match=env):
        provider.preflight()
    with pytest.raises(ProviderConfigurationError, match=env):
        provider.query("hi", {})


@pytest.mark.parametrize(
    ("make_provider", "module"),
    [(AnthropicProvider, "anthropic"), (GeminiProvider, "google.genai")],
)
def test_missing_sdk_fails_preflight_with_install_hint(
    api_keys: None,
    monkeypatch: pytest.MonkeyPatch,
    make_provider: type[AnthropicProvider] | type[GeminiProvider],
    module: str,
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes the import raise ImportError

    with pytest.raises(ProviderConfigurationError, match=r"pipeline-ex\[providers\]"):
        make_provider().preflight()


def test_base_url_from_environment(
    fake_llm: FakeLLMServer, api_keys: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_llm.url)
    monkeypatch.setenv("GEMINI_BASE_URL", fake_llm.url)

    AnthropicProvider(max_retries=0).query("a", {})
    GeminiProvider(max_retries=0).query("b", {})

    assert [r.api for r in fake_llm.requests] == ["anthropic", "gemini"]


def test_one_client_shared_by_concurrent_queries(fake_llm: FakeLLMServer, api_keys: None) -> None:
    provider = claude(fake_llm)
    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(lambda i: provider.query(f"q{i}", {}), range(16)))

    assert sorted(r["text"] for r in replies) == sorted(f"claude says: q{i}" for i in range(16))
    clients = {id(provider._get_client()) for _ in range(3)}
    assert len(clients) == 1


def test_constructing_the_providers_does_not_import_the_sdks() -> None:
    code = (
        "import sys\n"
        "from pipeline_ex import Runtime\n"
        "rt = Runtime()\n"
        "assert 'claude' in rt.providers and 'gemini' in rt.providers\n"
        "rt.close()\n"
        "loaded = [m for m in ('anthropic', 'google.genai') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- pricing ---------------------------------------------------------------------------
def test_price_table_rules() -> None:
    # Snapshot-dated ids price like their family.
    assert claude_cost("claude-haiku-4-5-20251001", 1_000_000, 0) == pytest.approx(1.0)
    # Cache writes cost 1.25x and reads 0.1x the input price.
    assert claude_cost("claude-sonnet-4-6", 0, 0, 1_000_000, 1_000_000) == pytest.approx(
        3.0 * 1.25 + 3.0 * 0.1
    )
    # Long prompts move the whole request to the higher tier.
    assert claude_cost("claude-haiku-5-5", 100_000, 0) == pytest.approx(0.01)
    assert claude_cost("claude-haiku-5-5", 100_001, 0) == pytest.approx(100_001 * 0.5 / 1e6)
    assert gemini_cost("models/gemini-2.5-pro", 300_000, 0) == pytest.approx(0.75)
    assert claude_cost("no-such-model", 10, 10) is None
    assert gemini_cost("no-such-model", 10, 10) is None


def test_claude_reply_of_another_shape_is_a_bad_response(
    fake_llm: FakeLLMServer, api_keys: None
) -> None:
    fake_llm.queue("anthropic", Reply(status=200, body={"hello": "not the Messages API"}))
    with pytest.raises(ProviderError) as caught:
        claude(fake_llm).query("hi", {})
    assert caught.value.code == "provider_bad_response"
    assert "could not be read" in str(caught.value) and fake_llm.url in str(caught.value)
