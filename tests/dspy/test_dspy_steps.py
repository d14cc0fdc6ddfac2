"""The dspy_claude / dspy_gemini / dspy_chain steps in mock mode, signatures and schema."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dspy_helpers import QA_STEP, qa_workflow

from pipeline_ex import Runtime
from pipeline_ex.contrib.dspy.signatures import SignatureError, build_signature, parse_signature
from pipeline_ex.errors import SchemaValidationError, StepFailedError, WorkflowSemanticError


def test_signature_is_built_with_types_descriptions_and_instructions() -> None:
    spec = parse_signature(
        {
            "instructions": "Count things.",
            "input_fields": [{"name": "text", "type": "string", "description": "what to read"}],
            "output_fields": [
                {"name": "count", "type": "integer"},
                {"name": "items", "type": "list[str]"},
            ],
        }
    )
    signature = build_signature(spec)
    assert list(signature.input_fields) == ["text"]
    assert list(signature.output_fields) == ["count", "items"]
    assert signature.output_fields["count"].annotation is int
    assert signature.input_fields["text"].json_schema_extra["desc"] == "what to read"
    assert signature.instructions == "Count things."


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"output_fields": [{"name": "a"}]}, "dspy_signature.input_fields must be a non-empty"),
        (
            {"input_fields": [{"name": "q"}], "output_fields": [{"name": "q"}]},
            "dspy_signature.output_fields[0].name 'q' is used twice",
        ),
        (
            {"input_fields": [{"name": "q", "type": "tensor"}], "output_fields": [{"name": "a"}]},
            "dspy_signature.input_fields[0].type 'tensor' is not supported",
        ),
        (
            {"input_fields": [{"name": "2q"}], "output_fields": [{"name": "a"}]},
            "dspy_signature.input_fields[0].name must be a Python identifier",
        ),
        (
            {"input_fields": [{"name": "q"}], "output_fields": [{"name": "reasoning"}]},
            "'reasoning' is reserved by DSPy",
        ),
        (
            {"input_fields": [{"name": "q", "desc": "x"}], "output_fields": [{"name": "a"}]},
            "dspy_signature.input_fields[0] has unknown key(s) 'desc'",
        ),
    ],
)
def test_bad_signature_is_a_typed_error_naming_the_field(raw: Any, expected: str) -> None:
    with pytest.raises(SignatureError) as caught:
        parse_signature(raw)
    assert caught.value.code == "dspy_signature_invalid"
    assert expected in caught.value.message


def test_schema_extension_reports_bad_dspy_keys_with_path(
    plugin_config: Callable[..., Path], runtimes: Callable[..., Runtime], write: Any
) -> None:
    runtime = runtimes(plugin_config())
    workflow = write(
        "wf.yaml",
        """
        workflow:
          name: w
          steps:
            - name: answer
              type: dspy_claude
              dspy_signature:
                input_fields: [{name: q, type: tensor}]
                output_fields: [{name: a}]
              dspy_config: {module: react}
              inputs: {q: hi}
        """,
    )
    with pytest.raises(SchemaValidationError) as caught:
        runtime.validate(workflow)
    text = caught.value.message
    assert "wf.yaml:7 at workflow.steps[0].dspy_signature.input_fields[0].type" in text
    assert "workflow.steps[0].dspy_config.module" in text


def test_semantic_check_reports_missing_and_unknown_inputs(
    plugin_config: Callable[..., Path], runtimes: Callable[..., Runtime]
) -> None:
    runtime = runtimes(plugin_config())
    with pytest.raises(WorkflowSemanticError) as caught:
        runtime.validate(qa_workflow(inputs={"questoin": "x"}))
    assert "no value for input field 'question'" in caught.value.message
    assert "'questoin' is not an input field" in caught.value.message


def test_mock_run_compiles_then_hits_the_cache(
    plugin_config: Callable[..., Path], runtimes: Callable[..., Runtime]
) -> None:
    config = plugin_config()
    first = runtimes(config).run(qa_workflow())["answer"]
    assert first["success"] and first["answer"] == "Paris" and first["text"] == "Paris"
    assert first["dspy"]["optimized"] and not first["dspy"]["cache_hit"]
    assert first["dspy"]["optimizer"] == "BootstrapFewShot"
    assert first["dspy"]["num_demos"] == 2
    assert first["dspy"]["lm_calls"] > 1  # the bootstrap traces, then the prediction
    assert first["dspy"]["fallback"] is False
    second_runtime = runtimes(config)
    mock = second_runtime.providers.get("mock_claude")
    before = mock.calls
    second = second_runtime.run(qa_workflow())["answer"]
    assert second["dspy"]["cache_hit"] and second["dspy"]["optimized"]
    assert second["dspy"]["num_demos"] == 2
    assert second["dspy"]["lm_calls"] == 1 == mock.calls - before  # counted at the provider


def test_step_inputs_take_templates_from_earlier_results(
    plugin_config: Callable[..., Path], runtimes: Callable[..., Runtime]
) -> None:
    workflow = {
        "workflow": {
            "name": "w",
            "steps": [
                {
                    "name": "ask",
                    "type": "set_variable",
                    "variables": {"q": "What is the capital of Japan?"},
                },
                {**QA_STEP, "inputs": {"question": "{{state.q}}"}},
            ],
        }
    }
    result = runtimes(plugin_config()).run(workflow)["answer"]
    assert result["answer"] == "Tokyo"


def test_unknown_input_gets_the_fixture_or_the_default_mock_answer(
    plugin_config: Callable[..., Path], runtimes: Callable[..., Runtime], write: Any
) -> None:
    fixtures = write("mock.yaml", "claude:\n  Atlantis: Poseidonia\n")
    runtime = runtimes(plugin_config(), mock_responses=fixtures)
    atlantis = runtime.run(qa_workflow(inputs={"question": "Capital of Atlantis?"}))["answer"]
    assert atlantis["answer"] == "Poseidonia"
    other = runtime.run(qa_workflow(inputs={"question": "Capital of Mu?"}))["answer"]
    assert other["answer"] == "Mock response for: Capital of Mu?"
    assert other["dspy"]["fallback"] is False


def test_no_training_data_runs_unoptimized(
    plugin_config: Callable[..., Path], runtimes: Callable[..., Runtime]
) -> None:
    result = runtimes(plugin_config(training=None)).run(qa_workflow())["answer"]
    assert result["dspy"]["optimized"] is False
    assert result["dspy"]["reason"] == "no training examples for this step"
    assert result["dspy"]["lm_calls"] == 1
    assert result["answer"] == "Mock response for: What is the capital of France?"


def test_chain_of_thought_module_and_typed_outputs(
    plugin_config: Callable[..., Path], runtimes: Callable[..., Runtime]
) -> None:
    training = "".join(
        f'{{"text": "{t}", "words": {n}, "upper": "{t.upper()}"}}\n'
        for t, n in [("a b", 2), ("a b c", 3), ("x", 1), ("one two three four", 4)]
    )
    step = {
        "name": "count",
        "type": "dspy_gemini",
        "dspy_signature": {
            "input_fields": [{"name": "text"}],
            "output_fields": [{"name": "words", "type": "int"}, {"name": "upper"}],
        },
        "dspy_config": {"module": "chain_of_thought", "few_shot_examples": 2},
        "inputs": {"text": "a b c"},
    }
    runtime = runtimes(plugin_config(training=training))
    result = runtime.run({"workflow": {"name": "w", "steps": [step]}})["count"]
    assert result["words"] == 3 and result["upper"] == "A B C"
    assert result["dspy"]["optimized"] and result["dspy"]["num_demos"] == 2
    assert '"words": 3' in result["text"]


def test_dspy_chain_feeds_outputs_to_later_links_by_field_name(
    plugin_config: Callable[..., Path], runtimes: Callable[..., Runtime]
) -> None:
    training = capitals_and_countries()
    step = {
        "name": "profile",
        "type": "dspy_chain",
        "provider": "gemini",
        "inputs": {"question": "What is the capital of Italy?"},
        "signatures": [
            {
                "name": "capital",
                "dspy_signature": {
                    "input_fields": [{"name": "question"}],
                    "output_fields": [{"name": "answer"}],
                },
            },
            {
                "name": "country",
                "dspy_signature": {
                    "input_fields": [{"name": "answer"}],
                    "output_fields": [{"name": "country"}],
                },
            },
        ],
    }
    runtime = runtimes(plugin_config(training=training))
    mock = runtime.providers.get("mock_gemini")
    result = runtime.run({"workflow": {"name": "w", "steps": [step]}})["profile"]
    assert result["success"]
    assert result["answer"] == "Rome" and result["country"] == "Italy"
    assert set(result["links"]) == {"capital", "country"}
    assert result["dspy"]["optimized"] and not result["dspy"]["fallback"]
    assert result["dspy"]["lm_calls"] == mock.calls


def capitals_and_countries() -> str:
    from dspy_helpers import capitals_jsonl

    countries = {
        "Paris": "France",
        "Tokyo": "Japan",
        "Rome": "Italy",
        "Nairobi": "Kenya",
        "Ottawa": "Canada",
        "Lima": "Peru",
    }
    lines = [
        f'{{"step": "profile.country", "answer": "{a}", "country": "{c}"}}\n'
        for a, c in countries.items()
    ]
    return capitals_jsonl() + "".join(lines)


def test_chain_link_input_that_nothing_provides_is_a_semantic_error(
    plugin_config: Callable[..., Path], runtimes: Callable[..., Runtime]
) -> None:
    step = {
        "name": "c",
        "type": "dspy_chain",
        "inputs": {"question": "q"},
        "signatures": [
            {
                "name": "one",
                "dspy_signature": {
                    "input_fields": [{"name": "topic"}],
                    "output_fields": [{"name": "answer"}],
                },
            },
        ],
    }
    with pytest.raises(WorkflowSemanticError, match="'topic' is neither a step input"):
        runtimes(plugin_config()).validate({"workflow": {"name": "w", "steps": [step]}})


def test_unimportable_metric_fails_the_step_instead_of_falling_back(
    plugin_config: Callable[..., Path], runtimes: Callable[..., Runtime]
) -> None:
    runtime = runtimes(plugin_config())
    workflow = qa_workflow(dspy_config={"metric": "no_such_module.score"})
    with pytest.raises(StepFailedError) as caught:
        runtime.run(workflow)
    assert "dspy_config.metric 'no_such_module.score' cannot be imported" in caught.value.reason
    assert caught.value.cause_code == "dspy_config_invalid"


def exact_upper(example: Any, prediction: Any, trace: Any = None) -> bool:
    """A custom metric for the tests: case-insensitive match on ``answer``."""
    return bool(str(example.answer).upper() == str(prediction.answer).upper())


def test_custom_metric_by_dotted_path_is_used_and_keyed(
    plugin_config: Callable[..., Path], runtimes: Callable[..., Runtime]
) -> None:
    runtime = runtimes(plugin_config())
    result = runtime.run(qa_workflow(dspy_config={"metric": "test_dspy_steps.exact_upper"}))
    entry = runtime.plugins.registry.get("dspy_plugin").state.store.entries()[0]
    assert entry.meta["metric"] == "test_dspy_steps.exact_upper"
    assert result["answer"]["dspy"]["optimized"]


@pytest.mark.parametrize(("mode", "optimizer"), [("mipro", "MIPROv2"), ("copro", "COPRO")])
def test_mipro_and_copro_compile_offline_through_the_mock_provider(
    plugin_config: Callable[..., Path], runtimes: Callable[..., Runtime], mode: str, optimizer: str
) -> None:
    runtime = runtimes(plugin_config(evaluation_mode=mode))
    mock = runtime.providers.get("mock_claude")
    result = runtime.run(qa_workflow())["answer"]
    assert result["answer"] == "Paris"
    assert result["dspy"]["optimizer"] == optimizer and result["dspy"]["optimized"]
    assert result["dspy"]["lm_calls"] == mock.calls > 5  # instruction proposals included
    [entry] = runtime.plugins.registry.get("dspy_plugin").state.store.entries()
    assert entry.meta["optimizer_settings"]["mode"] == mode
    again = runtime.run(qa_workflow())["answer"]["dspy"]
    assert again["cache_hit"] and again["lm_calls"] == 1


def test_steps_on_different_providers_run_in_parallel_threads_each_on_its_own_lm(
    plugin_config: Callable[..., Path], runtimes: Callable[..., Runtime]
) -> None:
    import threading

    runtime = runtimes(plugin_config())
    runtime.run(qa_workflow())  # compile the claude program first; gemini compiles its own
    runtime.run(qa_workflow(type="dspy_gemini"))
    claude, gemini = runtime.providers.get("mock_claude"), runtime.providers.get("mock_gemini")
    claude_before, gemini_before = claude.calls, gemini.calls
    questions = {
        "claude": "What is the capital of Kenya?",
        "gemini": "What is the capital of Peru?",
    }
    results: dict[str, list[dict[str, Any]]] = {"claude": [], "gemini": []}
    barrier = threading.Barrier(2)

    def work(family: str) -> None:
        barrier.wait()
        for _ in range(10):
            workflow = qa_workflow(type=f"dspy_{family}", inputs={"question": questions[family]})
            results[family].append(runtime.run(workflow)["answer"])

    threads = [threading.Thread(target=work, args=(f,)) for f in ("claude", "gemini")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [r["answer"] for r in results["claude"]] == ["Nairobi"] * 10
    assert [r["answer"] for r in results["gemini"]] == ["Lima"] * 10
    assert all(r["dspy"]["cache_hit"] and r["dspy"]["lm_calls"] == 1 for r in results["claude"])
    assert claude.calls - claude_before == 10 and gemini.calls - gemini_before == 10
