"""What is running now, for log records and run records: workflow, step, plugin call.

Three context variables, set by whoever knows: the Runtime's monitoring around a run
(``run``), its event sink around each step (``step``), the guard around a lifecycle call or
a provider query (``call``).  A step's own ``execute`` sets nothing (it is the dispatch hot
path): ``ContextFilter`` derives its plugin and component from the step's type.  Context
variables follow a run into the helper threads of ``context.map`` (those run in a copy of
the caller's context), and stay apart between concurrent runs.

``ContextFilter`` (a ``logging.Filter``) puts ``plugin``, ``component``, ``workflow``,
``step`` and ``run_id`` on every record it sees (``None`` where unknown), without
overriding what a caller passed in ``extra``.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from typing import Any

from pipeline_ex.records import MutableRecord

FIELDS = ("plugin", "component", "workflow", "step", "run_id")


class RunScope(MutableRecord):
    """One run in progress: what its log records and its ``RunRecord`` need."""

    __slots__ = ("owner_of", "providers", "run_id", "step_types", "steps", "workflow")
    FIELDS = ("run_id", "workflow", "owner_of", "steps", "step_types", "providers")

    def __init__(
        self,
        run_id: str,
        workflow: str,
        owner_of: Callable[[str], str | None],
        steps: int = 0,
        step_types: set[str] | None = None,
        providers: set[str] | None = None,
    ) -> None:
        self.run_id = run_id
        self.workflow = workflow
        #: step type -> owning plugin, for records logged from inside a step's execute.
        self.owner_of = owner_of
        self.steps = steps
        self.step_types: set[str] = set() if step_types is None else step_types
        self.providers: set[str] = set() if providers is None else providers


_run: contextvars.ContextVar[RunScope | None] = contextvars.ContextVar(
    "pipeline_ex_run", default=None
)
_step: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "pipeline_ex_step", default=None
)
_call: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "pipeline_ex_call", default=None
)


def current_run() -> RunScope | None:
    return _run.get()


def enter_run(scope: RunScope) -> contextvars.Token[RunScope | None]:
    return _run.set(scope)


def leave_run(token: contextvars.Token[RunScope | None]) -> None:
    _run.reset(token)


def enter_call(plugin: str, component: str) -> contextvars.Token[tuple[str, str] | None]:
    return _call.set((plugin, component))


def leave_call(token: contextvars.Token[tuple[str, str] | None]) -> None:
    # try/except rather than contextlib.suppress: this runs around every lifecycle call
    # and provider query, and suppress costs a microsecond.
    try:  # noqa: SIM105
        _call.reset(token)
    except ValueError:  # a call ending in another context (an abandoned worker)
        pass


def note_provider(name: str) -> None:
    """A provider was queried: the run in progress (if any) used it."""
    scope = _run.get()
    if scope is not None:
        scope.providers.add(name)


class _StepStack(threading.local):
    """Per thread: the steps started and not yet finished, innermost last."""

    def __init__(self) -> None:
        self.items: list[tuple[str, contextvars.Token[tuple[str, str] | None]]] = []


_steps = _StepStack()


def step_started(path: str, name: str, kind: str) -> None:
    scope = _run.get()
    if scope is not None:
        scope.steps += 1
        scope.step_types.add(kind)
    _steps.items.append((path, _step.set((name, kind))))


def step_ended(path: str) -> None:
    """The step at ``path`` finished or failed (a failure before it started is ignored)."""
    items = _steps.items
    if items and items[-1][0] == path:
        _, token = items.pop()
        try:
            _step.reset(token)
        except ValueError:  # pragma: no cover - set in another context
            _step.set(None)


def current() -> dict[str, Any]:
    """The fields ``ContextFilter`` adds, as they are right now."""
    scope = _run.get()
    step = _step.get()
    call = _call.get()
    plugin: str | None = None
    component: str | None = None
    if call is not None:
        plugin, component = call
    elif step is not None:
        component = step[1]
        if scope is not None:
            plugin = scope.owner_of(step[1])
    return {
        "plugin": plugin,
        "component": component,
        "workflow": scope.workflow if scope is not None else None,
        "step": step[0] if step is not None else None,
        "run_id": scope.run_id if scope is not None else None,
    }


class ContextFilter(logging.Filter):
    """Adds ``FIELDS`` to each record (keeping values a caller passed in ``extra``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        values = current()
        for name in FIELDS:
            if getattr(record, name, None) is None:
                setattr(record, name, values[name])
        return True
