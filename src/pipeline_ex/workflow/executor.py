"""The engine: runs a validated workflow's steps in order through the StepRegistry.

Every step, top-level or inside a loop, goes through ``run_step``: condition, template
interpolation, dispatch by ``type`` to the registered step object, failure detection,
``output_to_file``.  There is no second dispatch table: loop step types call back into
``ExecutionContext.run_steps``.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pipeline_ex import results_json
from pipeline_ex.configuration import ConfigurationSystem
from pipeline_ex.documents import Document
from pipeline_ex.errors import (
    InvalidInputError,
    PipelineExError,
    PluginError,
    StepFailedError,
    UnknownStepTypeError,
)
from pipeline_ex.interrupts import plugin_raised
from pipeline_ex.log import get_logger
from pipeline_ex.registries import ProviderRegistry, StepRegistry
from pipeline_ex.schema_refs import describe_remote, remote_refs
from pipeline_ex.workflow import hooks
from pipeline_ex.workflow.budgets import ResultBudget, RunLimits
from pipeline_ex.workflow.concurrency import ThreadAllowance
from pipeline_ex.workflow.conditions import evaluate_condition
from pipeline_ex.workflow.context import MODES, ExecutionContext, StepBudget
from pipeline_ex.workflow.expressions import ExpressionError
from pipeline_ex.workflow.loading import load_workflow
from pipeline_ex.workflow.output_dir import workflow_output_dir
from pipeline_ex.workflow.prompts import resolve_inside
from pipeline_ex.workflow.templates import interpolate
from pipeline_ex.workflow.validation import validate_workflow
from pipeline_ex.workflow.validation_cache import ValidationCache

logger = get_logger(__name__)

#: Step keys the engine never interpolates, whatever the step type says.
RAW_STEP_KEYS = frozenset({"output_schema"})

EventSink = Callable[[str, Mapping[str, Any]], None]


def output_value(result: Any) -> tuple[Any, str | None]:
    """What ``output_schema`` is checked against.

    A provider reply (a mapping with a ``text`` string) is checked on its text read as JSON
    (a model's answer, with a Markdown code fence around it allowed), as pipeline_ex does;
    any other result is checked as it is.  Returns the value, or a problem when the text
    is not JSON.
    """
    if not (isinstance(result, Mapping) and isinstance(result.get("text"), str)):
        return result, None
    text = _unfence(result["text"].strip())
    try:
        return json.loads(text), None
    except ValueError as exc:
        return None, f"the reply text is not JSON ({exc}): {text[:60]!r}"
    except RecursionError:
        return None, f"the reply text is JSON nested too deeply to check: {text[:60]!r}"


def _unfence(text: str) -> str:
    """The body of a Markdown code fence around the whole text (```json ... ```), if any."""
    if not (text.startswith("```") and text.endswith("```") and len(text) >= 6):
        return text
    first_line_end = text.find("\n")
    if first_line_end == -1:
        return text
    if text[3:first_line_end].strip() not in ("", "json"):
        return text
    return text[first_line_end + 1 : -3].strip()


class Executor:
    """Runs workflows against a set of registries; safe to share between threads."""

    def __init__(
        self,
        steps: StepRegistry,
        providers: ProviderRegistry,
        configuration: ConfigurationSystem,
        limits: RunLimits | None = None,
    ) -> None:
        self.steps = steps
        self.providers = providers
        self.configuration = configuration
        #: Steps, result bytes and extra threads each run may use (``budgets.RunLimits``).
        self.limits = limits if limits is not None else RunLimits()
        #: Documents that passed validation, by content and registry versions.
        self.validation_cache = ValidationCache()

    def prepare(self, source: str | Path | Mapping[str, Any] | Document) -> Document:
        """Load and validate; raises a ``DocumentError`` subclass on any problem.

        A mapping's size and depth budgets are checked with its validation, so that a
        mapping whose content already passed (``validation_cache``) skips both walks."""
        mapping = isinstance(source, Mapping)
        document = load_workflow(source, check_bounds=not mapping)
        validate_workflow(
            document,
            self.configuration,
            self.steps,
            self.validation_cache,
            check_bounds=mapping,
        )
        return document

    def run(
        self,
        source: str | Path | Mapping[str, Any] | Document,
        *,
        inputs: Mapping[str, Any] | None = None,
        mode: str = "mock",
        output_dir: str | Path | None = None,
        on_event: EventSink | None = None,
    ) -> dict[str, Any]:
        """Run a workflow and return ``{step name: result}``; raises ``StepFailedError``."""
        if mode not in MODES:
            raise InvalidInputError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
        document = self.prepare(source)
        workflow = document.data["workflow"]
        # The caller's output_dir is trusted; the workflow's was confined to its folder by
        # validation (just now, in prepare) and is resolved the same way here.
        out = Path(output_dir) if output_dir else workflow_output_dir(document) or Path("outputs")
        context = ExecutionContext(
            executor=self,
            workflow=workflow,
            mode=mode,
            base_dir=document.base_dir,
            output_dir=out,
            inputs=inputs,
            on_event=on_event,
            budget=StepBudget(self.limits.max_steps),
            result_budget=ResultBudget(self.limits.max_result_bytes),
            threads=ThreadAllowance(self.limits.max_extra_threads),
        )
        self._preflight(workflow["steps"], context, {})
        results = self.run_steps(workflow["steps"], context, "workflow.steps")
        return results

    def _preflight(
        self,
        steps: list[Mapping[str, Any]],
        context: ExecutionContext,
        checks: dict[str, tuple[Any, Callable[[Any, Any], Any] | None]],
    ) -> None:
        """Let each step type fail early (a missing API key) before the first step runs.

        A typed error (``ProviderConfigurationError``) propagates as it is; anything else a
        step type's preflight raises is that step's failure, never a bare traceback.
        ``checks`` keeps each step type's ``preflight`` hook as read for its first step
        (``type -> (step object, hook)``), so the attribute is read once per type.
        """
        registry = self.steps
        for step in steps:
            try:
                kind = step["type"]
                handler = registry.get(kind)
                known = checks.get(kind)
                if known is None or known[0] is not handler:
                    known = checks[kind] = (handler, hooks.preflight_hook(handler, kind, registry))
                hooks.run_preflight(known[1], step, context, registry)
            except (UnknownStepTypeError, hooks.StepHookError, PluginError) as exc:
                # unloaded meanwhile, a broken hook, or (PluginError) a hook the plugin
                # manager guards that raised: that step's failure, naming the plugin
                raise self._failure(step, exc.message, context, exc.code) from exc
            nested = step.get("steps")
            if isinstance(nested, list):
                self._preflight(nested, context, checks)

    def run_steps(
        self, steps: list[Mapping[str, Any]], context: ExecutionContext, path: str = ""
    ) -> dict[str, Any]:
        """Run ``steps`` in order in ``context``; returns this list's results only."""
        local: dict[str, Any] = {}
        for index, step in enumerate(steps):
            result = self.run_step(step, context, f"{path}[{index}]")
            local[step["name"]] = result
        return local

    def run_step(self, step: Mapping[str, Any], context: ExecutionContext, path: str) -> Any:
        """Run one step; a failure emits ``step_failed`` at this level, then propagates."""
        try:
            return self._run_step(step, context, path)
        except StepFailedError as exc:
            if context.on_event:
                context.on_event(
                    "step_failed",
                    {
                        "name": step["name"],
                        "type": step["type"],
                        "path": path,
                        "error": exc.message,
                        "code": exc.cause_code,
                    },
                )
            raise

    def _run_step(self, step: Mapping[str, Any], context: ExecutionContext, path: str) -> Any:
        name, kind = step["name"], step["type"]
        try:
            context.budget.take()
        except PipelineExError as exc:
            raise self._failure(step, exc.message, context, exc.code) from None
        try:
            handler, call = self.steps.resolve(kind)
        except UnknownStepTypeError as exc:  # unloaded while this run was going
            raise self._failure(step, exc.message, context, exc.code) from None
        emit = context.on_event
        # A step type's hooks are read once per run (and again if the type's object was
        # swapped by a reload meanwhile), not once per step.
        memo = context.step_hooks.get(kind)
        if memo is None or memo[0] is not handler:
            try:
                memo = (
                    handler,
                    hooks.raw_keys(handler, self.steps, kind) | RAW_STEP_KEYS,
                    hooks.owns_condition(handler, self.steps, kind),
                )
            except hooks.StepHookError as exc:
                raise self._failure(step, exc.message, context, exc.code) from None
            context.step_hooks[kind] = memo
        _, skip, owns_condition = memo
        if "condition" in step and not owns_condition:
            try:
                should_run = evaluate_condition(step["condition"], context.resolve)
            except ExpressionError as exc:
                raise self._failure(step, f"condition: {exc}", context, "condition_error") from None
            except BaseException as exc:  # a step result whose truth value raises
                if not plugin_raised(exc):
                    raise
                raise self._failure(
                    step, f"condition: {type(exc).__name__}: {exc}", context, "condition_error"
                ) from None
            if not should_run:
                result = {
                    "success": True,
                    "skipped": True,
                    "reason": f"condition not met: {step['condition']}",
                }
                self._record(step, result, context)
                if emit:
                    emit("step_skipped", {"name": name, "type": kind, "path": path})
                return result
        # A schema is never templated: an input must not end up in a $ref (or anywhere).
        try:
            prepared = interpolate(
                step,
                context.resolve,
                skip,
                context.result_budget.allowance("the step's templated definition"),
            )
        except PipelineExError as exc:
            raise self._failure(step, exc.message, context, exc.code) from None
        if emit:
            emit("step_started", {"name": name, "type": kind, "path": path})
        try:
            result = call(prepared, context)
        except StepFailedError as exc:
            exc.results = {**dict(context.results), **exc.results}
            raise
        except PipelineExError as exc:
            raise self._failure(step, exc.message, context, exc.code) from exc
        except BaseException as exc:  # plugin code is never trusted to behave
            # sys.exit(), a KeyboardInterrupt or a custom BaseException raised by a step or
            # a provider fails this step; only the user's own Ctrl-C stops the host.
            if not plugin_raised(exc):
                raise
            logger.debug("step %s raised", name, exc_info=True)
            raise self._failure(step, f"{type(exc).__name__}: {exc}", context, "crashed") from exc
        try:
            self._finish(step, prepared, result, context)
        except PipelineExError:
            raise
        except BaseException as exc:  # a result object whose methods are plugin code
            if not plugin_raised(exc):
                raise
            raise self._failure(
                step,
                f"its result could not be read: {type(exc).__name__}: {exc}",
                context,
                "crashed",
            ) from exc
        if emit:
            emit("step_finished", {"name": name, "type": kind, "path": path, "result": result})
        return result

    def _finish(
        self,
        step: Mapping[str, Any],
        prepared: Mapping[str, Any],
        result: Any,
        context: ExecutionContext,
    ) -> None:
        """Failure detection, recording, ``output_schema`` and ``output_to_file``."""
        if isinstance(result, Mapping) and result.get("success") is False:
            reason = str(result.get("error") or "the step reported failure")
            self._record(step, result, context)
            raise self._failure(step, reason, context, "step_reported_failure")
        self._record(step, result, context)
        schema = step.get("output_schema")
        if isinstance(schema, Mapping):
            remote = remote_refs(schema)
            if remote:
                raise self._failure(
                    step,
                    f"output_schema: {describe_remote(remote[0][1])}",
                    context,
                    "output_schema_invalid",
                )
            value, unreadable = output_value(result)
            problems = (
                [unreadable] if unreadable else self.configuration.output_problems(schema, value)
            )
            if problems:
                raise self._failure(
                    step,
                    "result does not match output_schema: " + "; ".join(problems[:5]),
                    context,
                    "output_schema_mismatch",
                )
        if "output_to_file" in prepared:
            self._write_output(prepared, result, context)

    def _record(self, step: Mapping[str, Any], result: Any, context: ExecutionContext) -> None:
        """Keep a step's result, once the run's result budget has room for it (a result
        too large or too deeply nested to keep fails the step instead)."""
        try:
            context.result_budget.charge(result)
        except PipelineExError as exc:
            raise self._failure(step, exc.message, context, exc.code) from None
        context.results.maps[0][step["name"]] = result  # ChainMap.__setitem__, minus a call
        context.last_step = step["name"]

    @staticmethod
    def _failure(
        step: Mapping[str, Any], reason: str, context: ExecutionContext, code: str
    ) -> StepFailedError:
        return StepFailedError(
            step["name"], step["type"], reason, results=dict(context.results), cause_code=code
        )

    def _write_output(
        self, step: Mapping[str, Any], result: Any, context: ExecutionContext
    ) -> None:
        """Write atomically (temporary file + rename) to a file strictly inside the output
        folder; the temporary file never outlives a failure."""
        target_name = str(step["output_to_file"])
        tmp: Path | None = None
        try:
            target = resolve_inside(context.output_dir, target_name, "output_to_file")
            target.parent.mkdir(parents=True, exist_ok=True)
            text = result if isinstance(result, str) else results_json.dumps(result)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(target)
            tmp = None
        except PipelineExError as exc:
            raise self._failure(step, exc.message, context, exc.code) from None
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise self._failure(
                step, f"cannot write {target_name!r}: {reason}", context, "io_error"
            ) from None
        finally:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
