"""A step type's optional hooks, read and called as the untrusted plugin code they are.

``raw_keys``, ``owns_condition``, ``preflight`` and ``semantic_check`` come from plugins:
reading one may run a property that raises, and what it gives back may have the wrong
type.  Any of that is the owning plugin's failure, reported with the step type and the
plugin's name (``StepHookError``: code ``crashed`` when it raised, ``step_hook_invalid``
for a wrong answer) or, for ``semantic_check``,
as validation problems at the step's path; never an ``error [internal]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pipeline_ex.errors import PipelineExError, PluginError
from pipeline_ex.interrupts import plugin_raised
from pipeline_ex.registries import StepRegistry

PathKey = tuple[str | int, ...]


class StepHookError(PipelineExError):
    """A step type's optional hook answered with the wrong type (``step_hook_invalid``) or
    raised (``crashed``, as when ``execute`` raises)."""

    code = "step_hook_invalid"


def describe(steps: StepRegistry, kind: str) -> str:
    """``step type 'x' (plugin 'p')``: who to blame, even after an unload."""
    try:
        owner = steps.owner(kind)
    except KeyError:
        return f"step type {kind!r} (no longer registered)"
    return f"step type {kind!r} (plugin {owner!r})"


def _raised(steps: StepRegistry, kind: str, hook: str, exc: BaseException) -> StepHookError:
    if not plugin_raised(exc):
        raise exc
    return StepHookError(
        f"{describe(steps, kind)}: {hook} raised {type(exc).__name__}: {exc}", code="crashed"
    )


def _attribute(handler: Any, name: str, default: Any, steps: StepRegistry, kind: str) -> Any:
    try:
        return getattr(handler, name, default)
    except BaseException as exc:
        raise _raised(steps, kind, name, exc) from None


def raw_keys(handler: Any, steps: StepRegistry, kind: str) -> frozenset[str]:
    """The keys the engine must not interpolate: a collection of key names."""
    value = _attribute(handler, "raw_keys", (), steps, kind)
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise StepHookError(
            f"{describe(steps, kind)}: raw_keys must be a collection of key names, "
            f"not {type(value).__name__}"
        )
    try:
        keys = frozenset(value)
    except BaseException as exc:
        raise _raised(steps, kind, "raw_keys", exc) from None
    if not all(isinstance(key, str) for key in keys):
        raise StepHookError(f"{describe(steps, kind)}: raw_keys must hold key names (text)")
    return keys


def owns_condition(handler: Any, steps: StepRegistry, kind: str) -> bool:
    value = _attribute(handler, "owns_condition", False, steps, kind)
    if not isinstance(value, bool):
        raise StepHookError(
            f"{describe(steps, kind)}: owns_condition must be true or false, "
            f"not {type(value).__name__}"
        )
    return value


def preflight_hook(
    handler: Any, kind: str, steps: StepRegistry
) -> Callable[[Any, Any], Any] | None:
    """The step type's ``preflight`` (``None`` without one), read once for a run's steps;
    ``StepHookError`` when reading it raises or it is not callable."""
    check = _attribute(handler, "preflight", None, steps, kind)
    if check is not None and not callable(check):
        raise StepHookError(f"{describe(steps, kind)}: preflight is not callable")
    return check  # type: ignore[no-any-return]


def run_preflight(
    check: Callable[[Any, Any], Any] | None,
    step: Mapping[str, Any],
    context: Any,
    steps: StepRegistry,
) -> None:
    """Call a step's ``preflight`` (read by ``preflight_hook``); a typed error (a missing
    API key) goes through as it is, anything else is a ``StepHookError`` naming the plugin."""
    if check is None:
        return
    try:
        check(step, context)
    except PipelineExError:
        raise
    except BaseException as exc:
        raise _raised(steps, str(step["type"]), "preflight", exc) from exc


def semantic_problems(
    handler: Any, step: Mapping[str, Any], steps: StepRegistry
) -> list[tuple[PathKey, str]]:
    """``(path inside the step, message)`` from ``semantic_check``; a check that raises or
    answers with the wrong shape is itself a problem at the step, naming the plugin."""
    kind = str(step["type"])
    try:
        check = _attribute(handler, "semantic_check", None, steps, kind)
        if check is None:
            return []
        if not callable(check):
            return [((), f"{describe(steps, kind)}: semantic_check is not callable")]
        answer = check(step)
        found = list(answer)
    except (StepHookError, PluginError) as exc:  # PluginError: a guarded hook, already named
        return [((), exc.message)]
    except BaseException as exc:
        return [((), _raised(steps, kind, "semantic_check", exc).message)]
    problems: list[tuple[PathKey, str]] = []
    for item in found:
        if (
            isinstance(item, tuple | list)
            and len(item) == 2
            and isinstance(item[0], tuple | list)
            and all(isinstance(p, str | int) and not isinstance(p, bool) for p in item[0])
            and isinstance(item[1], str)
        ):
            problems.append((tuple(item[0]), item[1]))
        else:
            problems.append(
                (
                    (),
                    f"{describe(steps, kind)}: semantic_check answered {str(item)[:60]!r}, "
                    "not a (path, message) pair",
                )
            )
    return problems
