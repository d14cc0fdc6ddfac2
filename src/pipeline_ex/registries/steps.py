"""StepRegistry: step type name -> the object whose ``execute(step, context)`` runs it.

The step contract itself (``Step``) lives in ``pipeline_ex.plugins.contracts``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline_ex.errors import UnknownStepTypeError
from pipeline_ex.registries.snapshot import SnapshotRegistry
from pipeline_ex.registries.views import StepView

#: What the engine calls to run a step: ``call(step, context) -> result``.
Caller = Callable[[dict[str, Any], Any], Any]
#: Builds the caller of a newly registered step: ``(owner, type name, step) -> Caller``.
Instrument = Callable[[str, str, Any], Caller]


class StepRegistry(SnapshotRegistry[Any]):
    """Step types, plus a dispatch table built once per registration.

    ``resolve(kind)`` gives the step object (for its optional attributes) and the callable
    that runs it.  The plugin manager installs an ``Instrument`` that wraps ``execute`` in
    the guard once, at registration, so the per-step cost is one dict lookup and one call.
    """

    kind = "step type"
    missing_error = UnknownStepTypeError

    def __init__(self) -> None:
        self._instrument: Instrument | None = None
        # name -> (step, caller), what resolve returns as it is; and who owned each entry
        # when its caller was built (a changed owner needs a new caller).
        self._dispatch: dict[str, tuple[Any, Caller]] = {}
        self._dispatch_owner: dict[str, str] = {}
        self._next: tuple[dict[str, tuple[Any, Caller]], dict[str, str]] = ({}, {})
        self._view: StepView | None = None
        super().__init__()

    def instrument(self, wrap: Instrument | None) -> None:
        """Set how callers are built (``None``: call ``execute`` directly); rebuilds all."""
        with self._write_lock:
            self._instrument = wrap
            self._dispatch = {}
            self._dispatch_owner = {}
            self._before_write(self._items, self._owners, set(self._items))
            self._after_write(set(self._items))

    def _caller(self, name: str, step: Any, owner: str) -> Caller:
        wrap = self._instrument
        return wrap(owner, name, step) if wrap is not None else step.execute  # type: ignore[no-any-return]

    def _before_write(
        self, items: dict[str, Any], owners: dict[str, str], touched: set[str]
    ) -> None:
        """Build the callers of the touched step types before anything is published: if a
        step object fails here (its ``execute`` cannot be read), the write is refused
        whole instead of leaving a registered type with no caller."""
        table = dict(self._dispatch)
        built_for = dict(self._dispatch_owner)
        for name in touched:
            step = items.get(name)
            if step is None:
                table.pop(name, None)
                built_for.pop(name, None)
                continue
            owner = owners[name]
            entry = table.get(name)
            if entry is None or entry[0] is not step or built_for.get(name) != owner:
                table[name] = (step, self._caller(name, step, owner))
                built_for[name] = owner
        self._next = (table, built_for)

    def _after_write(self, touched: set[str]) -> None:
        self._dispatch, self._dispatch_owner = self._next

    def resolve(self, name: str) -> tuple[Any, Caller]:
        """The step and its caller; a ``KeyError`` subclass listing types if unknown."""
        try:
            return self._dispatch[name]
        except KeyError:
            # The items are published a moment before the table: build this one on the fly.
            step = self[name]
            return step, self._caller(name, step, self._owners.get(name, "?"))

    def view(self) -> StepView:
        """The read-only view handed to steps as ``context.step_types``; built once."""
        view = self._view
        if view is None:
            view = self._view = StepView(self)
        return view
