"""One JSON document on stdout, the form every ``--json`` option prints.

Apart from :mod:`pipeline_ex.cli.render` (rich tables) so that ``steps --json`` and
``providers --json`` import neither rich nor typer: on a UTF-8 stream click's ``echo``
writes the text and a newline to that same stream and flushes (JSON escapes the control
characters whose ANSI sequences it would strip), which is what :func:`print_json` does
itself; any other stream (another encoding, Windows consoles) still goes through click's
encoding fix-ups.
"""

from __future__ import annotations

import codecs
import os
import sys
from typing import Any

from pipeline_ex import results_json


def _utf8(stream: Any) -> bool:
    try:
        name = codecs.lookup(getattr(stream, "encoding", None) or "").name
    except LookupError:
        return False
    return name == "utf-8"


def print_json(data: Any) -> None:
    """One strict JSON document on stdout (``results_json``): values JSON cannot encode
    are written as strings, non-finite numbers as ``null``; a value too deeply nested to
    encode is a ``result_not_encodable`` error, not a traceback."""
    text = results_json.dumps(data)
    stream = sys.stdout
    if os.name == "posix" and stream is not None and _utf8(stream):
        stream.write(text + "\n")
        stream.flush()
        return
    import typer  # click's echo: the encoding fix-ups, then flush

    typer.echo(text)
