"""pipeline-ex: run pipeline_ex AI workflows in Python; every extension point is a plugin.

``Runtime`` is imported on first use (PEP 562): ``import pipeline_ex`` and a plugin's
``from pipeline_ex.plugins import Plugin`` stay cheap, which matters for start-up and for a
plugin imported in an isolated child process.
"""

import logging
from typing import TYPE_CHECKING, Any

from pipeline_ex.errors import PipelineExError, PluginError, StepFailedError

if TYPE_CHECKING:
    from pipeline_ex.runtime import Runtime

__all__ = ["PipelineExError", "PluginError", "Runtime", "StepFailedError"]
__version__ = "0.1.0"

# A library leaves logging to the application (and to the CLI, which sets up its own
# handler): without this, Python's last-resort handler printed every warning to stderr,
# and a second time once the application configured logging.
logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    if name == "Runtime":
        from pipeline_ex.runtime import Runtime

        globals()["Runtime"] = Runtime
        return Runtime
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
