"""stdlib logging for the CLI: records go to stderr, WARNING unless ``-v``/``-vv``.

Every record carries the plugin, component, workflow and step it was logged under
(``pipeline_ex.monitoring.log_context``); ``--log-format json`` writes one JSON object per
record instead of text.

The handler looks up ``sys.stderr`` on every record instead of capturing it once, because
test runners (and anything embedding the CLI) swap the stream between invocations; it is
installed once per process and only its level changes afterwards.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from pipeline_ex.monitoring.log_context import ContextFilter
from pipeline_ex.monitoring.log_format import TEXT_FORMAT, ContextTextFormatter, JsonFormatter

FORMAT = TEXT_FORMAT
LOG_FORMATS = ("text", "json")


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


def configure_logging(verbose: int, log_format: str = "text") -> None:
    """Route log records to stderr at the level ``-v`` asks for, as text or JSON
    (idempotent).

    Only the root logger and the CLI's own handler are touched, never the ``pipeline_ex``
    loggers, so an embedding application (or a test's ``caplog``) keeps control of those.
    """
    root = logging.getLogger()
    handler = _handler()
    if handler is None:
        handler = StderrHandler()
        handler.addFilter(ContextFilter())
        root.addHandler(handler)
    handler.setFormatter(JsonFormatter() if log_format == "json" else ContextTextFormatter())
    level = level_for(verbose)
    handler.setLevel(level)
    if root.level == logging.NOTSET or root.level > level:
        root.setLevel(level)


def verbose_enabled() -> bool:
    """Whether the user asked (``-v``) to see INFO records on stderr."""
    handler = _handler()
    return handler is not None and handler.level <= logging.INFO
