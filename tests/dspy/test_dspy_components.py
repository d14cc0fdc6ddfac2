"""Smaller parts: the mock's DSPy adapter format, the dspy_* providers, the engine, training
files, and the config folder the host hands to init."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dspy_helpers import qa_workflow

import dspy
from pipeline_ex import Runtime
from pipeline_ex.builtin.providers.mock import MockProvider, dspy_reply
from pipeline_ex.contrib.dspy.engine import ADAPTER_OPTION, ProviderEngine, make_lm
from pipeline_ex.contrib.dspy.training import TrainingDataError, load_training_data, split
from pipeline_ex.errors import ProviderConfigurationError, ProviderError
from pipeline_ex.plugins.settings import PluginSettings, settings_for

SYSTEM = (
    "Your input fields are:\n1. `question` (str): q\nYour output fields are:\n"
    "1. `answer` (str): a\n2. `score` (int): s\nAll interactions will be structured..."
)


def test_mock_answers_in_chat_format_from_the_matching_example() -> None:
    hint = {"examples": [{"question": "Q1", "answer": "A1", "score": 3}]}
    text = dspy_reply("[[ ## question ## ]]\nQ1\n\nRespond with ...", SYSTEM, hint, lambda p: None)
    assert text == "[[ ## answer ## ]]\nA1\n\n[[ ## score ## ]]\n3\n\n[[ ## completed ## ]]"


def test_mock_reads_the_last_request_after_demos_and_answers_json_when_asked() -> None:
    prompt = (
        "User:\n[[ ## question ## ]]\nQ1\n\nAssistant:\n[[ ## answer ## ]]\nA1\n\n"
        "User:\n[[ ## question ## ]]\nQ2\n\nRespond with a JSON object in the following order"
    )
    hint = {"examples": [{"question": "Q2", "answer": "A2"}]}
    text = dspy_reply(prompt, SYSTEM, hint, lambda p: None)
    assert json.loads(text or "") == {"answer": "A2", "score": 0}  # score: the int's zero


def test_mock_is_not_asked_when_the_prompt_is_not_dspy() -> None:
    assert dspy_reply("hello", "be nice", {"examples": []}, lambda p: None) is None
    provider = MockProvider("mock_claude", "claude", "mock-claude")
    reply = provider.query("hello", {ADAPTER_OPTION: {"examples": []}, "system_prompt": "x"})
    assert reply["text"] == "Mock response for: hello"


def test_engine_flattens_system_and_demos_and_counts_calls() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    class Recorder:
        def query(self, prompt: str, options: dict[str, Any]) -> dict[str, Any]:
            seen.append((prompt, options))
            return {
                "text": "[[ ## answer ## ]]\nok\n\n[[ ## completed ## ]]",
                "success": True,
                "cost": 0.25,
            }

    engine = ProviderEngine(Recorder(), "recorder", {"step_name": "s"})
    predict = dspy.Predict("question -> answer")
    predict.demos = [dspy.Example(question="q0", answer="a0")]
    with dspy.context(lm=make_lm(engine)):
        assert predict(question="q1").answer == "ok"
        assert predict(question="q1").answer == "ok"  # no DSPy cache: a second real call
    assert engine.calls == 2 and engine.cost == 0.5
    prompt, options = seen[0]
    assert options["step_name"] == "s" and "Your input fields are" in options["system_prompt"]
    assert prompt.startswith("User:\n[[ ## question ## ]]\nq0")
    assert "Assistant:\n[[ ## answer ## ]]\na0" in prompt
    assert ADAPTER_OPTION not in options


def test_engine_turns_a_failed_reply_into_a_provider_error() -> None:
    class Failing:
        def query(self, prompt: str, options: dict[str, Any]) -> dict[str, Any]:
            return {"success": False, "error": "quota", "code": "provider_rate_limited"}

    with (
        dspy.context(lm=make_lm(ProviderEngine(Failing(), "failing"))),
        pytest.raises(Exception, match="provider 'failing' failed: quota") as caught,
    ):
        dspy.Predict("question -> answer")(question="q")
    cause = caught.value.__cause__  # DSPy wraps it; the provider's error is kept as the cause
    assert isinstance(cause, ProviderError) and cause.code == "provider_rate_limited"


def test_dspy_provider_answers_through_the_base_provider(
    plugin_config: Callable[..., Path], runtimes: Callable[..., Runtime]
) -> None:
    runtime = runtimes(plugin_config())
    provider = runtime.providers.get("dspy_claude")
    base = runtime.providers.get("mock_claude")
    reply = provider.query("Say hi", {"base_provider": base, "mode": "mock"})
    assert reply["success"] and reply["text"] == "Mock response for: Say hi"
    assert reply["dspy"]["lm_calls"] == 1 and base.calls == 1
    with pytest.raises(ProviderConfigurationError, match="base_provider"):
        provider.query("Say hi", {})


def test_training_files_json_yaml_jsonl_and_step_scoping(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps([{"q": "1", "a": "x"}]))
    (tmp_path / "b.yaml").write_text("s2:\n  - {q: '2', a: y}\n")
    (tmp_path / "c.jsonl").write_text('{"q": "3", "a": "z", "step": "s3"}\n\n')
    (tmp_path / "notes.txt").write_text("ignored")
    data = load_training_data(tmp_path)
    assert data is not None and len(data.files) == 3
    assert data.examples_for("s2", ["q", "a"]) == [{"q": "1", "a": "x"}, {"q": "2", "a": "y"}]
    assert data.examples_for("s3", ["q"]) == [{"q": "1"}, {"q": "3"}]
    assert data.examples_for("s1", ["q", "missing"]) == []
    assert load_training_data(tmp_path / "nope") is None


def test_bad_training_record_names_the_file_and_place(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("- {q: 1}\n- just text\n")
    with pytest.raises(TrainingDataError, match=r"bad.yaml\[1\]: a record must be a mapping"):
        load_training_data(tmp_path)


def test_split_is_deterministic_and_stable_when_examples_are_added() -> None:
    examples = [{"i": i} for i in range(8)]
    train, held = split(examples, 0.25)
    assert len(held) == 2 and len(train) == 6
    assert split(list(reversed(examples)), 0.25)[1] == sorted(held, key=lambda e: -e["i"])
    _, held_more = split([*examples, {"i": 8}], 0.25)
    assert len(held_more) == 3 and all(e in held_more for e in held)
    assert split([{"i": 0}], 0.5) == ([{"i": 0}], [])


def test_plugin_settings_carry_the_config_folder(tmp_path: Path) -> None:
    settings = settings_for({"a": 1}, str(tmp_path / "conf" / "plugins.yaml"))
    assert settings == {"a": 1} and settings.config_dir == (tmp_path / "conf").resolve()
    assert settings.resolve_path("data") == (tmp_path / "conf").resolve() / "data"
    assert settings_for({}, "<builtin>").config_dir is None
    assert settings_for({}, None).resolve_path("x") == Path.cwd() / "x"
    assert isinstance(settings, PluginSettings) and isinstance(settings, dict)


def test_workflow_dspy_config_sets_defaults_for_its_steps(
    plugin_config: Callable[..., Path], runtimes: Callable[..., Runtime]
) -> None:
    workflow = qa_workflow(dspy_config={})
    workflow["workflow"]["dspy_config"] = {"few_shot_examples": 1, "module": "chain_of_thought"}
    runtime = runtimes(plugin_config())
    result = runtime.run(workflow)["answer"]
    assert result["dspy"]["num_demos"] == 1
    [entry] = runtime.plugins.registry.get("dspy_plugin").state.store.entries()
    assert entry.meta["module"] == "chain_of_thought"
