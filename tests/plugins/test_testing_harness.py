"""pipeline_ex.testing: the scripted provider, the harness and the pytest11 fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import pytest

from pipeline_ex.errors import PluginError, StepFailedError
from pipeline_ex.plugins import MetadataDict, Plugin, PluginStatus, StepContext, StepTypeEntry
from pipeline_ex.testing import PluginHarness, ScriptedProvider, ScriptExhaustedError
from pipeline_ex.testing.harness import fresh_runtime

ROOT = Path(__file__).resolve().parents[2]
TEXT_TOOLS = ROOT / "examples" / "plugins" / "text_tools"


class Summarise:
    """A step that asks the best text_generation provider and reports what it used."""

    def execute(self, step: dict[str, Any], context: StepContext) -> dict[str, Any]:
        provider = context.providers.get(step.get("provider", "scripted"))
        reply = provider.query(f"Summarise: {step['text']}", {"max": 5})
        return {"success": True, "summary": reply["text"], "mode": context.mode}


class SummaryPlugin(Plugin):
    def get_metadata(self, state: Any) -> MetadataDict:
        return {"name": "summary", "version": "1.0", "api_version": 1}

    def get_step_types(self, state: Any) -> list[StepTypeEntry]:
        return [("summarise", Summarise)]


@pytest.fixture
def harness(tmp_path: Path) -> Any:
    runtime = fresh_runtime()
    yield PluginHarness(runtime, tmp_path)
    runtime.close()


# -- ScriptedProvider ----------------------------------------------------------------------
def test_scripted_list_answers_in_order_and_records_prompts() -> None:
    provider = ScriptedProvider(["one", {"text": "two", "cost": 0.5}], name="p")
    assert provider.query("a", {"k": 1}) == {
        "text": "one",
        "success": True,
        "cost": 0.0,
        "provider": "p",
    }
    assert provider.query("b", {})["cost"] == 0.5
    assert provider.prompts == ["a", "b"]
    assert provider.calls[0] == ("a", {"k": 1})
    assert provider.remaining == 0


def test_scripted_provider_asked_more_than_scripted_fails_with_a_code() -> None:
    provider = ScriptedProvider(["only"])
    provider.query("first", {})
    with pytest.raises(ScriptExhaustedError) as info:
        provider.query("second prompt", {})
    assert info.value.code == "script_exhausted"
    assert "got query 2 but only 1 replies" in str(info.value) and "second prompt" in str(
        info.value
    )


def test_scripted_patterns_match_substrings_then_the_star() -> None:
    provider = ScriptedProvider({"review": "LGTM", "*": "default"})
    assert provider.query("please review this", {})["text"] == "LGTM"
    assert provider.query("something else", {})["text"] == "default"
    strict = ScriptedProvider({"review": "LGTM"})
    with pytest.raises(ScriptExhaustedError, match="none of the scripted patterns 'review'"):
        strict.query("plan", {})


def test_scripted_exception_reply_is_raised() -> None:
    provider = ScriptedProvider([TimeoutError("too slow"), "then fine"])
    with pytest.raises(TimeoutError):
        provider.query("x", {})
    assert provider.query("y", {})["text"] == "then fine"


# -- PluginHarness ---------------------------------------------------------------------------
def test_harness_scripted_provider_is_owned_by_a_plugin_and_selectable(
    harness: PluginHarness,
) -> None:
    provider = harness.scripted_provider(["hi"], name="fake", capabilities=["fake_cap", "x"])
    runtime = harness.runtime
    assert runtime.providers.get("fake").target is provider  # behind the guarded handle
    assert runtime.providers.capabilities("fake") == {"fake_cap", "x"}
    assert runtime.providers.select(["fake_cap"]).target is provider
    assert runtime.plugins.get_plugin("scripted_fake").status == PluginStatus.ACTIVE
    runtime.plugins.unload_plugin("scripted_fake")
    assert "fake" not in runtime.providers


def test_harness_loads_a_plugin_under_its_own_name(harness: PluginHarness) -> None:
    record = harness.load_plugin(SummaryPlugin)
    assert record.name == "summary" and record.status == PluginStatus.ACTIVE
    assert "summarise" in harness.runtime.steps


def test_harness_loads_a_module_style_plugin_and_passes_config(harness: PluginHarness) -> None:
    module = types.ModuleType("inline_plugin")
    exec(
        textwrap.dedent(
            """
            def init(config):
                return dict(config)

            def get_metadata(state):
                return {"name": "inline", "version": "2.0"}
            """
        ),
        module.__dict__,
    )
    record = harness.load_plugin(module, {"x": 1})
    assert record.name == "inline" and record.state == {"x": 1}


def test_harness_refusal_is_the_managers_plugin_error(harness: PluginHarness) -> None:
    class Liar(SummaryPlugin):
        def get_metadata(self, state: Any) -> MetadataDict:
            return {"name": "summary", "version": "not a version"}

    with pytest.raises(PluginError) as info:
        harness.load_plugin(Liar)
    assert info.value.code == "validation_failed"
    with pytest.raises(TypeError, match="needs name="):
        harness.load_plugin("some.module:Plugin")


def test_harness_step_context_is_the_engines_context(harness: PluginHarness) -> None:
    context = harness.step_context(
        results={"draft": {"text": "hello"}},
        variables={"n": 2},
        inputs={"topic": "t"},
        workflow={"custom": {"k": True}},
        loop={"item": 7},
    )
    assert context.lookup("steps.draft.text") == "hello"
    assert context.lookup("state.n") == 2 and context.lookup("inputs.topic") == "t"
    assert context.workflow["custom"] == {"k": True} and context.loop["item"] == 7
    assert context.mode == "mock" and context.base_dir == harness.base_dir
    assert "mock_claude" in context.providers
    assert context.check_condition("state.n > 1")
    seeded = harness.step_context(workflow={"variables": {"v": 1}})
    assert seeded.variables["v"] == 1


def test_harness_run_step_templates_and_records_the_prompt(harness: PluginHarness) -> None:
    harness.load_plugin(SummaryPlugin)
    scripted = harness.scripted_provider(["short"])
    result = harness.run_step(
        {"type": "summarise", "text": "{{steps.draft.text}}"},
        results={"draft": {"text": "a long text"}},
    )
    assert result == {"success": True, "summary": "short", "mode": "mock"}
    assert scripted.prompts == ["Summarise: a long text"]
    assert scripted.calls[0][1] == {"max": 5}


def test_harness_run_step_failure_raises_step_failed(harness: PluginHarness) -> None:
    harness.load_plugin(SummaryPlugin)
    harness.scripted_provider([])
    with pytest.raises(StepFailedError) as info:
        harness.run_step({"type": "summarise", "text": "x"})
    assert info.value.cause_code == "script_exhausted"
    assert "step_under_test" in str(info.value)
    with pytest.raises(TypeError, match="either a context"):
        harness.run_step({"type": "summarise"}, harness.step_context(), mode="live")


def test_harness_run_workflow_accepts_steps_or_a_workflow(harness: PluginHarness) -> None:
    harness.load_plugin(SummaryPlugin)
    scripted = harness.scripted_provider({"*": "ok"})
    steps = [
        {"name": "a", "type": "set_variable", "variables": {"topic": "plugins"}},
        {"name": "b", "type": "summarise", "text": "{{state.topic}} {{inputs.who}}"},
    ]
    results = harness.run_workflow(steps, inputs={"who": "me"})
    assert results["b"]["summary"] == "ok"
    assert scripted.prompts == ["Summarise: plugins me"]
    again = harness.run_workflow({"workflow": {"name": "w", "steps": steps[:1]}})
    assert list(again) == ["a"]


# -- the pytest plugin ---------------------------------------------------------------------
def _pytest(
    args: list[str], cwd: Path, tmp_path: Path, pythonpath: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PIPELINE_EX_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONPATH": os.pathsep.join(p for p in (pythonpath, str(ROOT / "src")) if p),
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )


@pytest.mark.slow  # a pytest session in a subprocess
def test_fixtures_reach_any_pytest_session_through_the_pytest11_entry_point(
    tmp_path: Path,
) -> None:
    """No conftest, no import of pipeline_ex.testing: the entry point alone provides them."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_mine.py").write_text(
        textwrap.dedent(
            """
            def test_fixtures(pipeline_ex_runtime, pipeline_ex_run_workflow,
                              pipeline_ex_scripted_provider, pipeline_ex_step_context):
                scripted = pipeline_ex_scripted_provider(["x"], name="s")
                assert pipeline_ex_step_context().providers.get("s").target is scripted
                out = pipeline_ex_run_workflow([{"name": "e", "type": "test_echo",
                                                 "value": 1}])
                assert "e" in out and "s" in pipeline_ex_runtime.providers
            """
        )
    )
    out = _pytest([], project, tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed" in out.stdout


@pytest.mark.slow  # a pytest session in a subprocess
def test_example_plugins_own_test_suite_passes(tmp_path: Path) -> None:
    """examples/plugins/text_tools/tests, run as its author would (from its own folder)."""
    out = _pytest(["tests"], TEXT_TOOLS, tmp_path, pythonpath=str(TEXT_TOOLS / "src"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert " passed" in out.stdout and "failed" not in out.stdout


def test_fresh_runtime_ignores_the_developers_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PIPELINE_EX_MODE", "live")
    monkeypatch.setenv("PIPELINE_EX_PLUGINS", str(tmp_path / "missing.yaml"))
    runtime = fresh_runtime()
    try:
        assert runtime.mode == "mock" and runtime.load_report.ok
        assert runtime.plugin_config is not None and runtime.plugin_config.specs == []
    finally:
        runtime.close()
