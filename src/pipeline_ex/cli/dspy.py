"""``pipeline-ex dspy ...``: the DSPy plugin's commands (compile now, the compile cache).

``optimize`` loads the plugin config like ``run`` does, compiles the workflow's DSPy steps
with the configured optimizer, and prints the metric on each step's held-out examples before
and after, so "optimized" is a measured claim.  ``cache list|clear`` work on the plugin's
``cache_dir`` (from ``--plugins``, else ``.pipeline_ex/dspy_cache`` under the working
directory) and never import DSPy.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TaskID, TextColumn
from rich.progress import Progress as RichProgress
from rich.table import Table

from pipeline_ex import Runtime
from pipeline_ex.cli import render
from pipeline_ex.cli.options import JsonOption, ModeOption, PluginsOption
from pipeline_ex.cli.session import open_runtime
from pipeline_ex.errors import InvalidInputError, PluginError

dspy_app = typer.Typer(
    help="DSPy plugin: compile a workflow's DSPy steps now, manage the compile cache.",
    invoke_without_command=True,
)
cache_app = typer.Typer(help="The DSPy compile cache.", invoke_without_command=True)
dspy_app.add_typer(cache_app, name="cache")

PLUGIN = "dspy_plugin"


@dspy_app.callback()
def dspy_root(ctx: typer.Context) -> None:
    """Without a subcommand, show the help (exit 0)."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


@cache_app.callback()
def cache_root(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


def _state(runtime: Runtime) -> Any:
    """The loaded DSPy plugin's state, or a typed error saying why there is none."""
    failed = runtime.load_report.failed.get(PLUGIN)
    if failed is not None:
        raise PluginError(f"{PLUGIN} failed to load: {failed.message}", code=failed.code)
    record = runtime.plugins.registry.get(PLUGIN)
    if record is None:
        raise InvalidInputError(
            f"{PLUGIN} is not loaded: give a plugin config that names it (--plugins FILE, "
            "module: Pipeline.Plugins.DSPyPlugin)",
            code="dspy_plugin_not_loaded",
        )
    return record.state


class _Bar:
    """The rich progress bar ``optimize`` shows on stderr (when it is a terminal)."""

    def __init__(self, console: Console) -> None:
        self.progress = RichProgress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        self.task: TaskID | None = None

    def begin(self, target: Any, phase: str, total: int | None) -> None:
        labels = {
            "before": "held-out metric, before",
            "compile": "compiling",
            "after": "held-out metric, after",
        }
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(f"{target.name}: {labels[phase]}", total=total)

    def advance(self) -> None:
        if self.task is not None:
            self.progress.advance(self.task)


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _outcomes_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="DSPy optimization (metric on held-out examples)", title_justify="left")
    for column in ("step", "provider", "optimizer", "train", "held out", "before", "after"):
        table.add_column(column, justify="right" if column in ("train", "held out") else "left")
    table.add_column("demos", justify="right")
    table.add_column("LM calls", justify="right")
    table.add_column("note")
    for row in rows:
        table.add_row(
            row["step"],
            row["provider"],
            row["optimizer"] or "-",
            str(row["train_size"]),
            str(row["holdout_size"]),
            _figure(row["metric_before"]),
            _figure(row["metric_after"]),
            str(row["num_demos"]),
            str(row["lm_calls"]),
            row["reason"] or ("" if row["status"] == "optimized" else row["status"]),
        )
    return table


@dspy_app.command("optimize")
def optimize(
    workflow: Annotated[Path, typer.Argument(help="Workflow YAML with DSPy steps.")],
    step: Annotated[
        str | None,
        typer.Option("--step", help="Only this step (or STEP.LINK of a dspy_chain)."),
    ] = None,
    plugins: PluginsOption = None,
    mode: ModeOption = None,
    json_output: JsonOption = False,
) -> None:
    """Compile the workflow's DSPy steps now (replacing cached programs) and print the
    metric on each step's held-out training examples before and after."""
    from pipeline_ex.contrib.dspy.measure import optimize as optimize_target
    from pipeline_ex.contrib.dspy.measure import targets
    from pipeline_ex.workflow.context import PROVIDER_NAMES

    with open_runtime(plugins, mode=mode.value if mode else None) as runtime:
        state = _state(runtime)
        document = runtime.validate(workflow)
        found = targets(document.data["workflow"], state, step)
        run_mode = runtime.mode
        console = Console(stderr=True)
        bar = _Bar(console)
        rows = []
        with bar.progress:
            for target in found:
                name = PROVIDER_NAMES.get((target.family, run_mode), target.family)
                provider = runtime.providers.get(name)
                check = getattr(provider, "preflight", None)
                if callable(check):
                    check()
                outcome = optimize_target(target, state, provider, name, run_mode, bar)
                rows.append(outcome.as_dict())
    if json_output:
        render.print_json(rows)
        return
    render.stdout_console().print(_outcomes_table(rows))


def _cache(plugins: Path | None, cache_dir: Path | None) -> Any:
    from pipeline_ex.contrib.dspy.cache import CompileCache
    from pipeline_ex.contrib.dspy.settings import DEFAULT_CACHE_DIR

    if cache_dir is not None:
        return CompileCache(cache_dir)
    if plugins is None:
        return CompileCache(Path.cwd() / DEFAULT_CACHE_DIR)
    with open_runtime(plugins) as runtime:
        return CompileCache(_state(runtime).settings.cache_dir)


CacheDirOption = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        file_okay=False,
        help="The cache folder (default: the plugin config's cache_dir, else "
        ".pipeline_ex/dspy_cache).",
    ),
]


@cache_app.command("list")
def cache_list(
    plugins: PluginsOption = None, cache_dir: CacheDirOption = None, json_output: JsonOption = False
) -> None:
    """The compiled programs in the cache, newest first."""
    cache = _cache(plugins, cache_dir)
    now = time.time()
    rows = [
        {
            "key": entry.key,
            "step": entry.meta.get("step"),
            "provider": entry.meta.get("provider"),
            "optimizer": entry.meta.get("optimizer"),
            "module": entry.meta.get("module"),
            "num_demos": entry.meta.get("num_demos"),
            "train_size": entry.meta.get("train_size"),
            "age_hours": round(entry.age(now) / 3600, 2),
            "path": str(entry.path),
        }
        for entry in cache.entries()
    ]
    if json_output:
        render.print_json(rows)
        return
    console = render.stdout_console()
    if not rows:
        console.print(f"no compiled programs in {cache.directory}")
        return
    table = Table(title=f"DSPy compile cache: {cache.directory}", title_justify="left")
    for column in ("key", "step", "provider", "optimizer", "module", "demos", "train", "age"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["key"][:12],
            str(row["step"]),
            str(row["provider"]),
            str(row["optimizer"]),
            str(row["module"]),
            str(row["num_demos"]),
            str(row["train_size"]),
            f"{row['age_hours']:.1f} h",
        )
    console.print(table)


@cache_app.command("clear")
def cache_clear(plugins: PluginsOption = None, cache_dir: CacheDirOption = None) -> None:
    """Remove every compiled program (the next runs compile again)."""
    cache = _cache(plugins, cache_dir)
    removed = cache.clear()
    typer.echo(f"removed {removed} compiled program(s) from {cache.directory}")
