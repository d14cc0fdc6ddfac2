"""``steps`` and ``providers``: rows read off a started Runtime, printed as a table or JSON.

Both ways into these commands (typer's, in :mod:`pipeline_ex.cli.app`, and the direct one,
:mod:`pipeline_ex.cli.direct`) call these functions, so their output cannot drift apart.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline_ex.cli import plain_table
from pipeline_ex.cli.json_output import print_json
from pipeline_ex.cli.session import open_runtime

if TYPE_CHECKING:
    from pipeline_ex.runtime import Runtime


def step_rows(runtime: Runtime) -> list[dict[str, Any]]:
    """Each registered step type with its owning plugin and a one-line description."""
    rows: list[dict[str, Any]] = []
    for name in runtime.steps:
        handler = runtime.steps[name]
        description = getattr(handler, "description", None)
        if not isinstance(description, str):  # registered outside a plugin
            doc = (getattr(handler, "__doc__", None) or "").strip().splitlines()
            description = doc[0] if doc else ""
        rows.append({"name": name, "plugin": runtime.steps.owner(name), "description": description})
    return rows


def provider_rows(runtime: Runtime) -> list[dict[str, Any]]:
    """Each registered provider with its owning plugin and its capabilities, sorted."""
    return [
        {
            "name": name,
            "plugin": runtime.providers.owner(name),
            "capabilities": sorted(runtime.providers.capabilities(name)),
        }
        for name in runtime.providers
    ]


#: Title and column headings of each listing, as :mod:`pipeline_ex.cli.render` draws them.
STEPS_TABLE = ("step types", ("type", "plugin", "description"))
PROVIDERS_TABLE = ("providers", ("provider", "plugin", "capabilities"))


def _print_plain(layout: tuple[str, tuple[str, ...]], cells: Sequence[Sequence[str]]) -> bool:
    """Print the table without rich when :mod:`plain_table` can match rich exactly."""
    text = plain_table.render(*layout, cells, sys.stdout)
    if text is None:
        return False
    sys.stdout.write(text)
    sys.stdout.flush()
    return True


def list_steps(plugins: Path | None, json_output: bool) -> int:
    with open_runtime(plugins) as runtime:
        rows = step_rows(runtime)
    if json_output:
        print_json(rows)
        return 0
    cells = [(r["name"], r["plugin"], r["description"]) for r in rows]
    if not _print_plain(STEPS_TABLE, cells):
        from pipeline_ex.cli import render

        render.stdout_console().print(render.steps_table(rows))
    return 0


def list_providers(plugins: Path | None, json_output: bool) -> int:
    with open_runtime(plugins) as runtime:
        rows = provider_rows(runtime)
    if json_output:
        print_json(rows)
        return 0
    cells = [(r["name"], r["plugin"], ", ".join(r["capabilities"])) for r in rows]
    if not _print_plain(PROVIDERS_TABLE, cells):
        from pipeline_ex.cli import render

        render.stdout_console().print(render.providers_table(rows))
    return 0
