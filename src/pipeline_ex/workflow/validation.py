"""Checks a workflow document before anything runs: schema first, then meaning.

Schema validation (the ConfigurationSystem's compiled JSON Schema) proves the shape; the
semantic pass proves the references: step types exist in the StepRegistry, step names are
unique, ``previous_response`` points at an earlier step, conditions parse, and each step
type's own ``semantic_check`` agrees.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline_ex.configuration import ConfigurationSystem
from pipeline_ex.documents import Document, PathKey, check_data_bounds
from pipeline_ex.errors import Problem, SchemaValidationError, WorkflowSemanticError
from pipeline_ex.registries import StepRegistry
from pipeline_ex.schema_refs import describe_remote, remote_refs
from pipeline_ex.workflow import hooks
from pipeline_ex.workflow.conditions import check_condition
from pipeline_ex.workflow.output_dir import output_dir_problem
from pipeline_ex.workflow.prompts import PART_REQUIRED, PART_TYPES
from pipeline_ex.workflow.validation_cache import ValidationCache

NESTED_STEP_KEYS = ("steps",)


def validate_workflow(
    document: Document,
    configuration: ConfigurationSystem,
    steps: StepRegistry,
    cache: ValidationCache | None = None,
    *,
    check_bounds: bool = False,
) -> None:
    """Raise ``SchemaValidationError`` or ``WorkflowSemanticError`` with every problem.

    When the schema refuses the document, unknown step types found in it are reported
    with the schema problems: a corpus file using ``claude_smart`` with a string prompt
    hears about both, not only the first.

    With a ``cache``, a document whose content passed under the same schema and step
    types is not checked again, except for its ``output_dir``: whether that stays inside
    the workflow's folder depends on where the file is and on the file system (a symlink
    swapped since), not on the content, so it is checked every time.

    ``check_bounds``: the data did not come from YAML (whose loader enforces the size and
    depth budgets while composing), so enforce them here (``check_data_bounds``), unless
    the same content already passed: equal digests mean equal data, bounds included.
    """
    key = None
    if cache is not None:
        key = cache.key(document.data, configuration.version, steps.version)
        if key is not None and cache.passed(key):
            escaping = output_dir_problem(document)
            if escaping is not None:
                raise WorkflowSemanticError([escaping])
            return
    if check_bounds:
        check_data_bounds(document.data, document.file)
    _validate(document, configuration, steps)
    if key is not None and cache is not None:
        cache.remember(key)


def _validate(document: Document, configuration: ConfigurationSystem, steps: StepRegistry) -> None:
    data = document.data
    if isinstance(data, Mapping) and "workflow" not in data:
        found = ", ".join(repr(k) for k in list(data)[:8]) or "none"
        raise SchemaValidationError(
            [
                document.problem(
                    (),
                    "not a pipeline_ex workflow: the document needs a top-level 'workflow' "
                    f"mapping (top-level keys found: {found})",
                )
            ]
        )
    try:
        configuration.validate(document)
    except SchemaValidationError as exc:
        extra = [p for p in unknown_step_types(document, steps) if p not in exc.problems]
        if extra:
            raise SchemaValidationError([*exc.problems, *extra]) from None
        raise
    problems = semantic_problems(document, steps)
    if problems:
        raise WorkflowSemanticError(problems)


def unknown_step_types(document: Document, steps: StepRegistry) -> list[Problem]:
    """Unknown step types anywhere in a document of any shape (no schema assumed)."""
    problems: list[Problem] = []
    workflow = document.data.get("workflow") if isinstance(document.data, Mapping) else None
    if not isinstance(workflow, Mapping):
        return problems
    pending: list[tuple[Any, PathKey]] = [(workflow.get("steps"), ("workflow", "steps"))]
    while pending:
        step_list, path = pending.pop()
        if not isinstance(step_list, list):
            continue
        for index, step in enumerate(step_list):
            if not isinstance(step, Mapping):
                continue
            kind = step.get("type")
            if isinstance(kind, str) and kind not in steps:
                problems.append(_unknown_type(document, (*path, index, "type"), kind, steps))
            for key in NESTED_STEP_KEYS:
                pending.append((step.get(key), (*path, index, key)))
    return problems


def _unknown_type(document: Document, path: PathKey, kind: str, steps: StepRegistry) -> Problem:
    known = ", ".join(sorted(steps)) or "none"
    return document.problem(path, f"unknown step type {kind!r} (registered: {known})")


def semantic_problems(document: Document, steps: StepRegistry) -> list[Problem]:
    problems: list[Problem] = []
    workflow = document.data["workflow"]
    escaping = output_dir_problem(document)
    if escaping is not None:
        problems.append(escaping)
    _check_steps(document, steps, workflow["steps"], ("workflow", "steps"), set(), problems)
    return problems


def _check_steps(
    document: Document,
    registry: StepRegistry,
    step_list: list[Mapping[str, Any]],
    path: PathKey,
    outer_visible: set[str],
    problems: list[Problem],
    outer_names: frozenset[Any] = frozenset(),
) -> None:
    seen: dict[str, int] = {}
    # Names a reference may mean but cannot use yet: this list's and the enclosing ones'.
    later = {s.get("name") for s in step_list if isinstance(s, Mapping)} | outer_names
    visible = set(outer_visible)
    registered = registry.snapshot()  # one copy-on-write snapshot for the whole list
    for index, step in enumerate(step_list):
        here = (*path, index)
        name, kind = step["name"], step["type"]
        if name in seen:
            problems.append(
                document.problem(
                    (*here, "name"),
                    f"duplicate step name {name!r} (first used at {path[-1]}[{seen[name]}])",
                )
            )
        seen.setdefault(name, index)
        handler = registered.get(kind)
        if handler is None:
            problems.append(_unknown_type(document, (*here, "type"), kind, registry))
        if "condition" in step:
            for message in check_condition(step["condition"]):
                problems.append(document.problem((*here, "condition"), message))
        _check_prompt(document, step.get("prompt"), (*here, "prompt"), visible, later, problems)
        for t_index, task in enumerate(step.get("parallel_tasks") or []):
            _check_prompt(
                document,
                task.get("prompt"),
                (*here, "parallel_tasks", t_index, "prompt"),
                visible,
                later,
                problems,
            )
        schema = step.get("output_schema")
        for ref_path, ref in remote_refs(schema):
            problems.append(
                document.problem((*here, "output_schema", *ref_path), describe_remote(ref))
            )
        if handler is not None:
            for key_path, message in hooks.semantic_problems(handler, step, registry):
                problems.append(document.problem((*here, *key_path), message))
        for key in NESTED_STEP_KEYS:
            nested = step.get(key)
            if isinstance(nested, list) and handler is not None:
                _check_steps(
                    document,
                    registry,
                    nested,
                    (*here, key),
                    visible,
                    problems,
                    frozenset(later),
                )
        visible.add(name)


def _check_prompt(
    document: Document,
    parts: Any,
    path: PathKey,
    visible: set[str],
    later: set[Any],
    problems: list[Problem],
) -> None:
    if not isinstance(parts, list):
        return
    for index, part in enumerate(parts):
        kind = part.get("type")
        if kind not in PART_TYPES:
            problems.append(
                document.problem(
                    (*path, index, "type"),
                    f"unsupported prompt part type {kind!r} (supported: {', '.join(PART_TYPES)})",
                )
            )
        elif PART_REQUIRED[kind] not in part:
            problems.append(
                document.problem(
                    (*path, index),
                    f"a {kind} prompt part needs {PART_REQUIRED[kind]!r}",
                )
            )
        elif kind == "previous_response":
            target = part["step"]
            if target in visible:
                continue
            where = "a later step" if target in later else "no step of that name"
            problems.append(
                document.problem(
                    (*path, index, "step"),
                    f"previous_response refers to {target!r}, which is {where}",
                )
            )
