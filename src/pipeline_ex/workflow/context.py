"""ExecutionContext: what a step sees while it runs.

One context per run; loops make child contexts whose results and variables are layered over
the parent's (``ChainMap``), so an iteration sees everything before it and its own steps'
results without leaking them to the outer workflow.
"""

from __future__ import annotations

import threading
from collections import ChainMap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline_ex.errors import PipelineExError
from pipeline_ex.registries import ProviderView, StepView
from pipeline_ex.workflow.budgets import MAX_STEPS_PER_RUN, ResultBudget, RunLimits
from pipeline_ex.workflow.concurrency import ThreadAllowance
from pipeline_ex.workflow.conditions import evaluate_condition
from pipeline_ex.workflow.expressions import _MISSING, ExpressionError, get_path, missing
from pipeline_ex.workflow.modes import MODES as MODES  # where it used to live
from pipeline_ex.workflow.prompts import build_prompt

if TYPE_CHECKING:
    from pipeline_ex.workflow.executor import Executor


#: Provider names per logical model family and mode.
PROVIDER_NAMES = {
    ("claude", "mock"): "mock_claude",
    ("claude", "live"): "claude",
    ("gemini", "mock"): "mock_gemini",
    ("gemini", "live"): "gemini",
}


#: Most steps one run may execute, loop iterations included: a loop over a huge list or
#: nested loops at their iteration caps stop with a typed error instead of running for days.
#: (``RunLimits`` in ``budgets`` holds it with the result and thread limits.)


class StepBudgetExceeded(PipelineExError):
    code = "step_budget_exceeded"


class StepBudget:
    """Steps left in one run, shared by every context of the run (and its threads)."""

    def __init__(self, limit: int = MAX_STEPS_PER_RUN) -> None:
        self.limit = limit
        self._left = limit
        self._lock = threading.Lock()

    def take(self) -> None:
        with self._lock:
            if self._left <= 0:
                raise StepBudgetExceeded(
                    f"the run reached its limit of {self.limit} steps (loop iterations "
                    "included); refused to go on"
                )
            self._left -= 1


class DataSourceError(PipelineExError):
    code = "data_source_invalid"


class ConditionError(PipelineExError):
    """A condition could not be evaluated (``-'text'``, arithmetic on a missing value)."""

    code = "condition_error"


class EngineAccess:
    """What a context reaches of the engine: read-only registry views and nested runs.

    The executor, and through it the writable registries, is held in closures rather than
    attributes, so a step finds no attribute path from its ``context`` to a registry write
    (``context.providers`` is a view; writes go through the plugin manager).  In-process
    plugin code can still dig into closures or the garbage collector: in-process plugins
    are trusted code, and only process isolation is a boundary against hostile plugins.
    """

    __slots__ = ("provider_view", "run_steps", "step_view")

    def __init__(self, executor: Executor) -> None:
        providers, steps = executor.providers, executor.steps
        self.provider_view: Callable[[str], ProviderView] = lambda mode: providers.view(mode)
        self.step_view: Callable[[], StepView] = lambda: steps.view()
        self.run_steps: Callable[..., dict[str, Any]] = lambda steps_, context, path: (
            executor.run_steps(steps_, context, path)
        )


class ExecutionContext:
    """The state of one run (or of one loop iteration inside it)."""

    def __init__(
        self,
        *,
        executor: Executor | EngineAccess,
        workflow: Mapping[str, Any],
        mode: str,
        base_dir: Path,
        output_dir: Path,
        inputs: Mapping[str, Any] | None = None,
        results: ChainMap[str, Any] | None = None,
        variables: ChainMap[str, Any] | None = None,
        loop: Mapping[str, Any] | None = None,
        on_event: Callable[[str, Mapping[str, Any]], None] | None = None,
        budget: StepBudget | None = None,
        result_budget: ResultBudget | None = None,
        threads: ThreadAllowance | None = None,
        step_hooks: dict[str, tuple[Any, frozenset[str], bool]] | None = None,
    ) -> None:
        self._engine = executor if isinstance(executor, EngineAccess) else EngineAccess(executor)
        self._provider_view: ProviderView | None = None
        #: The engine's memo of each step type's hooks for this run (shared by its loop
        #: iterations): ``type -> (step object, keys not to interpolate, owns_condition)``.
        self.step_hooks: dict[str, tuple[Any, frozenset[str], bool]] = (
            step_hooks if step_hooks is not None else {}
        )
        self.workflow = workflow
        self.mode = mode
        self.base_dir = base_dir
        self.output_dir = output_dir
        self.inputs = dict(inputs or {})
        self.results: ChainMap[str, Any] = results if results is not None else ChainMap()
        if variables is None:
            initial = dict(workflow.get("variables") or {})
            variables = ChainMap(initial)
        self.variables: ChainMap[str, Any] = variables
        self.global_vars: Mapping[str, Any] = workflow.get("global_vars") or {}
        self.loop: Mapping[str, Any] = loop or {}
        self.on_event = on_event
        self.last_step: str | None = None
        limits = RunLimits()
        self.budget = budget if budget is not None else StepBudget(limits.max_steps)
        self.result_budget = (
            result_budget if result_budget is not None else ResultBudget(limits.max_result_bytes)
        )
        self.threads = threads if threads is not None else ThreadAllowance(limits.max_extra_threads)

    # -- what steps use -------------------------------------------------------------------
    @property
    def providers(self) -> ProviderView:
        """The providers serving this run's mode, read-only (``select`` ranks them).

        A view, not the registry: steps read components, plugins (through the manager)
        write them.  The view is built once per registry and mode, so this costs a lookup.
        """
        view = self._provider_view
        if view is None:
            view = self._provider_view = self._engine.provider_view(self.mode)
        return view

    @property
    def step_types(self) -> StepView:
        """The registered step types, read-only."""
        return self._engine.step_view()

    def provider_name(self, family: str) -> str:
        """The provider that serves ``claude``/``gemini`` steps in this run's mode."""
        return PROVIDER_NAMES.get((family, self.mode), family)

    def provider_for(self, family: str) -> Any:
        return self.providers.get(PROVIDER_NAMES.get((family, self.mode), family))

    def build_prompt(self, parts: list[Mapping[str, Any]]) -> str:
        return build_prompt(parts, self)

    def resolve(self, name: str) -> Any:
        """Top-level names of templates and conditions."""
        if name == "steps":
            return self.results
        if name in ("state", "variables"):
            return self.variables
        if name == "global_vars":
            return self.global_vars
        if name == "inputs":
            return self.inputs
        if name == "loop":
            return self.loop
        if name == "workflow":
            return self.workflow
        if name in self.results:
            return self.results[name]
        if name in self.variables:
            return self.variables[name]
        return _MISSING

    def lookup(self, path: str) -> Any:
        """A dot path from the top-level names (``steps.a.text``, ``review.score``)."""
        head, _, rest = path.partition(".")
        value = self.resolve(head)
        return get_path(value, rest) if rest else value

    def check_condition(self, condition: Any) -> bool:
        """Evaluate a pipeline_ex condition in this context; ``ConditionError`` if it can't."""
        try:
            return evaluate_condition(condition, self.resolve)
        except ExpressionError as exc:
            raise ConditionError(f"condition {condition!r}: {exc}") from None

    def resolve_data_source(self, source: Any) -> list[Any]:
        """pipeline_ex's data sources: ``STEP:FIELD.PATH``, ``previous_response:FIELD``, a
        variable name, a template already resolved to a list, or a literal list."""
        if isinstance(source, list):
            return source
        if isinstance(source, Mapping):
            return [{"key": k, "value": v} for k, v in source.items()]
        if not isinstance(source, str):
            raise DataSourceError(
                f"data_source must be a list or a reference, not {type(source).__name__}"
            )
        value: Any
        head, sep, field = source.partition(":")
        if head == "previous_response":  # "previous_response" or "previous_response:FIELD"
            if self.last_step is None:
                raise DataSourceError("data_source 'previous_response' used before any step ran")
            value = self.results[self.last_step]
            value = get_path(value, field) if field else value
        elif sep:
            if head not in self.results:
                raise DataSourceError(f"data_source {source!r}: no result for step {head!r}")
            value = get_path(self.results[head], field) if field else self.results[head]
        else:
            value = self.lookup(source)
        if missing(value):
            raise DataSourceError(f"data_source {source!r} does not resolve to a value")
        if isinstance(value, str | bytes | Mapping) or not isinstance(value, list | tuple):
            raise DataSourceError(
                f"data_source {source!r} resolved to {type(value).__name__}, not a list"
            )
        return list(value)

    def set_variable(self, name: str, value: Any, scope: str = "global") -> None:
        if scope == "loop":
            self.variables.maps[0][name] = value
        else:
            self.variables.maps[-1][name] = value

    def child(self, loop: Mapping[str, Any]) -> ExecutionContext:
        """A context for one loop iteration."""
        parent_loop = dict(self.loop)
        loop_vars = dict(loop)
        if parent_loop:
            loop_vars.setdefault("parent", parent_loop)
        ctx = ExecutionContext(
            executor=self._engine,
            workflow=self.workflow,
            mode=self.mode,
            base_dir=self.base_dir,
            output_dir=self.output_dir,
            inputs=self.inputs,
            results=self.results.new_child(),
            variables=self.variables.new_child(),
            loop=loop_vars,
            on_event=self.on_event,
            budget=self.budget,
            result_budget=self.result_budget,
            threads=self.threads,
            step_hooks=self.step_hooks,
        )
        ctx.last_step = self.last_step
        return ctx

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], max_parallel: int) -> list[Any]:
        """``[fn(item) for item in items]``, up to ``max_parallel`` at once, drawing threads
        from the run's shared allowance (see ``concurrency``); results in order."""
        return self.threads.map(fn, items, max_parallel)

    def run_steps(self, steps: list[Mapping[str, Any]], path: str = "") -> dict[str, Any]:
        """Run nested steps (a loop body) through the same dispatch as top-level steps."""
        return self._engine.run_steps(steps, self, path)
