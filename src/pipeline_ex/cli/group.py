"""The typer side of the CLI's error policy: usage errors, and every command run guarded.

:func:`pipeline_ex.cli.errors.guarded` holds the policy (exceptions to ``error [code]: ...``
and exit statuses); this adds what only typer's way in can raise: click-style usage errors,
``Abort`` and ``Exit``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import typer
import typer.core

from pipeline_ex.cli.errors import EXIT_INVALID, EXIT_OK, emit, guarded, report_interrupt


def _report_usage(exc: typer.TyperException) -> int:
    """Click-style usage errors (Typer's vendored click) in the ``error [usage]`` format."""
    ctx: Any = getattr(exc, "ctx", None)
    if ctx is not None:
        typer.echo(ctx.get_usage(), err=True)
        typer.echo(f"Try '{ctx.command_path} --help' for help.", err=True)
    emit("error", f"[usage]: {exc.format_message()}")
    return int(getattr(exc, "exit_code", EXIT_INVALID))


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
        def attempt() -> int:
            try:
                outcome = super(PipelineExGroup, self).main(
                    args,
                    prog_name,
                    complete_var,
                    standalone_mode=False,
                    windows_expand_args=windows_expand_args,
                    **extra,
                )
            except typer.TyperException as exc:  # usage errors: bad flags, missing files
                return _report_usage(exc)
            except typer.Abort:
                return report_interrupt()
            except typer.Exit as exc:
                return exc.exit_code
            return outcome if isinstance(outcome, int) else EXIT_OK

        code = guarded(attempt)
        if standalone_mode:
            sys.exit(code)
        return code

    def invoke(self, ctx: Any) -> Any:
        """Typer turns a KeyboardInterrupt into a silent exit 130: say what happened first
        (the Runtime's ``with`` block has shut the plugins down on the way here)."""
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            report_interrupt()
            raise
