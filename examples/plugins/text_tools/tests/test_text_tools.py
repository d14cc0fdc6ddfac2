"""The example plugins' own tests, written the way a plugin author would: with the
``pipeline_ex_*`` fixtures that pytest picks up from pipeline-ex (``pipeline_ex.testing``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pipeline_ex_text_tools.shouting as shouting
import pytest
from pipeline_ex_text_tools import EchoProvider, TextToolsPlugin

from pipeline_ex.errors import PluginError, StepFailedError
from pipeline_ex.testing import PluginHarness


@pytest.fixture
def harness(pipeline_ex_harness: PluginHarness) -> PluginHarness:
    pipeline_ex_harness.load_plugin(TextToolsPlugin, {"upper": False})
    return pipeline_ex_harness


def test_word_count_counts_a_templated_text(harness: PluginHarness) -> None:
    result = harness.run_step(
        {"type": "word_count", "text": "{{steps.draft.text}}"},
        results={"draft": {"text": "three short  words"}},
    )
    assert result == {"success": True, "words": 3, "text": "three short words"}


def test_word_count_enforces_the_workflow_max_words(harness: PluginHarness) -> None:
    with pytest.raises(StepFailedError) as info:
        harness.run_step(
            {"type": "word_count", "text": "one two three"},
            workflow={"text_tools": {"max_words": 2}},
        )
    assert "3 words exceed max_words=2" in str(info.value)


def test_max_words_must_be_a_positive_integer(harness: PluginHarness) -> None:
    from pipeline_ex.errors import SchemaValidationError

    with pytest.raises(SchemaValidationError) as info:
        harness.run_workflow(
            {"text_tools": {"max_words": 0}, "steps": [{"name": "c", "type": "word_count"}]}
        )
    assert "workflow.text_tools.max_words" in str(info.value)


def test_echo_provider_follows_the_provider_contract() -> None:
    reply = EchoProvider(upper=True).query("hi", {})
    assert reply["text"] == "HI" and reply["success"] is True and reply["cost"] == 0.0


def test_upper_must_be_a_boolean(pipeline_ex_load_plugin: Callable[..., Any]) -> None:
    with pytest.raises(PluginError) as info:
        pipeline_ex_load_plugin(TextToolsPlugin, {"upper": "yes"})
    assert info.value.code == "init_failed"


def test_shout_needs_text_tools(pipeline_ex_load_plugin: Callable[..., Any]) -> None:
    with pytest.raises(PluginError) as info:
        pipeline_ex_load_plugin(shouting)
    assert info.value.code == "dependency_missing"


def test_shout_asks_an_echo_provider_and_shouts(harness: PluginHarness) -> None:
    harness.load_plugin(shouting, {"volume": 2})
    assert harness.run_step({"type": "shout", "text": "hello"})["text"] == "HELLO!!"


def test_shout_step_alone_with_a_scripted_echo_provider(
    pipeline_ex_scripted_provider: Callable[..., Any],
    pipeline_ex_step_context: Callable[..., Any],
) -> None:
    # The step unit-tested without its plugin: the scripted provider is the only one
    # offering "echo", so the step must have asked it, with the step's text as the prompt.
    scripted = pipeline_ex_scripted_provider(
        ["quiet reply"], name="fake_echo", capabilities=["echo"]
    )
    result = shouting.ShoutStep(volume=3).execute({"text": "hello"}, pipeline_ex_step_context())
    assert result["text"] == "QUIET REPLY!!!"
    assert scripted.prompts == ["hello"]
