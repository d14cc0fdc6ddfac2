"""executor.py and the built-in step types, run end to end in mock mode."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from wf_helpers import RecordingProvider

from pipeline_ex import Runtime
from pipeline_ex.builtin.providers.mock import load_response_file
from pipeline_ex.errors import InvalidInputError, StepFailedError
from waiting import PATIENCE

Run = Callable[..., dict[str, Any]]
Wf = Callable[..., dict[str, Any]]


def echo(name: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    step: dict[str, Any] = {"name": name, "type": "test_echo", **extra}
    if value is not None:
        step["value"] = value
    return step


def claude(name: str, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": "claude",
        "prompt": [{"type": "static", "content": text}],
        **extra,
    }


class TestFailures:
    def test_first_failing_step_stops_the_run(
        self, run: Run, wf: Wf, recorders: dict[str, RecordingProvider]
    ) -> None:
        with pytest.raises(StepFailedError) as info:
            run(wf(echo("one", 1), echo("two", error_message="it broke"), claude("three", "x")))
        error = info.value
        assert error.code == "step_failed"
        assert error.step_name == "two" and error.step_type == "test_echo"
        assert "step 'two' (type 'test_echo') failed: it broke" in str(error)
        assert error.results["one"] == 1
        assert "three" not in error.results
        assert recorders["claude"].calls == []

    def test_provider_reply_with_success_false_fails_the_step(
        self, run: Run, wf: Wf, runtime: Runtime
    ) -> None:
        runtime.providers["mock_gemini"].set_response_pattern(
            "refuse", {"success": False, "error": "quota exhausted", "text": ""}
        )
        with pytest.raises(StepFailedError) as info:
            run(
                wf(
                    {
                        "name": "g",
                        "type": "gemini",
                        "prompt": [{"type": "static", "content": "please refuse"}],
                    }
                )
            )
        assert info.value.step_type == "gemini"
        assert "quota exhausted" in info.value.reason

    def test_a_crashing_step_type_is_a_step_failure(
        self, run: Run, wf: Wf, runtime: Runtime
    ) -> None:
        class Crashes:
            def execute(self, step: dict[str, Any], context: Any) -> Any:
                raise ZeroDivisionError("inside plugin code")

        runtime.steps.register_batch({"crashes": Crashes()}, "test")
        with pytest.raises(StepFailedError) as info:
            run(wf({"name": "c", "type": "crashes"}))
        assert info.value.step_type == "crashes"
        assert info.value.cause_code == "crashed"
        assert "ZeroDivisionError: inside plugin code" in info.value.reason

    def test_inner_loop_failure_names_the_inner_step(self, run: Run, wf: Wf) -> None:
        with pytest.raises(StepFailedError) as info:
            run(
                wf(
                    echo("before", 0),
                    {
                        "name": "loop",
                        "type": "for_loop",
                        "iterator": "x",
                        "data_source": [1, 2],
                        "steps": [echo("inner", error_message="inner {{loop.x}} failed")],
                    },
                )
            )
        assert info.value.step_name == "inner"
        assert info.value.reason == "inner 1 failed"
        assert info.value.results["before"] == 0

    def test_condition_that_cannot_be_evaluated(self, run: Run, wf: Wf) -> None:
        with pytest.raises(StepFailedError) as info:
            run(wf(echo("a", "text"), echo("b", 1, condition="-a > 1")))
        assert info.value.step_name == "b"
        assert info.value.cause_code == "condition_error"

    def test_while_condition_that_cannot_be_evaluated(self, run: Run, wf: Wf) -> None:
        with pytest.raises(StepFailedError) as info:
            run(
                wf(
                    {
                        "name": "w",
                        "type": "while_loop",
                        "condition": "missing + 1 > 2",
                        "steps": [echo("x", 1)],
                    }
                )
            )
        assert info.value.step_type == "while_loop"
        assert info.value.cause_code == "condition_error"

    def test_unknown_mode(self, runtime: Runtime, wf: Wf) -> None:
        with pytest.raises(InvalidInputError, match="unknown mode"):
            runtime.run(wf(echo("a", 1)), mode="turbo")


class TestOutputToFile:
    def test_writes_json_and_text_under_output_dir(
        self, runtime: Runtime, wf: Wf, tmp_path: Path
    ) -> None:
        out = tmp_path / "out"
        runtime.run(
            wf(
                echo("data", {"k": [1, "é"]}, output_to_file="data.json"),
                echo("text", "plain words", output_to_file="nested/dir/text.md"),
                claude("ai", "hello", output_to_file="ai_{{inputs.tag}}.json"),
            ),
            output_dir=out,
            inputs={"tag": "v1"},
        )
        assert json.loads((out / "data.json").read_text(encoding="utf-8")) == {"k": [1, "é"]}
        assert (out / "nested" / "dir" / "text.md").read_text() == "plain words"
        written = json.loads((out / "ai_v1.json").read_text())
        assert written["text"] == "Mock response for: hello"
        assert not [p for p in out.rglob("*.tmp")]

    def test_output_dir_from_the_workflow(
        self, runtime: Runtime, wf: Wf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        runtime.run(wf(echo("a", "x", output_to_file="a.txt"), output_dir="results"))
        assert (tmp_path / "results" / "a.txt").read_text() == "x"

    @pytest.mark.parametrize(
        "target",
        ["../escape.txt", "a/../../escape.txt", "/tmp/pipeline-ex-escape.txt", "{{inputs.evil}}"],
    )
    def test_paths_escaping_output_dir_are_refused(
        self, runtime: Runtime, wf: Wf, tmp_path: Path, target: str
    ) -> None:
        out = tmp_path / "out"
        with pytest.raises(StepFailedError) as info:
            runtime.run(
                wf(echo("a", "x", output_to_file=target)),
                output_dir=out,
                inputs={"evil": "../../escape.txt"},
            )
        assert info.value.step_name == "a"
        assert "escapes" in info.value.reason
        assert not (tmp_path / "escape.txt").exists()
        assert not Path("/tmp/pipeline-ex-escape.txt").exists()


def loop(data_source: Any, **extra: Any) -> dict[str, Any]:
    return {
        "name": "loop",
        "type": "for_loop",
        "iterator": "item",
        "data_source": data_source,
        "steps": [echo("seen", "{{loop.item}}@{{loop.index}}")],
        **extra,
    }


def seen(results: Mapping[str, Any]) -> list[Any]:
    return [iteration["seen"] for iteration in results["loop"]["iterations"]]


class TestForLoop:
    def test_step_field_path(self, run: Run, wf: Wf) -> None:
        results = run(wf(echo("src", {"data": {"names": ["a", "b"]}}), loop("src:data.names")))
        assert seen(results) == ["a@0", "b@1"]
        assert results["loop"]["count"] == 2
        assert results["loop"]["success"] is True

    def test_previous_response_field(self, run: Run, wf: Wf) -> None:
        results = run(
            wf(
                echo("other", {"items": ["no"]}),
                echo("src", {"items": ["x", "y"]}),
                loop("previous_response:items"),
            )
        )
        assert seen(results) == ["x@0", "y@1"]

    def test_bare_previous_response(self, run: Run, wf: Wf) -> None:
        results = run(wf(echo("src", ["m", "n"]), loop("previous_response")))
        assert seen(results) == ["m@0", "n@1"]

    def test_variable_name(self, run: Run, wf: Wf) -> None:
        results = run(
            wf(
                {
                    "name": "set",
                    "type": "set_variable",
                    "variables": {"topics": ["t1", "t2", "t3"]},
                },
                loop("topics"),
            )
        )
        assert seen(results) == ["t1@0", "t2@1", "t3@2"]

    def test_template_resolving_to_a_list(self, run: Run, wf: Wf) -> None:
        results = run(wf(echo("src", {"xs": [1, 2]}), loop("{{steps.src.xs}}")))
        assert seen(results) == ["1@0", "2@1"]
        results = run(wf(loop("{{inputs.things}}")), inputs={"things": ["p", "q"]})
        assert seen(results) == ["p@0", "q@1"]

    def test_literal_list(self, run: Run, wf: Wf) -> None:
        results = run(wf(loop([{"id": 1}, {"id": 2}])))
        assert [i["seen"] for i in results["loop"]["iterations"]] == ['{"id": 1}@0', '{"id": 2}@1']

    def test_empty_list_runs_nothing(self, run: Run, wf: Wf) -> None:
        assert run(wf(loop([])))["loop"] == {"success": True, "iterations": [], "count": 0}

    @pytest.mark.parametrize(
        ("source", "message"),
        [
            ("src:missing.path", "does not resolve"),
            ("ghost:items", "no result for step 'ghost'"),
            ("src:text", "not a list"),
            ("nothing_by_that_name", "does not resolve"),
            (5, "must be a list or a reference"),
        ],
    )
    def test_bad_sources_fail_the_loop(self, run: Run, wf: Wf, source: Any, message: str) -> None:
        with pytest.raises(StepFailedError) as info:
            run(wf(echo("src", {"text": "abc"}), loop(source)))
        assert info.value.step_name == "loop"
        assert info.value.step_type == "for_loop"
        assert message in info.value.reason

    def test_iteration_results_stay_inside_the_loop(self, run: Run, wf: Wf) -> None:
        results = run(wf(loop([1]), echo("after", "{{steps.seen}}")))
        assert "seen" not in results
        assert results["after"] == "{{steps.seen}}"

    def test_nested_loops_see_their_parent(self, run: Run, wf: Wf) -> None:
        results = run(
            wf(
                {
                    "name": "outer",
                    "type": "for_loop",
                    "iterator": "row",
                    "data_source": ["a", "b"],
                    "steps": [
                        {
                            "name": "inner",
                            "type": "for_loop",
                            "iterator": "col",
                            "data_source": [1, 2],
                            "steps": [echo("cell", "{{loop.parent.row}}{{loop.col}}")],
                        }
                    ],
                }
            )
        )
        cells = [
            [c["cell"] for c in it["inner"]["iterations"]] for it in results["outer"]["iterations"]
        ]
        assert cells == [["a1", "a2"], ["b1", "b2"]]

    def test_parallel_respects_max_parallel_and_keeps_order(
        self, run: Run, wf: Wf, runtime: Runtime
    ) -> None:
        lock = threading.Lock()
        active = peak = 0
        overlapped = threading.Event()  # two iterations ran at once: parallel, on any machine

        class Slow:
            def execute(self, step: dict[str, Any], context: Any) -> Any:
                nonlocal active, peak
                with lock:
                    active += 1
                    peak = max(peak, active)
                    if active >= 2:
                        overlapped.set()
                if not overlapped.wait(PATIENCE):  # sequential iterations wait here in vain,
                    overlapped.set()  # once: the assertion below then says so
                time.sleep(0.03)  # a chance for a fourth to start if the cap were broken
                with lock:
                    active -= 1
                return step["value"]

        runtime.steps.register_batch({"slow": Slow()}, "test")
        results = run(
            wf(
                {
                    "name": "loop",
                    "type": "for_loop",
                    "iterator": "n",
                    "data_source": list(range(8)),
                    "parallel": True,
                    "max_parallel": 3,
                    "steps": [{"name": "seen", "type": "slow", "value": "{{loop.n}}"}],
                }
            )
        )
        assert [it["seen"] for it in results["loop"]["iterations"]] == list(range(8))
        assert 2 <= peak <= 3

    def test_parallel_threads_are_capped(self, run: Run, wf: Wf, runtime: Runtime) -> None:
        lock = threading.Lock()
        active = peak = 0

        class Slow:
            def execute(self, step: dict[str, Any], context: Any) -> Any:
                nonlocal active, peak
                with lock:
                    active += 1
                    peak = max(peak, active)
                time.sleep(0.02)
                with lock:
                    active -= 1
                return None

        runtime.steps.register_batch({"slow": Slow()}, "test")
        results = run(
            wf(
                {
                    "name": "loop",
                    "type": "for_loop",
                    "iterator": "n",
                    "data_source": list(range(40)),
                    "parallel": True,
                    "max_parallel": 100_000,
                    "steps": [{"name": "s", "type": "slow"}],
                }
            )
        )
        assert results["loop"]["count"] == 40
        assert peak <= 32


class TestWhileLoop:
    def test_runs_until_the_condition_is_false(self, run: Run, wf: Wf) -> None:
        results = run(
            wf(
                {"name": "init", "type": "set_variable", "variables": {"i": 0}},
                {
                    "name": "w",
                    "type": "while_loop",
                    "condition": "state.i < 3",
                    "max_iterations": 10,
                    "steps": [
                        {
                            "name": "inc",
                            "type": "set_variable",
                            "variables": {"i": "{{state.i + 1}}"},
                        }
                    ],
                },
                echo("after", "{{state.i}}"),
            )
        )
        assert results["w"]["count"] == 3
        assert results["w"]["exit_reason"] == "condition_false"
        assert results["w"]["max_iterations_reached"] is False
        assert results["after"] == 3

    def test_stops_at_max_iterations(self, run: Run, wf: Wf) -> None:
        results = run(
            wf(
                {
                    "name": "w",
                    "type": "while_loop",
                    "condition": "true",
                    "max_iterations": 4,
                    "steps": [echo("x", "{{loop.iteration}}")],
                }
            )
        )
        assert results["w"]["count"] == 4
        assert [it["x"] for it in results["w"]["iterations"]] == [0, 1, 2, 3]
        assert results["w"]["exit_reason"] == "max_iterations"
        assert results["w"]["max_iterations_reached"] is True
        assert results["w"]["success"] is True

    def test_max_iterations_is_capped_like_pipeline_ex(self, run: Run, wf: Wf) -> None:
        results = run(
            wf(
                {
                    "name": "w",
                    "type": "while_loop",
                    "condition": "true",
                    "max_iterations": 1_000_000,
                    "steps": [echo("x", 1)],
                }
            )
        )
        assert results["w"]["count"] == 1000

    def test_default_limit(self, run: Run, wf: Wf) -> None:
        results = run(
            wf({"name": "w", "type": "while_loop", "condition": "true", "steps": [echo("x", 1)]})
        )
        assert results["w"]["count"] == 100


class TestSetVariable:
    def test_scopes(self, run: Run, wf: Wf) -> None:
        results = run(
            wf(
                {"name": "init", "type": "set_variable", "variables": {"g": "global", "n": 1}},
                {
                    "name": "loop",
                    "type": "for_loop",
                    "iterator": "x",
                    "data_source": [1, 2],
                    "steps": [
                        {
                            "name": "in_loop",
                            "type": "set_variable",
                            "scope": "loop",
                            "variables": {"local": "{{loop.x}}"},
                        },
                        {
                            "name": "in_global",
                            "type": "set_variable",
                            "variables": {"n": "{{state.n + loop.x}}"},
                        },
                        echo("reads", "{{state.local}}/{{state.g}}"),
                    ],
                },
                echo("after", "{{state.local}}|{{state.n}}|{{state.g}}"),
            )
        )
        assert [it["reads"] for it in results["loop"]["iterations"]] == ["1/global", "2/global"]
        assert results["after"] == "{{state.local}}|4|global"
        assert results["init"] == {
            "success": True,
            "variables": {"g": "global", "n": 1},
            "scope": "global",
        }

    def test_workflow_variables_and_bare_names(self, run: Run, wf: Wf) -> None:
        results = run(
            wf(
                echo("a", "{{state.start}}"),
                echo("b", 1, condition="start > 5"),
                variables={"start": 7},
            )
        )
        assert results["a"] == 7
        assert results["b"] == 1

    def test_variables_are_per_run(self, runtime: Runtime, wf: Wf, tmp_path: Path) -> None:
        document = wf(
            echo("before", "{{state.x}}"),
            {"name": "set", "type": "set_variable", "variables": {"x": 1}},
        )
        for _ in range(2):
            assert runtime.run(document, output_dir=tmp_path)["before"] == "{{state.x}}"


class TestProviderSteps:
    def test_default_mock_reply(self, run: Run, wf: Wf) -> None:
        prompt = "A prompt that is clearly longer than fifty characters, by some way."
        results = run(
            wf(
                claude("c", prompt),
                {"name": "g", "type": "gemini", "prompt": [{"type": "static", "content": "hi"}]},
            )
        )
        assert results["c"]["text"] == f"Mock response for: {prompt[:50]}"
        assert results["c"]["success"] is True
        assert results["c"]["cost"] == 0.0
        assert results["c"]["provider"] == "mock_claude"
        assert results["g"]["text"] == "Mock response for: hi"
        assert results["g"]["provider"] == "mock_gemini"

    def test_patterns_set_from_tests(self, run: Run, wf: Wf, runtime: Runtime) -> None:
        mock = runtime.providers["mock_claude"]
        mock.set_response_pattern("weather", "Sunny.")
        mock.set_response_pattern("re:^Count \\d+$", {"text": "counted", "tokens": 3})
        results = run(
            wf(
                claude("a", "What is the weather?"),
                claude("b", "Count 12"),
                claude("c", "Count twelve"),
            )
        )
        assert results["a"]["text"] == "Sunny."
        assert results["b"]["text"] == "counted" and results["b"]["tokens"] == 3
        assert results["c"]["text"] == "Mock response for: Count twelve"

    def test_patterns_from_a_fixture_file(self, tmp_path: Path, wf: Wf) -> None:
        fixture = tmp_path / "mock.yaml"
        fixture.write_text(
            "claude:\n  review: 'Claude says: fine'\n"
            "gemini:\n  review:\n    text: 'Gemini says: fine'\n    score: 8\n"
            "'*':\n  '*': anything else\n"
        )
        with Runtime(mock_responses=fixture) as rt:
            results = rt.run(
                wf(
                    claude("c", "please review"),
                    {
                        "name": "g",
                        "type": "gemini",
                        "prompt": [{"type": "static", "content": "please review"}],
                    },
                    claude("other", "unrelated"),
                ),
                output_dir=tmp_path,
            )
        assert results["c"]["text"] == "Claude says: fine"
        assert results["g"]["text"] == "Gemini says: fine"
        assert results["g"]["score"] == 8
        assert results["other"]["text"] == "anything else"

    @pytest.mark.parametrize(
        "text",
        [
            "- a list\n",
            "gpt:\n  x: y\n",
            "claude: [1]\n",
            "claude:\n  x: 3\n",
            "claude: !!python/name:os.system\n",
        ],
    )
    def test_bad_fixture_files_are_invalid_input(self, tmp_path: Path, text: str) -> None:
        fixture = tmp_path / "mock.yaml"
        fixture.write_text(text)
        with pytest.raises(InvalidInputError):
            load_response_file(fixture)

    def test_mock_is_deterministic_and_reset(self, runtime: Runtime) -> None:
        mock = runtime.providers["mock_claude"]
        first = mock.query("same prompt", {})
        assert mock.query("same prompt", {}) == first
        mock.set_response_pattern("same", "patterned")
        assert mock.query("same prompt", {})["text"] == "patterned"
        mock.reset()
        assert mock.query("same prompt", {}) == first

    def test_unknown_options_are_passed_on(
        self, run: Run, wf: Wf, recorders: dict[str, RecordingProvider]
    ) -> None:
        run(
            wf(
                claude(
                    "c",
                    "x",
                    claude_options={"max_turns": 3, "brand_new_option": {"a": 1}, "model": "opus"},
                ),
                {
                    "name": "g",
                    "type": "gemini",
                    "model": "gemini-2.5-pro",
                    "token_budget": {"m": 9},
                    "gemini_options": {"unknown_gemini_key": True},
                    "prompt": [{"type": "static", "content": "y"}],
                },
            )
        )
        options = recorders["claude"].calls[0][1]
        assert options["max_turns"] == 3
        assert options["brand_new_option"] == {"a": 1}
        assert options["model"] == "opus"
        gemini_options = recorders["gemini"].calls[0][1]
        assert gemini_options["unknown_gemini_key"] is True
        assert gemini_options["model"] == "gemini-2.5-pro"
        assert gemini_options["token_budget"] == {"m": 9}

    def test_parallel_claude(self, run: Run, wf: Wf, runtime: Runtime) -> None:
        runtime.providers["mock_claude"].set_response_pattern("task two", "second answer")
        results = run(
            wf(
                {
                    "name": "fan",
                    "type": "parallel_claude",
                    "parallel_tasks": [
                        {"id": "one", "prompt": [{"type": "static", "content": "task one"}]},
                        {
                            "id": "two",
                            "prompt": [{"type": "static", "content": "task two"}],
                            "claude_options": {"max_turns": 1},
                        },
                        {"id": 3, "prompt": [{"type": "static", "content": "task {{inputs.n}}"}]},
                    ],
                }
            ),
            inputs={"n": "three"},
        )
        fan = results["fan"]
        assert fan["success"] is True
        assert set(fan["results"]) == {"one", "two", "3"}
        assert fan["results"]["one"]["text"] == "Mock response for: task one"
        assert fan["results"]["two"]["text"] == "second answer"
        assert fan["results"]["3"]["text"] == "Mock response for: task three"
        assert "[two]\nsecond answer" in fan["text"]

    def test_parallel_claude_failure(self, run: Run, wf: Wf, runtime: Runtime) -> None:
        runtime.providers["mock_claude"].set_response_pattern(
            "bad", {"success": False, "error": "nope"}
        )
        with pytest.raises(StepFailedError) as info:
            run(
                wf(
                    {
                        "name": "fan",
                        "type": "parallel_claude",
                        "parallel_tasks": [
                            {"id": "ok", "prompt": [{"type": "static", "content": "good"}]},
                            {"id": "ko", "prompt": [{"type": "static", "content": "bad"}]},
                        ],
                    }
                )
            )
        assert info.value.step_type == "parallel_claude"
        assert "ko: nope" in info.value.reason


class TestEchoAndEvents:
    def test_echo_returns_its_value_after_templates(self, run: Run, wf: Wf) -> None:
        results = run(wf(echo("a", {"list": [1, "{{inputs.x}}"]}), echo("none")), inputs={"x": 2})
        assert results == {"a": {"list": [1, 2]}, "none": None}

    def test_events(self, runtime: Runtime, wf: Wf, tmp_path: Path) -> None:
        events: list[tuple[str, str]] = []
        runtime.run(
            wf(echo("a", 1), echo("b", 1, condition=False)),
            output_dir=tmp_path,
            on_event=lambda kind, data: events.append((kind, data["name"])),
        )
        assert events == [("step_started", "a"), ("step_finished", "a"), ("step_skipped", "b")]
