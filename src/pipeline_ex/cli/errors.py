"""Exit codes and error reporting: the one place where exceptions become exit statuses.

Scripts branch on the exit status and on the ``[code]`` printed with every error, never on
message text, so both are part of the CLI's contract:

* 0: success.
* 1: the work itself failed: a step failed, a plugin failed to load in ``plugins check``,
  or an unexpected internal error.
* 2: the request was unusable and nothing ran: bad flags, a malformed/invalid workflow or
  plugin config, an unknown step type or provider, or live mode without its API key
  (``provider_not_configured``, a set-up error like a missing flag).

Commands raise; :func:`guarded` catches at the top, prints ``error [code]: ...`` on stderr and
returns the exit status.  That keeps tracebacks away from users in exactly one spot.  Both
ways into a command go through it: typer's (:class:`pipeline_ex.cli.group.PipelineExGroup`)
and the direct one that skips typer (:mod:`pipeline_ex.cli.direct`); so this module does not
import typer until it has something to print.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable

from pipeline_ex import interrupts
from pipeline_ex.cli.logs import verbose_enabled
from pipeline_ex.errors import (
    DocumentError,
    InvalidInputError,
    PipelineExError,
    PluginError,
    ProviderConfigurationError,
    StepFailedError,
    UnknownComponentError,
)

logger = logging.getLogger("pipeline_ex.cli")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_INTERRUPTED = 130


def exit_code_for(exc: BaseException) -> int:
    """1 when work failed, 2 when the input (or set-up) made it impossible to start."""
    if isinstance(exc, InvalidInputError | ProviderConfigurationError | UnknownComponentError):
        return EXIT_INVALID
    if isinstance(exc, PluginError) and exc.code == "not_loaded":
        return EXIT_INVALID  # ``plugins info NAME`` with a name nobody loaded
    return EXIT_FAILED


def error_lines(exc: BaseException) -> list[str]:
    """``error [code]: ...`` lines; a document error gives one line per problem."""
    if isinstance(exc, DocumentError) and exc.problems:
        return [f"[{exc.code}]: {problem}" for problem in exc.problems]
    if isinstance(exc, StepFailedError):
        cause = exc.cause_code
        suffix = f" (cause: {cause})" if cause and cause != "step_reported_failure" else ""
        return [f"[{exc.code}]: {exc.message}{suffix}"]
    if isinstance(exc, PipelineExError):
        return [f"[{exc.code}]: {exc.message}"]
    return [f"[internal]: {type(exc).__name__}: {exc} (run with -v for the traceback)"]


def emit(kind: str, text: str) -> None:
    """Write one ``kind [code]: ...`` line to stderr, coloured only on a terminal."""
    import typer  # click's echo decides about colour; only paid when there is a line

    colour = "red" if kind == "error" else "yellow"
    typer.echo(typer.style(kind, fg=colour, bold=True) + " " + text, err=True)


def report(exc: BaseException) -> int:
    """Print ``exc`` for a human and return the exit status it maps to."""
    if not isinstance(exc, PipelineExError):
        logger.info("unexpected error", exc_info=exc)
    for line in error_lines(exc):
        emit("error", line)
    cause = exc.__cause__
    if isinstance(exc, StepFailedError) and cause is not None and verbose_enabled():
        # What the step's plugin code raised, and where (-v): the one line above says what.
        import typer

        typer.echo("".join(traceback.format_exception(cause)).rstrip(), err=True)
    return exit_code_for(exc)


def warn_plugin_failure(name: str, error: PluginError) -> None:
    """A plugin that did not load is worth a line, not a stop: the rest may still work.

    With ``-v`` the plugin's own traceback follows (the guard keeps it on the error), since
    "init raised KeyError: 'x'" rarely says where."""
    message = error.message if name in error.message else f"plugin {name!r}: {error.message}"
    emit("warning", f"[{error.code}]: {message}")
    if error.traceback and verbose_enabled():
        import typer

        typer.echo(error.traceback, err=True)


def report_interrupt() -> int:
    emit("error", "[interrupted]: stopped by the user (Ctrl-C); plugins were shut down")
    return EXIT_INTERRUPTED


def guarded(command: Callable[[], int]) -> int:
    """Run ``command`` and return its exit status, or the one its exception maps to.

    Ctrl-C is recorded as the user's for the duration, so that a ``KeyboardInterrupt``
    raised by plugin code fails only that plugin's call while the user's stops the host.
    """
    restore = interrupts.install()
    try:
        return command()
    except KeyboardInterrupt:
        return report_interrupt()
    except BrokenPipeError:
        return EXIT_FAILED
    except Exception as exc:  # the last line of defence: never a traceback
        return report(exc)
    finally:
        restore()
