"""Typed errors as HTTP answers: the CLI's exit-code classes, mapped to status codes.

A client of the server branches on the same things a script branches on with the CLI: the
stable ``code`` of the error and its class, which ``exit_code`` carries exactly as
``pipeline-ex`` would exit (see :mod:`pipeline_ex.cli.errors`).  The HTTP status follows
from the class:

* exit 2 (the request was unusable, nothing ran) -> **400**; a plugin name nobody loaded
  (``not_loaded``) -> **404**;
* exit 1 (the work itself failed): a step failed -> **422** with the results of the steps
  before it; a plugin still needed by others (``in_use``) -> **409**; any other typed
  failure (a plugin that would not reload) -> **422**; ``already_loaded`` -> **409**;
* anything untyped is a bug of ours -> **500** with code ``internal`` and no traceback.

The server's own refusals (body too large, too many runs, a run over its time) are made by
:func:`refusal` with their own codes and statuses.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pipeline_ex.cli.errors import EXIT_FAILED, EXIT_INVALID, exit_code_for
from pipeline_ex.errors import DocumentError, PipelineExError, StepFailedError

logger = logging.getLogger(__name__)

#: Codes whose HTTP status says more than their exit class.
STATUS_BY_CODE: Mapping[str, int] = {"not_loaded": 404, "in_use": 409, "already_loaded": 409}


def status_for(exc: BaseException) -> int:
    if not isinstance(exc, PipelineExError):
        return 500
    if exc.code in STATUS_BY_CODE:
        return STATUS_BY_CODE[exc.code]
    return 400 if exit_code_for(exc) == EXIT_INVALID else 422


def error_body(exc: BaseException) -> dict[str, Any]:
    """``{"error": {...}}``: code, message, exit_code, and what the error type adds."""
    if not isinstance(exc, PipelineExError):
        logger.error("unexpected error while serving a request", exc_info=exc)
        return {
            "error": {
                "code": "internal",
                "message": f"{type(exc).__name__} (see the server's log)",
                "exit_code": EXIT_FAILED,
            }
        }
    error: dict[str, Any] = {
        "code": exc.code,
        "message": exc.message,
        "exit_code": exit_code_for(exc),
    }
    if isinstance(exc, DocumentError):
        error["problems"] = [
            {
                "message": p.message,
                "file": p.location.file,
                "path": p.location.path,
                "line": p.location.line,
            }
            for p in exc.problems
        ]
    body: dict[str, Any] = {"error": error}
    if isinstance(exc, StepFailedError):
        error.update(
            step=exc.step_name, type=exc.step_type, reason=exc.reason, cause=exc.cause_code
        )
        body["results"] = exc.results  # what ran before the failing step, as `run --json`
    return body


def refusal(code: str, message: str, *, exit_code: int = EXIT_INVALID) -> dict[str, Any]:
    """The body of a refusal made by the server itself (limits, auth, routing)."""
    return {"error": {"code": code, "message": message, "exit_code": exit_code}}
