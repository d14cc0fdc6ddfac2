"""The ``pipeline-ex`` command line: a thin shell over :class:`pipeline_ex.Runtime`.

litellm (pulled in by the DSPy plugin) downloads a model cost map at import time unless
told not to, so the offline switches are set here, before any command could import a
plugin that imports it.  ``setdefault`` keeps a user's explicit choice.

The commands (typer, rich and the Runtime behind them) are imported on first use (PEP 562):
``pipeline-ex --version`` answers without them, and ``steps`` and ``providers`` without
typer (:mod:`pipeline_ex.cli.direct`).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

#: Type checkers treat a module-level ``TYPE_CHECKING`` name as true; ``typing`` would cost
#: ``--version`` as much as everything else it does.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pipeline_ex.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point (``pipeline-ex``)."""
    if sys.argv[1:] == ["--version"]:  # the one answer that needs no command machinery
        from pipeline_ex import __version__

        sys.stdout.write(f"pipeline-ex {__version__}\n")
        return
    from pipeline_ex.cli.direct import main as run

    run()


def __getattr__(name: str) -> object:
    if name == "app":
        from pipeline_ex.cli.app import app

        globals()["app"] = app
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
