"""The ``pipeline-ex`` command line: a thin shell over :class:`pipeline_ex.Runtime`.

litellm (pulled in by the DSPy plugin) downloads a model cost map at import time unless
told not to, so the offline switches are set here, before any command could import a
plugin that imports it.  ``setdefault`` keeps a user's explicit choice.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

# Imported after the environment set-up above, on purpose.
from pipeline_ex.cli.app import app, main

__all__ = ["app", "main"]
