"""stdlib logging for the CLI: records go to stderr, WARNING unless ``-v``/``-vv``.

The handler looks up ``sys.stderr`` on every record instead of capturing it once, because
test runners (and anything embedding the CLI) swap the stream between invocations; it is
installed once per process and only its level changes afterwards.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

FORMAT = "%(levelname)s %(name)s: %(message)s"


class StderrHandler(logging.StreamHandler[TextIO]):
    """A ``StreamHandler`` always writing to the current ``sys.stderr``."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        """Ignored: the stream is always the current ``sys.stderr``."""


def level_for(verbose: int) -> int:
    if verbose >= 2:
        return logging.DEBUG
    if verbose == 1:
        return logging.INFO
    return logging.WARNING


def _handler() -> StderrHandler | None:
    return next((h for h in logging.getLogger().handlers if isinstance(h, StderrHandler)), None)


def configure_logging(verbose: int) -> None:
    """Route log records to stderr at the level ``-v`` asks for (idempotent).

    Only the root logger and the CLI's own handler are touched, never the ``pipeline_ex``
    loggers, so an embedding application (or a test's ``caplog``) keeps control of those.
    """
    root = logging.getLogger()
    handler = _handler()
    if handler is None:
        handler = StderrHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(handler)
    level = level_for(verbose)
    handler.setLevel(level)
    if root.level == logging.NOTSET or root.level > level:
        root.setLevel(level)


def verbose_enabled() -> bool:
    """Whether the user asked (``-v``) to see INFO records on stderr."""
    handler = _handler()
    return handler is not None and handler.level <= logging.INFO
