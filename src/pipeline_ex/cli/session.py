"""Building the Runtime a command works on, and closing it whatever happens.

Every command gets a fresh Runtime (the composition root) and shuts its plugins down on the
way out.  Plugin load failures are turned into one warning line each; the plugin machinery
also logs them, so its loggers are held back while the Runtime starts, to avoid saying it
twice (``-v`` lets both through).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline_ex import Runtime
from pipeline_ex.cli.errors import warn_plugin_failure
from pipeline_ex.cli.logs import verbose_enabled

#: The loggers that recount each load failure as it happens (the manager, the guard that
#: caught the exception, the registry logging the status change); the CLI prints one
#: ``warning [code]`` line per failure instead.  Other plugin warnings (e.g. a plugin
#: declaring no api_version) still show.
FAILURE_LOGGERS = (
    "pipeline_ex.plugins.manager",
    "pipeline_ex.plugins.guard",
    "pipeline_ex.plugins.registry",
)


@contextmanager
def _quiet_plugin_logs() -> Iterator[None]:
    if verbose_enabled():
        yield  # verbose: the user asked to see the machinery's own account
        return
    loggers = [logging.getLogger(name) for name in FAILURE_LOGGERS]
    previous = [each.level for each in loggers]
    for each in loggers:
        each.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for each, level in zip(loggers, previous, strict=True):
            each.setLevel(level)


@contextmanager
def open_runtime(
    plugins: Path | None = None,
    *,
    mode: str | None = None,
    mock_responses: Path | None = None,
    warn: bool = True,
) -> Iterator[Runtime]:
    """A started Runtime; ``warn`` prints one line per plugin that failed to load.

    A ``--mock-responses`` file that the mock providers refuse is the user's input error:
    the Runtime raises it (``mock_responses_invalid``, exit 2) instead of warning.
    """
    with _quiet_plugin_logs():
        runtime = Runtime(
            plugin_config=plugins,
            mode=mode,
            mock_responses=mock_responses,
        )
    try:
        if warn:
            for name, error in runtime.load_report.failed.items():
                warn_plugin_failure(name, error)
        yield runtime
    finally:
        runtime.close()
