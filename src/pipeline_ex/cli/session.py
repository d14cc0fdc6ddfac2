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

#: The plugin machinery (manager, loader, guard) logs each load failure as it happens.
PLUGINS_LOGGER = "pipeline_ex.plugins"


@contextmanager
def _quiet_plugin_logs() -> Iterator[None]:
    plugins_logger = logging.getLogger(PLUGINS_LOGGER)
    if verbose_enabled():
        yield  # verbose: the user asked to see the machinery's own account
        return
    previous = plugins_logger.level
    plugins_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        plugins_logger.setLevel(previous)


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
