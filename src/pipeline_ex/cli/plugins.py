"""``pipeline-ex plugins ...``: what is loaded, in what state, and whether a config works.

Each command starts a Runtime (built-ins, then ``--plugins``) and reads the plugin
manager's records, so what is shown is what a ``run`` with the same flags would get.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline_ex import Runtime
from pipeline_ex.cli import render
from pipeline_ex.cli import signing as signing_commands
from pipeline_ex.cli.errors import EXIT_FAILED, warn_plugin_failure
from pipeline_ex.cli.options import JsonOption, PluginsOption
from pipeline_ex.cli.scaffold import new_plugin
from pipeline_ex.cli.session import open_runtime
from pipeline_ex.cli.status import status
from pipeline_ex.errors import PluginError
from pipeline_ex.plugins.discovery import EntryPointInfo, distribution_info

plugins_app = typer.Typer(
    help="Inspect loaded plugins and check plugin config files.",
    invoke_without_command=True,
)
signing_commands.register(plugins_app)


@plugins_app.callback()
def plugins_root(ctx: typer.Context) -> None:
    """Without a subcommand, show the help (exit 0) rather than a usage error."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


def _disabled_rows(runtime: Runtime) -> list[dict[str, Any]]:
    """Configured but ``enabled: false``: never loaded, so the manager has no record."""
    config = runtime.plugin_config
    if config is None:
        return []
    return [
        {
            "name": spec.name,
            "version": None,
            "status": "disabled",
            "origin": spec.origin,
            "components": {},
            "load_time_ms": None,
            "last_error": None,
            "error_code": None,
        }
        for spec in config.specs
        if not spec.enabled and spec.name not in runtime.plugins.registry
    ]


def _rows(runtime: Runtime) -> list[dict[str, Any]]:
    return [r.summary() for r in runtime.plugins.list_plugins()] + _disabled_rows(runtime)


def _available_row(entry: EntryPointInfo) -> dict[str, Any]:
    """An installed plugin nobody loaded: what its entry point and distribution metadata
    say, without importing its code."""
    dist = distribution_info(entry.distribution)
    return {
        "name": entry.name,
        "version": None,
        "status": "available",
        "origin": f"entry_point:{entry.value}",
        "distribution": None if dist is None else f"{dist.name} {dist.version}",
        "description": "" if dist is None else dist.summary,
        "components": {},
        "load_time_ms": None,
        "last_error": None,
        "error_code": None,
    }


def _available_rows(runtime: Runtime) -> list[dict[str, Any]]:
    """Installed entry points that are neither configured nor loaded (``--available``)."""
    configured = {s.name for s in runtime.plugin_config.specs} if runtime.plugin_config else set()
    index = runtime.plugins.loader.entry_points
    return [
        _available_row(entry)
        for name, entry in sorted(index.entries().items())
        if name not in configured and name not in runtime.plugins.registry
    ]


@plugins_app.command("list")
def list_plugins(
    plugins: PluginsOption = None,
    json_output: JsonOption = False,
    available: Annotated[
        bool,
        typer.Option(
            "--available",
            help="Also list installed plugins (entry points) that are not configured; "
            "their code is not imported.",
        ),
    ] = False,
) -> None:
    """List every plugin (built-in and configured): version, status, origin, components,
    load time, and the error code of those that failed; with --available, installed
    plugins that are not configured too (status "available")."""
    with open_runtime(plugins, warn=False) as runtime:
        rows = _rows(runtime)
        if available:
            rows += _available_rows(runtime)
    if json_output:
        render.print_json(rows)
        return
    console = render.stdout_console()
    console.print(render.plugins_table(rows, width=console.width))
    for line in render.plugin_errors(rows):
        console.print(line, soft_wrap=True)


@plugins_app.command("info")
def info(
    name: Annotated[str, typer.Argument(help="Plugin name, as in `plugins list`.")],
    plugins: PluginsOption = None,
    json_output: JsonOption = False,
) -> None:
    """Everything known about one plugin: metadata, components, load time, last error.

    An installed plugin that is not loaded (an entry point nobody configured) is shown
    from its entry point and distribution metadata, without importing it. Exit 2 when no
    plugin of that name was loaded, attempted or installed.
    """
    with open_runtime(plugins, warn=False) as runtime:
        try:
            summary = runtime.plugins.get_plugin(name).summary()
        except PluginError as exc:
            entry = runtime.plugins.loader.entry_points.get(name)
            if exc.code != "not_loaded" or entry is None:
                raise
            summary = _available_row(entry)
        snapshot = runtime.monitoring.plugin(name)
        stats = snapshot.as_dict() if snapshot is not None else {}
    if json_output:
        render.print_json({**summary, "stats": stats})
    else:
        render.stdout_console().print(render.plugin_info_table(summary, stats))


def _outcome_line(row: dict[str, Any]) -> str:
    name = typer.style(str(row["name"]), bold=True)
    status = row["status"]
    if status == "failed":
        return (
            f"{typer.style('✗', fg='red')} {name} failed [{row['error_code']}]: {row['last_error']}"
        )
    if status == "disabled":
        return f"{typer.style('-', fg='yellow')} {name} disabled"
    load = row.get("load_time_ms")
    timing = f" in {load:.2f} ms" if load is not None else ""
    return (
        f"{typer.style('✓', fg='green')} {name} {row.get('version') or ''} "
        f"{status}{timing} ({render.components_text(row.get('components') or {})})"
    )


@plugins_app.command("check")
def check(
    config: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            metavar="CONFIG",
            help="A plugin_config.yaml.",
        ),
    ],
    json_output: JsonOption = False,
) -> None:
    """Load every plugin of CONFIG in a scratch Runtime and report each outcome.

    Exit 0 when all configured plugins load, 1 when any fails (its error code is shown,
    e.g. validation_failed, dependency_missing), 2 when CONFIG itself is invalid.
    Built-in plugins that fail are reported as warnings; they do not change the status.
    """
    with open_runtime(config, warn=False) as runtime:
        assert runtime.plugin_config is not None  # a path was given
        configured = {spec.name for spec in runtime.plugin_config.specs}
        rows = [{**row, "configured": row["name"] in configured} for row in _rows(runtime)]
        builtin_failures = {
            name: error
            for name, error in runtime.load_report.failed.items()
            if name not in configured
        }
    mine = [row for row in rows if row["configured"]]
    failed = [row for row in mine if row["status"] == "failed"]
    if json_output:
        render.print_json({"config": str(config), "ok": not failed, "plugins": rows})
    else:
        for name, error in builtin_failures.items():
            warn_plugin_failure(name, error)
        for row in mine:
            typer.echo(_outcome_line(row))
        loaded = sum(1 for row in mine if row["status"] in ("active", "degraded"))
        disabled = sum(1 for row in mine if row["status"] == "disabled")
        typer.echo(
            f"{config}: {len(mine)} configured plugin(s): {loaded} loaded, "
            f"{len(failed)} failed, {disabled} disabled"
        )
    if failed:
        raise typer.Exit(EXIT_FAILED)


plugins_app.command("new")(new_plugin)
plugins_app.command("status")(status)
