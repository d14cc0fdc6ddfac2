"""The host: loading, validating and executing pipeline_ex workflows.

This package reads the registries and never imports ``pipeline_ex.plugins``.
"""

from pipeline_ex.workflow.context import ExecutionContext
from pipeline_ex.workflow.executor import Executor

__all__ = ["ExecutionContext", "Executor"]
