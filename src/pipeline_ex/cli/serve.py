"""``pipeline-ex serve``: one Runtime kept loaded and served over HTTP until SIGTERM/Ctrl-C.

Only typer and the shared options are imported here; the server package (Starlette,
uvicorn) is imported when the command runs, so the other commands never pay for it and a
missing ``serve`` extra is a clear error instead of an ImportError.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipeline_ex.cli.options import ModeOption, PluginsOption
from pipeline_ex.cli.session import open_runtime
from pipeline_ex.errors import InvalidInputError
from pipeline_ex.server.settings import (
    DEFAULT_BODY_TIMEOUT_S,
    DEFAULT_GRACE_S,
    DEFAULT_HOST,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONCURRENT_RUNS,
    DEFAULT_PORT,
    DEFAULT_RUN_TIMEOUT_S,
    ServerSettings,
)

if TYPE_CHECKING:
    from types import ModuleType

#: The distributions the ``serve`` extra installs, by the module name they provide.
SERVE_EXTRA_MODULES = ("starlette", "uvicorn")


def _serving_module() -> ModuleType:
    """``pipeline_ex.server.serving``, or an error naming the extra to install (exit 2)."""
    try:
        from pipeline_ex.server import serving
    except ImportError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing not in SERVE_EXTRA_MODULES:
            raise
        raise InvalidInputError(
            f"pipeline-ex serve needs the 'serve' extra ({missing} is not installed): "
            "pip install 'pipeline-ex[serve]'",
            code="extra_missing",
        ) from None
    return serving


def serve(
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to listen on; keep 127.0.0.1 unless a proxy "
            "in front of it handles who may connect.",
        ),
    ] = DEFAULT_HOST,
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="TCP port; 0 picks a free one.")
    ] = DEFAULT_PORT,
    plugins: PluginsOption = None,
    mode: ModeOption = None,
    admin_token_file: Annotated[
        Path | None,
        typer.Option(
            "--admin-token-file",
            metavar="FILE",
            dir_okay=False,
            help="Enable POST /plugins/NAME/reload|unload|load for requests with "
            "'Authorization: Bearer TOKEN' (the file's content; it must not be readable "
            "by other users). Without it those endpoints do not exist.",
            show_default=False,
        ),
    ] = None,
    max_body_bytes: Annotated[
        int, typer.Option("--max-body-bytes", min=1, help="Largest POST /runs body (413 above).")
    ] = DEFAULT_MAX_BODY_BYTES,
    run_timeout_s: Annotated[
        float,
        typer.Option("--run-timeout-s", help="Longest a POST /runs waits for its run (504 after)."),
    ] = DEFAULT_RUN_TIMEOUT_S,
    body_timeout_s: Annotated[
        float,
        typer.Option(
            "--body-timeout-s",
            help="Longest a POST /runs body may take to arrive (408 after); no run slot is "
            "held meanwhile.",
        ),
    ] = DEFAULT_BODY_TIMEOUT_S,
    max_concurrent_runs: Annotated[
        int,
        typer.Option(
            "--max-concurrent-runs", min=1, help="Runs at once; more are refused with 429."
        ),
    ] = DEFAULT_MAX_CONCURRENT_RUNS,
    grace_s: Annotated[
        float,
        typer.Option(
            "--grace-s", help="On SIGTERM/Ctrl-C, how long running runs may take to finish."
        ),
    ] = DEFAULT_GRACE_S,
) -> None:
    """Serve one Runtime over HTTP: status page, metrics, health, plugins and runs.

    GET / (status page), /metrics (Prometheus), /healthz, /plugins, /plugins/NAME, /runs;
    POST /runs (a workflow as YAML or JSON). Binds 127.0.0.1 by default. SIGTERM or
    Ctrl-C stops admitting runs (503, /healthz too), lets running runs finish within
    --grace-s, then shuts the plugins down (dependents first) and exits 0. Exit 2 on a
    bad option, a token file others can read, an address in use, or a missing 'serve'
    extra.
    """
    token = None
    if admin_token_file is not None:
        from pipeline_ex.server.auth import read_token_file

        token = read_token_file(admin_token_file)
    settings = ServerSettings(
        host=host,
        port=port,
        max_body_bytes=max_body_bytes,
        run_timeout_s=run_timeout_s,
        body_timeout_s=body_timeout_s,
        max_concurrent_runs=max_concurrent_runs,
        grace_s=grace_s,
        admin_token=token,
    )
    serving = _serving_module()
    with open_runtime(plugins, mode=mode.value if mode else None) as runtime:
        admin = "on" if settings.admin_enabled else "off"

        def announce(url: str) -> None:
            typer.echo(
                f"pipeline-ex serve: listening on {url} (mode {runtime.mode}, admin endpoints "
                f"{admin}); SIGTERM or Ctrl-C stops",
                err=True,
            )

        outcome = serving.serve(runtime, settings, announce=announce)
        stopped = f" ({', '.join(outcome.signals)})" if outcome.signals else ""
        cut = f"; {outcome.runs_stopped} run(s) stopped unfinished" if outcome.runs_stopped else ""
        typer.echo(f"pipeline-ex serve: stopping{stopped}{cut}; shutting plugins down", err=True)
    typer.echo("pipeline-ex serve: stopped", err=True)
