"""``claude``, ``gemini`` and ``parallel_claude``: prompt in, provider response out.

The step picks its provider by the run's mode (``mock_claude`` in mock mode, ``claude`` in
live mode), builds the prompt from its parts and returns the provider's response mapping
unchanged.  Options pipeline_ex accepts (``claude_options``, ``model``, ``token_budget``,
...) are passed on whole, unknown keys included.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pipeline_ex.errors import PipelineExError
from pipeline_ex.interrupts import plugin_raised

OPTION_KEYS = ("model", "token_budget", "preset", "role", "functions", "output_format")
#: Threads one parallel_claude step may use, whatever ``max_parallel`` asks for.
MAX_WORKERS = 32


def _duplicate_ids(tasks: list[Any]) -> list[tuple[int, int]]:
    """``(index, index of the first task with that id)`` for each repeated id, as text."""
    first: dict[str, int] = {}
    repeated: list[tuple[int, int]] = []
    for index, task in enumerate(tasks):
        if isinstance(task, Mapping) and "id" in task:
            key = str(task["id"])
            if key in first:
                repeated.append((index, first[key]))
            first.setdefault(key, index)
    return repeated


def _options(step: Mapping[str, Any], options_key: str) -> dict[str, Any]:
    options: dict[str, Any] = dict(step.get(options_key) or {})
    for key in OPTION_KEYS:
        if key in step and key not in options:
            options[key] = step[key]
    options.setdefault("step_name", step.get("name"))
    return options


class _ProviderStep:
    family = "claude"
    options_key = "claude_options"

    def preflight(self, step: Mapping[str, Any], context: Any) -> None:
        provider = context.provider_for(self.family)
        check = getattr(provider, "preflight", None)
        if callable(check):
            check()

    def execute(self, step: dict[str, Any], context: Any) -> Any:
        prompt = context.build_prompt(step.get("prompt"))
        provider = context.provider_for(self.family)
        return provider.query(prompt, _options(step, self.options_key))


class ClaudeStep(_ProviderStep):
    family = "claude"
    options_key = "claude_options"


class GeminiStep(_ProviderStep):
    family = "gemini"
    options_key = "gemini_options"


class ParallelClaudeStep(_ProviderStep):
    """Runs each of ``parallel_tasks`` concurrently; the result maps task id -> response."""

    family = "claude"

    def semantic_check(self, step: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
        """Task ids key the result: two ids with the same text (``1`` and ``"1"``) would
        silently drop one reply and its cost."""
        tasks = step.get("parallel_tasks")
        if not isinstance(tasks, list):
            return []
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for index, other in _duplicate_ids(tasks):
            problems.append(
                (
                    ("parallel_tasks", index, "id"),
                    f"duplicate parallel task id {tasks[index]['id']!r} (same as "
                    f"parallel_tasks[{other}]; ids are compared as text)",
                )
            )
        return problems

    def execute(self, step: dict[str, Any], context: Any) -> Any:
        tasks = step["parallel_tasks"]
        duplicates = _duplicate_ids(tasks)  # ids templated into the same text at run time
        if duplicates:
            index, other = duplicates[0]
            return {
                "success": False,
                "error": f"parallel_tasks[{index}] and parallel_tasks[{other}] have the same "
                f"id {str(tasks[index]['id'])!r}",
            }
        provider = context.provider_for(self.family)
        limit = int(step.get("max_parallel") or min(len(tasks), 8))
        limit = max(1, min(limit, len(tasks), MAX_WORKERS))

        def run(task: Mapping[str, Any]) -> dict[str, Any]:
            # One task's provider error must not lose the others' answers: it becomes
            # that task's failed reply, and the step fails naming it.
            try:
                prompt = context.build_prompt(task.get("prompt"))
                return dict(provider.query(prompt, _options(task, "claude_options")))
            except PipelineExError as exc:
                error, code = exc.message, exc.code
            except BaseException as exc:  # a provider that crashed: still only this task
                if not plugin_raised(exc):  # the user's Ctrl-C stops everything
                    raise
                error, code = f"{type(exc).__name__}: {exc}", "crashed"
            return {"success": False, "error": error, "code": code, "text": "", "cost": 0.0}

        with ThreadPoolExecutor(max_workers=limit) as pool:
            responses = list(pool.map(run, tasks))
        by_id = {str(task["id"]): response for task, response in zip(tasks, responses, strict=True)}
        failed = [tid for tid, r in by_id.items() if r.get("success") is False]
        result: dict[str, Any] = {
            "success": not failed,
            "results": by_id,
            "text": "\n\n".join(f"[{tid}]\n{r.get('text', '')}" for tid, r in by_id.items()),
            "cost": sum(float(r.get("cost") or 0) for r in by_id.values()),
        }
        if failed:
            errors = "; ".join(f"{tid}: {by_id[tid].get('error')}" for tid in failed)
            result["error"] = f"parallel task(s) failed: {errors}"
        return result
