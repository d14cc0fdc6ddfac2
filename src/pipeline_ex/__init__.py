"""pipeline-ex: run pipeline_ex AI workflows in Python; every extension point is a plugin.

``Runtime`` is imported on first use (PEP 562): ``import pipeline_ex`` and a plugin's
``from pipeline_ex.plugins import Plugin`` stay cheap, which matters for start-up and for a
plugin imported in an isolated child process.  For the same reason this module imports
neither ``typing`` nor ``logging``: the library's ``NullHandler`` is attached by
:mod:`pipeline_ex.log`, which every module that logs goes through.
"""

from pipeline_ex.errors import PipelineExError, PluginError, StepFailedError

#: Type checkers treat a module-level ``TYPE_CHECKING`` name as true; ``typing`` is not
#: imported for it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pipeline_ex.runtime import Runtime

__all__ = ["PipelineExError", "PluginError", "Runtime", "StepFailedError"]
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    if name == "Runtime":
        from pipeline_ex.runtime import Runtime

        globals()["Runtime"] = Runtime
        return Runtime
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
