"""Exit codes and error reporting: the one place where exceptions become exit statuses.

Scripts branch on the exit status and on the ``[code]`` printed with every error, never on
message text, so both are part of the CLI's contract:

* 0: success.
* 1: the work itself failed: a step failed, a plugin failed to load in ``plugins check``,
  or an unexpected internal error.
* 2: the request was unusable and nothing ran: bad flags, a malformed/invalid workflow or
  plugin config, an unknown step type or provider, or live mode without its API key
  (``provider_not_configured``, a set-up error like a missing flag).

Commands raise; :class:`PipelineExGroup` catches at the top, prints ``error [code]: ...`` on
stderr and exits.  That keeps tracebacks away from users in exactly one spot.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Sequence
from typing import Any

import typer
import typer.core

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
        typer.echo("".join(traceback.format_exception(cause)).rstrip(), err=True)
    return exit_code_for(exc)


def warn_plugin_failure(name: str, error: PluginError) -> None:
    """A plugin that did not load is worth a line, not a stop: the rest may still work.

    With ``-v`` the plugin's own traceback follows (the guard keeps it on the error), since
    "init raised KeyError: 'x'" rarely says where."""
    message = error.message if name in error.message else f"plugin {name!r}: {error.message}"
    emit("warning", f"[{error.code}]: {message}")
    if error.traceback and verbose_enabled():
        typer.echo(error.traceback, err=True)


def _report_usage(exc: typer.TyperException) -> int:
    """Click-style usage errors (Typer's vendored click) in the ``error [usage]`` format."""
    ctx: Any = getattr(exc, "ctx", None)
    if ctx is not None:
        typer.echo(ctx.get_usage(), err=True)
        typer.echo(f"Try '{ctx.command_path} --help' for help.", err=True)
    emit("error", f"[usage]: {exc.format_message()}")
    return int(getattr(exc, "exit_code", EXIT_INVALID))


def _report_interrupt() -> int:
    emit("error", "[interrupted]: stopped by the user (Ctrl-C); plugins were shut down")
    return EXIT_INTERRUPTED


class PipelineExGroup(typer.core.TyperGroup):
    """Runs every command in non-standalone mode so that errors come back here.

    Click and Typer each print errors in their own format and let other exceptions escape
    as tracebacks; overriding ``main`` gives one format (``error [code]: ...``) and one
    exit-code policy for usage errors, document errors, step failures and bugs alike.
    """

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        # Ctrl-C is recorded as the user's, so that a KeyboardInterrupt raised by plugin
        # code fails only that plugin's call while the user's stops the host.
        restore = interrupts.install()
        try:
            outcome = super().main(
                args,
                prog_name,
                complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
            code = outcome if isinstance(outcome, int) else EXIT_OK
        except typer.TyperException as exc:  # usage errors: bad flags, missing files
            code = _report_usage(exc)
        except (typer.Abort, KeyboardInterrupt):
            code = _report_interrupt()
        except typer.Exit as exc:
            code = exc.exit_code
        except BrokenPipeError:
            code = EXIT_FAILED
        except Exception as exc:  # the last line of defence: never a traceback
            code = report(exc)
        finally:
            restore()
        if standalone_mode:
            sys.exit(code)
        return code

    def invoke(self, ctx: Any) -> Any:
        """Typer turns a KeyboardInterrupt into a silent exit 130: say what happened first
        (the Runtime's ``with`` block has shut the plugins down on the way here)."""
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            _report_interrupt()
            raise
