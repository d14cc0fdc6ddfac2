"""The host: loading, validating and executing pipeline_ex workflows.

This package reads the registries and never imports ``pipeline_ex.plugins``.
``ExecutionContext`` and ``Executor`` are PEP 562 attributes: importing one of the light
modules here (``modes``, say) must not start the whole engine, which a Runtime that only
lists its plugins never uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline_ex.workflow.context import ExecutionContext
    from pipeline_ex.workflow.executor import Executor

__all__ = ["ExecutionContext", "Executor"]


def __getattr__(name: str) -> Any:
    if name == "ExecutionContext":
        from pipeline_ex.workflow.context import ExecutionContext

        return ExecutionContext
    if name == "Executor":
        from pipeline_ex.workflow.executor import Executor

        return Executor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
