"""Built-in plugin ``core_steps``: the step types of pipeline_ex's workflow format."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline_ex.builtin.steps.ai import ClaudeStep, GeminiStep, ParallelClaudeStep
from pipeline_ex.builtin.steps.echo import TestEchoStep
from pipeline_ex.builtin.steps.loops import ForLoopStep, WhileLoopStep
from pipeline_ex.builtin.steps.variables import SetVariableStep
from pipeline_ex.plugins.behaviour import Plugin, StepTypes


class CoreStepsPlugin(Plugin):
    def get_metadata(self, state: Any) -> Mapping[str, Any]:
        return {
            "name": "core_steps",
            "version": "1.0.0",
            "api_version": 1,
            "description": "claude, gemini, parallel_claude, set_variable, loops, test_echo",
            "capabilities": ["step_types"],
        }

    def get_step_types(self, state: Any) -> StepTypes:
        return [
            ("claude", ClaudeStep),
            ("gemini", GeminiStep),
            ("parallel_claude", ParallelClaudeStep),
            ("set_variable", SetVariableStep),
            ("for_loop", ForLoopStep),
            ("while_loop", WhileLoopStep),
            ("test_echo", TestEchoStep),
        ]
