"""``for_loop`` and ``while_loop``: run nested steps through the engine's own dispatch.

A loop's body is not interpolated up front (``raw_keys``): each iteration gets a child
context with ``loop.<iterator>``, ``loop.index`` (and ``loop.parent`` when nested) and
its steps are templated when they run.
"""

from __future__ import annotations

from typing import Any

DEFAULT_MAX_ITERATIONS = 100
#: Threads one parallel loop may use, whatever ``max_parallel`` asks for (the run's
#: shared thread allowance bounds all parallel sections together).
MAX_WORKERS = 32
#: pipeline_ex's ceiling: a larger ``max_iterations`` is lowered to this.
MAX_ITERATIONS_LIMIT = 1000


class ForLoopStep:
    raw_keys = frozenset({"steps"})

    def semantic_check(self, step: dict[str, Any]) -> list[tuple[tuple[str, ...], str]]:
        problems: list[tuple[tuple[str, ...], str]] = []
        for key in ("iterator", "data_source", "steps"):
            if key not in step:
                problems.append(((), f"for_loop needs {key!r}"))
        return problems

    def execute(self, step: dict[str, Any], context: Any) -> Any:
        items = context.resolve_data_source(step["data_source"])
        iterator = step["iterator"]
        body = step["steps"]
        path = f"{step['name']}.steps"

        def one(index_item: tuple[int, Any]) -> dict[str, Any]:
            index, item = index_item
            child = context.child({iterator: item, "index": index, "item": item})
            iteration: dict[str, Any] = child.run_steps(body, path)
            return iteration

        if step.get("parallel") and len(items) > 1:
            workers = int(step.get("max_parallel") or min(len(items), 4))
            workers = max(1, min(workers, len(items), MAX_WORKERS))
            # Threads come from the run's shared allowance: nested parallel loops cannot
            # multiply them, and run inline when none is free.
            iterations = context.map(one, list(enumerate(items)), workers)
        else:
            iterations = [one(pair) for pair in enumerate(items)]
        return {"success": True, "iterations": iterations, "count": len(iterations)}


class WhileLoopStep:
    raw_keys = frozenset({"steps", "condition"})
    owns_condition = True

    def semantic_check(self, step: dict[str, Any]) -> list[tuple[tuple[str, ...], str]]:
        problems: list[tuple[tuple[str, ...], str]] = []
        for key in ("condition", "steps"):
            if key not in step:
                problems.append(((), f"while_loop needs {key!r}"))
        return problems

    def execute(self, step: dict[str, Any], context: Any) -> Any:
        asked = int(step.get("max_iterations") or DEFAULT_MAX_ITERATIONS)
        limit = min(asked, MAX_ITERATIONS_LIMIT)
        iterations: list[dict[str, Any]] = []
        exit_reason = "condition_false"
        while True:
            if not context.check_condition(step["condition"]):
                break
            if len(iterations) >= limit:
                exit_reason = "max_iterations"
                break
            child = context.child({"index": len(iterations), "iteration": len(iterations)})
            iterations.append(child.run_steps(step["steps"], f"{step['name']}.steps"))
        return {
            "success": True,
            "iterations": iterations,
            "count": len(iterations),
            "exit_reason": exit_reason,
            "max_iterations_reached": exit_reason == "max_iterations",
        }
