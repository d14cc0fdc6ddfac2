"""The ``pipeline-ex`` commands: each one asks a Runtime and renders the answer.

No command knows a step type, a provider or a file format by name; they all go through
:class:`pipeline_ex.Runtime`, so a plugin's components appear here without CLI changes.
Errors are raised, not printed: :class:`pipeline_ex.cli.group.PipelineExGroup` turns them
into ``error [code]: ...`` and the exit status.  The plainest forms of ``steps`` and
``providers`` are also answered without typer (:mod:`pipeline_ex.cli.direct`); both ways run
the same functions (:mod:`pipeline_ex.cli.listings`).
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from pipeline_ex import __version__
from pipeline_ex.cli import listings, render
from pipeline_ex.cli.dspy import dspy_app
from pipeline_ex.cli.errors import EXIT_OK
from pipeline_ex.cli.group import PipelineExGroup
from pipeline_ex.cli.logs import configure_logging
from pipeline_ex.cli.options import JsonOption, LogFormat, ModeOption, PluginsOption, parse_inputs
from pipeline_ex.cli.plugins import plugins_app
from pipeline_ex.cli.progress import StepProgress
from pipeline_ex.cli.serve import serve
from pipeline_ex.cli.session import open_runtime
from pipeline_ex.cli.tracker import RunTracker, fan_out
from pipeline_ex.errors import StepFailedError

HELP = """Run pipeline_ex YAML AI workflows; every step type and provider comes from a plugin.

Exit status: **0** success; **1** a step failed (for `plugins check`: a plugin failed to
load); **2** invalid input: bad usage, malformed YAML, schema or semantic errors, an unknown
step type or provider, or live mode without its API key (`provider_not_configured`, a set-up
error: nothing ran). Errors go to stderr as `error [code]: message`.
"""

app = typer.Typer(
    name="pipeline-ex",
    cls=PipelineExGroup,
    help=HELP,
    invoke_without_command=True,
    rich_markup_mode="markdown",
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(plugins_app, name="plugins")
app.add_typer(dspy_app, name="dspy")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pipeline-ex {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def root(
    ctx: typer.Context,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            help="More log output on stderr: -v for INFO, -vv for DEBUG.",
        ),
    ] = 0,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    log_format: Annotated[
        LogFormat,
        typer.Option(
            "--log-format",
            envvar="PIPELINE_EX_LOG_FORMAT",
            case_sensitive=False,
            help="Log records on stderr as text, or as one JSON object per line (with "
            "plugin, component, workflow, step and run_id).",
        ),
    ] = LogFormat.text,
) -> None:
    """Set up logging once, before any command builds a Runtime that logs."""
    configure_logging(verbose, log_format.value)
    if ctx.invoked_subcommand is None:  # bare ``pipeline-ex``: help, and not an error
        typer.echo(ctx.get_help())
        raise typer.Exit(EXIT_OK)


@app.command()
def run(
    workflow: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, readable=True, help="The workflow YAML file."),
    ],
    mode: ModeOption = None,
    json_output: JsonOption = False,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir",
            file_okay=False,
            help="Where output_to_file writes (default: the workflow's output_dir, inside "
            "the workflow's folder, else ./outputs).",
            show_default=False,
        ),
    ] = None,
    inputs: Annotated[
        list[str] | None,
        typer.Option(
            "--input",
            "-i",
            metavar="KEY=VALUE",
            help="Value for {{inputs.KEY}}; repeatable. VALUE is parsed as JSON "
            "when it can be (3, true, [1,2]), else kept as text.",
        ),
    ] = None,
    plugins: PluginsOption = None,
    mock_responses: Annotated[
        Path | None,
        typer.Option(
            "--mock-responses",
            exists=True,
            dir_okay=False,
            metavar="FILE",
            help="Mock reply fixtures: {claude: {pattern: reply}, gemini: {...}, '*': {...}}.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run a workflow and print each step's outcome (or the results as JSON).

    Exit 0 on success, 1 when a step fails (the error names the step and its type), 2 when
    the workflow is invalid or live mode is not configured (missing API key).
    """
    values = parse_inputs(inputs or [])
    err = Console(stderr=True, highlight=False)
    with open_runtime(
        plugins, mode=mode.value if mode else None, mock_responses=mock_responses
    ) as runtime:
        tracker = RunTracker()
        display = StepProgress(err) if err.is_terminal else None
        sink = fan_out(tracker.on_event, display.on_event if display else None)
        document = runtime.validate(workflow)
        name = str(document.data["workflow"].get("name") or workflow.stem)
        try:
            with display if display is not None else nullcontext():
                results = runtime.run(
                    document,
                    inputs=values,
                    output_dir=output_dir,
                    on_event=sink,
                    source="cli",
                )
        except StepFailedError as exc:
            tracker.mark_failed()
            if json_output:
                render.print_json(render.failed_run(exc))
            else:
                reason = exc.reason
                if exc.step_name not in tracker.steps:  # a nested step failed
                    reason = f"step {exc.step_name!r}: {reason}"
                _print_summary(name, tracker, exc.results, runtime.mode, failure=reason)
            raise
    if json_output:
        render.print_json(results)
    else:
        _print_summary(name, tracker, results, runtime.mode)


def _print_summary(
    name: str,
    tracker: RunTracker,
    results: dict[str, Any],
    mode: str,
    failure: str | None = None,
) -> None:
    console = render.stdout_console()
    console.print(
        render.results_table(
            name, tracker.steps.values(), results, mode, width=console.width, failure=failure
        )
    )


@app.command()
def validate(
    workflow: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, readable=True, help="The workflow YAML file."),
    ],
    plugins: PluginsOption = None,
) -> None:
    """Check a workflow without running it: YAML, schema (with plugin extensions), semantics.

    Exit 0 when valid; 2 with every problem found, each as file:line at path: message.
    """
    with open_runtime(plugins) as runtime:
        document = runtime.validate(workflow)
    data = document.data["workflow"]
    typer.echo(
        f"valid: {workflow} (workflow {data.get('name')!r}, {len(data['steps'])} top-level steps)"
    )


@app.command()
def steps(plugins: PluginsOption = None, json_output: JsonOption = False) -> None:
    """List the registered step types and the plugin that owns each."""
    listings.list_steps(plugins, json_output)


@app.command()
def providers(plugins: PluginsOption = None, json_output: JsonOption = False) -> None:
    """List the registered providers with their capabilities and owning plugin."""
    listings.list_providers(plugins, json_output)


@app.command()
def schema(plugins: PluginsOption = None) -> None:
    """Print the compiled workflow JSON Schema: the base plus every plugin's extensions."""
    with open_runtime(plugins) as runtime:
        compiled = runtime.configuration.compiled_schema()
    typer.echo(json.dumps(compiled, indent=2, ensure_ascii=False))


@app.command()
def convert(
    source: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            metavar="IN",
            help=".yaml/.yml or .json input.",
        ),
    ],
    target: Annotated[
        Path, typer.Argument(dir_okay=False, metavar="OUT", help=".json or .yaml/.yml output.")
    ],
    schema_file: Annotated[
        Path | None,
        typer.Option(
            "--schema",
            exists=True,
            dir_okay=False,
            metavar="FILE",
            help="JSON Schema (JSON or YAML) the data must match.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Convert YAML to JSON or JSON to YAML, by file extension, preserving types.

    Exit 2 when the input does not parse, does not match --schema, or cannot be
    represented in the target format.
    """
    # Lazy: the bridge is a plugin module; other commands must not pay for importing it.
    from pipeline_ex.builtin.json_yaml_bridge import convert_file
    from pipeline_ex.documents import load_yaml_file, require_mapping

    loaded = None
    if schema_file is not None:
        loaded = dict(require_mapping(load_yaml_file(schema_file), "a JSON Schema"))
    convert_file(source, target, schema=loaded)
    typer.echo(f"converted {source} -> {target}")


app.command()(serve)


def main() -> None:
    """Console-script entry point (``pipeline-ex``)."""
    app()
