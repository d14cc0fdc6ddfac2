"""The library's loggers, all under ``pipeline_ex``, which carries a ``NullHandler``.

A library leaves logging to the application (and to the CLI, which sets up its own
handler): without the ``NullHandler``, Python's last-resort handler printed every warning
to stderr, and a second time once the application configured logging.  It is attached here,
by the first module that logs, rather than by ``import pipeline_ex``: ``logging`` (with
``re``, ``traceback`` and ``threading`` behind it) would otherwise be a third of the
package's import time.
"""

from __future__ import annotations

import logging

_ROOT = logging.getLogger("pipeline_ex")
if not any(isinstance(handler, logging.NullHandler) for handler in _ROOT.handlers):
    _ROOT.addHandler(logging.NullHandler())


def get_logger(name: str) -> logging.Logger:
    """The logger for module ``name`` (``__name__``); the package's handler is in place."""
    return logging.getLogger(name)
