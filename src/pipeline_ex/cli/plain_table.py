"""The listing tables (``steps``, ``providers``) for a pipe, byte for byte as rich draws them.

Importing rich and building its console costs a ``pipeline-ex steps`` about as much as
everything else the command does apart from starting the Runtime.  When stdout is a pipe or
a file, rich draws a plain box of fixed characters: no colours, columns as wide as their
widest cell.  :func:`render` draws that box itself, but only when it is certain to match:
every cell plain printable ASCII without edge or double spaces, a UTF-8 stream, no
environment variable that changes rich's choices, and a table narrow enough that rich
would not wrap a column.  In every other case it answers None and the caller asks rich,
so the output never depends on which way was taken (a test compares the two).
"""

from __future__ import annotations

import builtins
import os
import sys
from collections.abc import Sequence
from typing import TextIO

#: The width rich is given for a pipe (``pipeline_ex.cli.render.PIPE_WIDTH``).
PIPE_WIDTH = 160

#: Variables that change what rich decides about the stream, its width or its colours.
RICH_ENVIRONMENT = (
    "COLUMNS",
    "FORCE_COLOR",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
    "JUPYTER_COLUMNS",
)


def _plain(text: str) -> bool:
    """Text rich prints unchanged in a cell: printable ASCII (one column per character),
    no leading, trailing or doubled spaces (which wrapping or cropping could touch)."""
    return text.isascii() and text.isprintable() and text == text.strip(" ") and "  " not in text


def _stream_is_plain(stream: TextIO | None) -> bool:
    if stream is None or os.name != "posix" or "idlelib" in sys.modules:
        return False
    if any(os.environ.get(name) for name in RICH_ENVIRONMENT):
        return False
    if hasattr(builtins, "get_ipython"):  # rich treats Jupyter apart
        return False
    encoding = (getattr(stream, "encoding", None) or "utf-8").lower()
    if not encoding.startswith("utf"):
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return isatty is not None and not isatty()
    except ValueError:  # a closed stream: let rich decide what to do with it
        return False


def render(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], stream: TextIO | None
) -> str | None:
    """The table as rich would print it to ``stream``, or None when that is not certain."""
    if not rows or not _stream_is_plain(stream):
        return None
    cells = [list(headers), *(list(row) for row in rows)]
    if any(len(row) != len(headers) or not all(_plain(c) for c in row) for row in cells):
        return None
    if not title or not _plain(title):
        return None
    widths = [max(len(row[i]) for row in cells) + 2 for i in range(len(headers))]
    total = sum(widths) + len(widths) + 1
    if total > PIPE_WIDTH or len(title) > total:
        return None

    def rule(left: str, fill: str, middle: str, right: str) -> str:
        return left + middle.join(fill * w for w in widths) + right

    def line(edge: str, row: Sequence[str]) -> str:
        return (
            edge + edge.join(f" {c.ljust(w - 2)} " for c, w in zip(row, widths, strict=True)) + edge
        )

    out = [
        title.ljust(total),
        rule("┏", "━", "┳", "┓"),
        line("┃", headers),
        rule("┡", "━", "╇", "┩"),
        *(line("│", row) for row in rows),
        rule("└", "─", "┴", "┘"),
    ]
    return "\n".join(out) + "\n"
