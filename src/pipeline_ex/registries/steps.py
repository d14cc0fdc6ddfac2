"""StepRegistry: step type name -> the object whose ``execute(step, context)`` runs it."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from pipeline_ex.errors import UnknownStepTypeError
from pipeline_ex.registries.snapshot import SnapshotRegistry


@runtime_checkable
class Step(Protocol):
    """The step contract.  Optional attributes a step type may define:

    ``raw_keys``: keys the engine must not template-interpolate before ``execute`` (a loop's
    nested ``steps`` and ``condition`` are evaluated per iteration, not once);
    ``owns_condition``: True when ``condition`` is the step's own (while_loop), not a skip test;
    ``preflight(step, context)``: called for every step before the first one runs, to fail
    early (a missing API key);
    ``semantic_check(step, path)``: extra document checks, returning problem messages.
    """

    def execute(self, step: dict[str, Any], context: Any) -> Any: ...


class StepRegistry(SnapshotRegistry[Any]):
    kind = "step type"
    missing_error = UnknownStepTypeError
