"""The live path: DSPy steps reach Claude and Gemini through the live providers (the real
anthropic / google-genai SDKs) against a fake API server on 127.0.0.1; and the fallback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dspy_helpers import QA_STEP, qa_workflow
from fake_llm_server import FakeLLMServer, Reply

from pipeline_ex import Runtime


def claude_text(text: str) -> Reply:
    return Reply(
        body={
            "id": "msg_dspy",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-5-5",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 100, "output_tokens": 10},
        }
    )


def gemini_text(text: str) -> Reply:
    return Reply(
        body={
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}
            ],
            "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 10},
            "modelVersion": "gemini-2.5-flash",
        }
    )


def chat(**fields: str) -> str:
    return "".join(f"[[ ## {k} ## ]]\n{v}\n\n" for k, v in fields.items()) + "[[ ## completed ## ]]"


def test_live_dspy_claude_step_sends_dspy_prompt_through_the_anthropic_sdk(
    live_env: FakeLLMServer, plugin_config: Callable[..., Path], runtimes: Callable[..., Runtime]
) -> None:
    live_env.queue("anthropic", claude_text(chat(answer="Paris")))
    runtime = runtimes(plugin_config(training=None), mode="live")
    result = runtime.run(qa_workflow())["answer"]
    assert result["answer"] == "Paris" and result["success"]
    assert result["dspy"]["lm_calls"] == 1 and result["dspy"]["fallback"] is False
    assert result["cost"] > 0  # priced by the live provider, summed by the engine
    [request] = live_env.requests_to("anthropic")
    assert "Your input fields are" in request.body["system"]
    content = request.body["messages"][0]["content"]
    assert "[[ ## question ## ]]\nWhat is the capital of France?" in content
    assert "dspy_adapter" not in str(request.body)  # the mock hint never goes live


def test_live_compile_goes_through_the_live_provider_every_call_counted(
    live_env: FakeLLMServer, plugin_config: Callable[..., Path], runtimes: Callable[..., Runtime]
) -> None:
    live_env.queue("anthropic", *[claude_text(chat(answer="Paris")) for _ in range(20)])
    runtime = runtimes(plugin_config(), mode="live")
    result = runtime.run(qa_workflow())["answer"]
    assert result["dspy"]["optimized"] and not result["dspy"]["cache_hit"]
    assert result["dspy"]["lm_calls"] == len(live_env.requests_to("anthropic")) > 1
    # the compiled prompt carries the demos as earlier turns
    last = str(live_env.requests_to("anthropic")[-1].body["messages"][0]["content"])
    assert "Assistant:\n[[ ## answer ## ]]" in last


def test_live_dspy_gemini_step_uses_the_gemini_sdk(
    live_env: FakeLLMServer, plugin_config: Callable[..., Path], runtimes: Callable[..., Runtime]
) -> None:
    live_env.queue("gemini", gemini_text(chat(answer="Tokyo")))
    runtime = runtimes(plugin_config(training=None), mode="live")
    result = runtime.run(qa_workflow(type="dspy_gemini"))["answer"]
    assert result["answer"] == "Tokyo"
    [request] = live_env.requests_to("gemini")
    assert "Your output fields are" in str(request.body["systemInstruction"])
    assert live_env.requests_to("anthropic") == []


def test_fallback_when_dspy_cannot_parse_the_answer_runs_the_plain_claude_step(
    live_env: FakeLLMServer, plugin_config: Callable[..., Path], runtimes: Callable[..., Runtime]
) -> None:
    # With nothing queued the fake server echoes the prompt: no DSPy format at all.
    runtime = runtimes(plugin_config(training=None), mode="live")
    result = runtime.run(qa_workflow())["answer"]
    assert result["success"] is True
    assert result["dspy"]["fallback"] is True
    assert "AdapterParseError" in result["dspy"]["reason"]
    requests = live_env.requests_to("anthropic")
    # ChatAdapter, then DSPy's JSONAdapter retry, then the plain step
    assert result["dspy"]["lm_calls"] == len(requests) == 3
    plain = requests[-1].body
    assert "system" not in plain
    assert plain["messages"][0]["content"].startswith("Answer with a city name.")
    assert "question: What is the capital of France?" in plain["messages"][0]["content"]
    assert result["answer"] == result["text"] and result["text"].startswith("claude says:")


def test_fallback_in_mock_mode_on_an_unparsable_typed_field(
    plugin_config: Callable[..., Path], runtimes: Callable[..., Runtime], write: Any
) -> None:
    fixtures = write("mock.yaml", "claude:\n  Atlantis: {count: many}\n")
    runtime = runtimes(plugin_config(training=None), mode="mock", mock_responses=fixtures)
    step = {
        **QA_STEP,
        "dspy_signature": {
            "input_fields": [{"name": "question"}],
            "output_fields": [{"name": "count", "type": "int"}, {"name": "note"}],
        },
        "inputs": {"question": "How many gods in Atlantis?"},
    }
    result = runtime.run({"workflow": {"name": "w", "steps": [step]}})["answer"]
    assert result["dspy"]["fallback"] is True and result["success"] is True
    assert set(result) >= {"count", "note", "text"}  # the outputs are still there
    assert result["dspy"]["lm_calls"] == runtime.providers.get("mock_claude").calls


def test_provider_failure_fails_the_step_with_its_code_without_falling_back(
    live_env: FakeLLMServer, plugin_config: Callable[..., Path], runtimes: Callable[..., Runtime]
) -> None:
    import pytest
    from fake_llm_server import anthropic_error

    from pipeline_ex.errors import StepFailedError

    live_env.queue("anthropic", anthropic_error(401, "authentication_error", "bad key"))
    runtime = runtimes(plugin_config(training=None), mode="live")
    with pytest.raises(StepFailedError) as caught:
        runtime.run(qa_workflow())
    assert caught.value.cause_code == "provider_auth_failed"
    assert len(live_env.requests_to("anthropic")) == 1  # no fallback call
