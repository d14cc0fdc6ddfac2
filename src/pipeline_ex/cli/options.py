"""Options shared by several commands, and the parsing of ``--input K=V``.

Declaring ``--plugins``, ``--mode`` and ``--json`` once keeps their names, environment variables and
help text identical across commands, which is what users learn them by.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer


class Mode(enum.StrEnum):
    """Run modes; mirrors ``pipeline_ex.workflow.context.MODES``."""

    mock = "mock"
    live = "live"


class LogFormat(enum.StrEnum):
    """``--log-format``: how log records are written on stderr."""

    text = "text"
    json = "json"


PluginsOption = Annotated[
    Path | None,
    typer.Option(
        "--plugins",
        envvar="PIPELINE_EX_PLUGINS",
        metavar="FILE",
        dir_okay=False,
        help="plugin_config.yaml to load after the built-in plugins.",
        show_default=False,
    ),
]

ModeOption = Annotated[
    Mode | None,
    typer.Option(
        "--mode",
        envvar="PIPELINE_EX_MODE",
        case_sensitive=False,
        help="mock (deterministic, offline; the default) or live (real APIs).",
        show_default=False,
    ),
]

JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print machine-readable JSON on stdout instead of a table."),
]


def parse_value(text: str) -> Any:
    """JSON when it parses (``3``, ``true``, ``["a","b"]``), the plain string otherwise.

    Conditions such as ``inputs.count > 2`` and loops over ``{{inputs.items}}`` need real
    numbers and lists; anything that is not valid JSON (``hello world``) stays text, so the
    common case needs no quoting.
    """
    try:
        return json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):  # not JSON, or nested too deep to be an input
        return text


def _no_constant(name: str) -> Any:
    """NaN and Infinity are not JSON: refusing them keeps ``--json`` output valid JSON."""
    raise ValueError(name)


def parse_inputs(pairs: Iterable[str]) -> dict[str, Any]:
    """``["k=v", ...]`` -> ``{"k": parsed v}``; the last occurrence of a key wins."""
    inputs: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="'--input'")
        inputs[key] = parse_value(value)
    return inputs
