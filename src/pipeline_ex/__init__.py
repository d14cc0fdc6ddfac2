"""pipeline-ex: run pipeline_ex AI workflows in Python; every extension point is a plugin."""

import logging

from pipeline_ex.errors import PipelineExError, PluginError, StepFailedError
from pipeline_ex.runtime import Runtime

__all__ = ["PipelineExError", "PluginError", "Runtime", "StepFailedError"]
__version__ = "0.1.0"

# A library leaves logging to the application (and to the CLI, which sets up its own
# handler): without this, Python's last-resort handler printed every warning to stderr,
# and a second time once the application configured logging.
logging.getLogger(__name__).addHandler(logging.NullHandler())
