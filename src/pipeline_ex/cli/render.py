"""Everything the CLI prints on stdout: JSON documents and rich tables.

Kept apart from the commands so that each command reads as "ask the Runtime, render the
answer", and so that the JSON shapes (a contract for scripts) live in one file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pipeline_ex import results_json
from pipeline_ex.cli.json_output import print_json as print_json  # where callers look

if TYPE_CHECKING:
    from pipeline_ex.cli.tracker import StepRecord
    from pipeline_ex.errors import StepFailedError

PREVIEW_WIDTH = 60
STATUS_STYLES = {
    "ok": "green",
    "active": "green",
    "skipped": "yellow",
    "disabled": "yellow",
    "available": "cyan",
    "degraded": "yellow",
    "loading": "yellow",
    "failed": "red",
    "running": "red",
}


#: Width for stdout that is not a terminal (a pipe, a file): tables are only as wide as their
#: content, so this just stops rich from folding cells to its 80-column default.
PIPE_WIDTH = 160


def stdout_console() -> Console:
    """A console bound to the *current* ``sys.stdout`` (test runners swap it per call).

    ``COLUMNS`` still wins, as rich documents; only its 80-column guess for pipes is
    replaced, because folded cells break ``grep``.
    """
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console = Console(highlight=False, soft_wrap=False, width=PIPE_WIDTH)
    return console


def failed_run(error: StepFailedError) -> dict[str, Any]:
    """``run --json`` when a step failed: what ran before it, and the typed error (the
    exit status stays 1, and stderr still carries ``error [step_failed]: ...``)."""
    return {
        "results": error.results,
        "error": {
            "code": error.code,
            "message": error.message,
            "step": error.step_name,
            "type": error.step_type,
            "reason": error.reason,
            "cause": error.cause_code,
        },
    }


def _status(text: str) -> Text:
    return Text(text, style=STATUS_STYLES.get(text, ""))


def preview(result: Any, width: int = PREVIEW_WIDTH) -> str:
    """A one-line glimpse of a step result: its text, or what kind of result it is."""
    text: str
    if isinstance(result, Mapping):
        if result.get("skipped"):
            text = str(result.get("reason") or "skipped")
        elif "text" in result:
            text = str(result["text"])
        elif "iterations" in result:
            count = result.get("count", len(result["iterations"]))
            text = f"{count} iteration(s)"
        elif isinstance(result.get("variables"), Mapping):
            text = ", ".join(f"{k}={v!r}" for k, v in result["variables"].items())
        elif not result.get("success", True) and result.get("error"):
            text = str(result["error"])
        else:
            text = _compact(result)
    elif isinstance(result, str):
        text = result
    else:
        text = _compact(result)
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= width else text[: width - 1] + "…"


def _compact(result: Any) -> str:
    try:
        return results_json.dumps(result, indent=None)
    except results_json.ResultEncodingError:
        return "(too deeply nested to show)"


def _cost(result: Any) -> float:
    if isinstance(result, Mapping):
        try:
            return float(result.get("cost") or 0.0)
        except (TypeError, ValueError):
            return 0.0
    return 0.0


def results_table(
    workflow: str,
    steps: Iterable[StepRecord],
    results: Mapping[str, Any],
    mode: str,
    width: int = 80,
    failure: str | None = None,
) -> Table:
    """One row per top-level step, fitting ``width``: the preview is the part that gives
    way on a narrow terminal, so names, types and statuses stay whole and rows stay single
    lines.  ``failure`` is the preview of a failed step that left no result (it raised)."""
    records = list(steps)
    name_width = _widest(r.name for r in records)
    type_width = _widest(r.type for r in records)
    # 5 columns: 6 borders + 2 spaces of padding each; status 7 and time 6 characters.
    room = max(16, min(PREVIEW_WIDTH, width - name_width - type_width - 7 - 6 - 16))
    table = Table(title=f"{workflow} ({mode} mode)", title_justify="left")
    table.add_column("step", no_wrap=True, min_width=name_width, overflow="ellipsis")
    table.add_column("type", no_wrap=True, min_width=type_width, overflow="ellipsis")
    table.add_column("status", no_wrap=True, min_width=7)
    table.add_column("time", justify="right", no_wrap=True, min_width=6)
    table.add_column("preview", no_wrap=True, overflow="ellipsis")
    for record in records:
        seconds = "" if record.seconds is None else f"{record.seconds:.2f}s"
        if record.name in results:
            shown = preview(results[record.name], room)
        elif record.status == "failed" and failure:
            shown = preview(failure, room)
        else:
            shown = ""
        table.add_row(
            Text(record.name), Text(record.type), _status(record.status), seconds, Text(shown)
        )
    done = sum(1 for r in records if r.status == "ok")
    skipped = sum(1 for r in records if r.status == "skipped")
    failed = sum(1 for r in records if r.status == "failed")
    cost = sum(_cost(results.get(r.name)) for r in records)
    counts = f"{done} ran, " + (f"{failed} failed, " if failed else "") + f"{skipped} skipped"
    table.caption = f"{counts}, cost ${cost:.4f}"
    table.caption_justify = "left"
    return table


def _widest(values: Iterable[str], cap: int = 28) -> int:
    return min(cap, max((len(v) for v in values), default=4))


def steps_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="step types", title_justify="left")
    table.add_column("type", no_wrap=True)
    table.add_column("plugin", no_wrap=True)
    table.add_column("description")
    for row in rows:
        table.add_row(Text(row["name"]), Text(row["plugin"]), Text(row["description"]))
    return table


def providers_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="providers", title_justify="left")
    table.add_column("provider", no_wrap=True)
    table.add_column("plugin", no_wrap=True)
    table.add_column("capabilities")
    for row in rows:
        table.add_row(Text(row["name"]), Text(row["plugin"]), Text(", ".join(row["capabilities"])))
    return table


def components_text(components: Mapping[str, list[str]], sep: str = ", ") -> str:
    parts = []
    for key, label in (
        ("step_types", "step"),
        ("providers", "provider"),
        ("schema_extensions", "schema ext"),
    ):
        count = len(components.get(key, []))
        if count:
            parts.append(f"{count} {label}{'s' if count != 1 else ''}")
    return sep.join(parts) or "-"


def plugins_table(rows: list[dict[str, Any]], width: int = PIPE_WIDTH) -> Table:
    """Name (with its origin beneath when there is room: the one cell allowed to fold),
    then short fixed columns; failures carry only their code here, the full message goes
    below the table (see ``plugin_errors``) so that it is never folded."""
    show_origin = width >= 120
    table = Table(title="plugins", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("plugin / origin" if show_origin else "plugin", overflow="fold")
    table.add_column("version", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("components", no_wrap=True)
    table.add_column("load ms", justify="right", no_wrap=True)
    table.add_column("error", no_wrap=True)
    for row in rows:
        load = row.get("load_time_ms")
        cell = Text(str(row["name"]), style="bold")
        if show_origin:
            cell.append("\n" + str(row.get("origin") or ""), style="dim")
        table.add_row(
            cell,
            Text(row.get("version") or "-"),
            _status(str(row["status"])),
            components_text(row.get("components") or {}, sep="\n"),
            "" if load is None else f"{load:.2f}",
            Text(row.get("error_code") or "", style="red"),
        )
    return table


def plugin_errors(rows: list[dict[str, Any]]) -> list[Text]:
    """One unfolded line per failed plugin: ``name [code]: message``."""
    lines = []
    for row in rows:
        if row.get("error_code"):
            line = Text(f"{row['name']!s} ", style="bold")
            line.append(f"[{row['error_code']}]", style="red")
            line.append(f": {row.get('last_error') or ''}")
            lines.append(line)
    return lines


def plugin_info_table(summary: Mapping[str, Any], stats: Mapping[str, Any]) -> Table:
    """Every field of a plugin's record, one per row, lists spelled out."""
    table = Table(title=f"plugin {summary['name']}", title_justify="left", show_header=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")

    def listed(values: Iterable[Any]) -> str:
        return ", ".join(str(v) for v in values) or "-"

    components = summary.get("components") or {}
    rows: list[tuple[str, Any]] = [
        ("name", summary["name"]),
        ("version", summary.get("version") or "-"),
        ("status", _status(str(summary["status"]))),
        ("origin", summary.get("origin") or "-"),
        *([("distribution", summary["distribution"])] if summary.get("distribution") else []),
        ("description", summary.get("description") or "-"),
        ("dependencies", listed(summary.get("dependencies") or [])),
        ("capabilities", listed(summary.get("capabilities") or [])),
        ("permissions", listed(summary.get("permissions") or [])),
        *([("signature", summary["signature"])] if summary.get("signature") else []),
        (
            "isolation",
            " + ".join([str(summary.get("isolation") or "in_process"), *summary.get("layers", [])]),
        ),
        ("step types", listed(components.get("step_types", []))),
        ("providers", listed(components.get("providers", []))),
        ("schema extensions", listed(components.get("schema_extensions", []))),
        (
            "load time",
            "-" if summary.get("load_time_ms") is None else f"{summary['load_time_ms']:.2f} ms",
        ),
        ("loaded at", summary.get("loaded_at") or "-"),
        ("calls / errors", f"{stats.get('calls', 0)} / {stats.get('errors', 0)}"),
        ("error code", summary.get("error_code") or "-"),
        ("last error", summary.get("last_error") or "-"),
        *([("traceback", summary["traceback"])] if summary.get("traceback") else []),
    ]
    for field, value in rows:
        table.add_row(field, value if isinstance(value, Text) else Text(str(value)))
    return table
