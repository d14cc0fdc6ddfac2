"""pipeline-ex: run pipeline_ex AI workflows in Python; every extension point is a plugin."""

from pipeline_ex.errors import PipelineExError, PluginError, StepFailedError
from pipeline_ex.runtime import Runtime

__all__ = ["PipelineExError", "PluginError", "Runtime", "StepFailedError"]
__version__ = "0.1.0"
