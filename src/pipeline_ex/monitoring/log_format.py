"""How log records are written: text with the run's context, or one JSON object a line.

Both read the fields ``log_context.ContextFilter`` puts on each record (``plugin``,
``component``, ``workflow``, ``step``, ``run_id``).  The text form appends the ones that
are set (``[plugin=core_steps step=review]``), so a plain ``-v`` line stays short outside
a run; the JSON form always carries all of them (``null`` when unknown), for log shippers.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from pipeline_ex.monitoring.log_context import FIELDS

TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"


class ContextTextFormatter(logging.Formatter):
    """``LEVEL logger: message [plugin=... step=...]``."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = " ".join(
            f"{name}={value}"
            for name in FIELDS
            if name != "run_id" and (value := getattr(record, name, None)) is not None
        )
        return f"{text} [{context}]" if context else text


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the context fields, and
    the formatted exception when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            document[name] = getattr(record, name, None)
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str, ensure_ascii=False)
