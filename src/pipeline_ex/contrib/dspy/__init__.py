"""The DSPy plugin (``dspy_plugin``, the seed's ``Pipeline.Plugins.DSPyPlugin``).

Importing this package does not import DSPy (seconds of start-up): the plugin's ``init``
does, so only a config that names the plugin pays for it.  Install with
``pip install 'pipeline-ex[dspy]'``.
"""

from pipeline_ex.contrib.dspy.plugin import DSPyPlugin

__all__ = ["DSPyPlugin"]
