"""``pipeline-ex plugins status``: the monitoring snapshot as a table, JSON, or live.

The table and the JSON come from ``runtime.monitoring.snapshot()`` (the JSON is its
``as_dict()``, the document the status page serves), so the CLI keeps no numbers of its
own.  ``--watch`` re-runs the health checks and redraws every ``--interval`` seconds until
Ctrl-C; the hidden ``--count`` bounds the refreshes (tests, scripts).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from pipeline_ex.cli import render
from pipeline_ex.cli.options import JsonOption, PluginsOption
from pipeline_ex.cli.session import open_runtime
from pipeline_ex.monitoring.snapshot import MonitoringSnapshot, PluginSnapshot

if TYPE_CHECKING:
    from pipeline_ex.monitoring.service import Monitoring


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 10 else f"{value:,.1f}"


def _health(plugin: PluginSnapshot) -> Text:
    health = plugin.health
    if health.ok is None:
        return Text("-", style="dim")
    if health.ok:
        return Text("ok", style="green")
    return Text(f"failing: {health.message or ''}".rstrip(": "), style="red")


def status_table(snapshot: MonitoringSnapshot, width: int = render.PIPE_WIDTH) -> Table:
    """One row per plugin: status, version, load time, calls, errors, p50/p99 (ms, of its
    step types and providers), last error, health."""
    table = Table(
        title=f"plugins at {snapshot.taken_at:%H:%M:%S}",
        title_justify="left",
        width=width if width < render.PIPE_WIDTH else None,
    )
    for name, justify in (
        ("plugin", "left"),
        ("status", "left"),
        ("version", "left"),
        ("load ms", "right"),
        ("calls", "right"),
        ("errors", "right"),
        ("p50 ms", "right"),
        ("p99 ms", "right"),
        ("health", "left"),
        ("last error", "left"),
    ):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for plugin in snapshot.plugins:
        errors = Text(str(plugin.errors), style="red" if plugin.errors else "")
        table.add_row(
            plugin.name,
            Text(plugin.status, style=render.STATUS_STYLES.get(plugin.status, "")),
            plugin.version or "-",
            _ms(None if plugin.load_seconds is None else plugin.load_seconds * 1000),
            str(plugin.calls),
            errors,
            _ms(plugin.p50_ms),
            _ms(plugin.p99_ms),
            _health(plugin),
            Text(plugin.last_error or "-", style="red" if plugin.last_error else "dim"),
        )
    counts = snapshot.run_counts
    if any(counts.values()):
        table.caption = "runs: " + ", ".join(f"{k} {v}" for k, v in counts.items())
    return table


def status(
    plugins: PluginsOption = None,
    json_output: JsonOption = False,
    watch: Annotated[
        bool,
        typer.Option("--watch", help="Redraw (with fresh health checks) until Ctrl-C."),
    ] = False,
    interval: Annotated[
        float,
        typer.Option("--interval", min=0.05, help="Seconds between refreshes with --watch."),
    ] = 2.0,
    count: Annotated[
        int | None,
        typer.Option("--count", hidden=True, min=1, help="Stop --watch after N refreshes."),
    ] = None,
) -> None:
    """Each plugin's status, load time, calls, errors, latency (p50/p99), health and last
    error, from the Runtime's monitoring; --json prints the monitoring snapshot."""
    with open_runtime(plugins, warn=False) as runtime:
        monitoring = runtime.monitoring
        monitoring.check_health()
        if json_output and not watch:
            render.print_json(monitoring.snapshot().as_dict())
            return
        console = render.stdout_console()
        if not watch:
            console.print(status_table(monitoring.snapshot(), width=console.width))
            return
        _watch(console, runtime.monitoring, interval, count, json_output)


def _watch(
    console: Console, monitoring: Monitoring, interval: float, count: int | None, as_json: bool
) -> None:
    refreshes = 0
    try:
        if as_json:  # one JSON document per line, for tools that follow a stream
            while count is None or refreshes < count:
                if refreshes:
                    time.sleep(interval)
                    monitoring.check_health()
                line = json.dumps(monitoring.snapshot().as_dict(), allow_nan=False)
                typer.echo(line)  # one document per line (JSON Lines)
                refreshes += 1
            return
        with Live(
            status_table(monitoring.snapshot(), width=console.width),
            console=console,
            auto_refresh=False,
        ) as live:
            refreshes = 1
            while count is None or refreshes < count:
                time.sleep(interval)
                monitoring.check_health()
                live.update(status_table(monitoring.snapshot(), width=console.width))
                live.refresh()
                refreshes += 1
    except KeyboardInterrupt:  # Ctrl-C ends the watch; it is how one stops it
        return
