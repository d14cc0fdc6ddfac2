"""The plainest forms of ``pipeline-ex steps`` and ``pipeline-ex providers``, without typer.

typer converts every parameter through a pydantic ``TypeAdapter``, so any command it
dispatches first imports typer, its click and pydantic: about four times what the listing
itself costs.  The listing commands are the quick questions (and what scripts and shell
prompts ask), so :func:`parse` recognises their plainest forms, ``steps`` or ``providers``
with ``--json`` and ``--plugins FILE`` (or ``--plugins=FILE``) each at most once, and
:func:`dispatch` runs them through the same functions and the same error policy as typer's
way in (:mod:`pipeline_ex.cli.listings`, :func:`pipeline_ex.cli.errors.guarded`).

Whatever else typer would have to judge goes to typer, so help, usage errors and their
format stay in one place: ``--help``, ``-v``, an unknown, repeated or dash-led argument, a
``--plugins`` value (from the flag or ``PIPELINE_EX_PLUGINS``) that names a directory or
an unreadable file, and shell completion (``_PIPELINE_EX_COMPLETE``).
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

COMMANDS = ("steps", "providers")
PLUGINS_ENV = "PIPELINE_EX_PLUGINS"
COMPLETE_ENV = "_PIPELINE_EX_COMPLETE"


class Listing(NamedTuple):
    command: str
    plugins: Path | None
    json_output: bool


def _plugins_path(value: str) -> Path | None:
    """``value`` as the ``--plugins`` path typer would give, or None when typer would refuse
    it (a directory, an unreadable file) and should say so in its own words."""
    try:
        mode = os.stat(value).st_mode
    except OSError:
        return Path(value)  # a missing file is the Runtime's error, as through typer
    except ValueError:  # an embedded NUL byte
        return None
    if stat.S_ISDIR(mode) or not os.access(value, os.R_OK):
        return None
    return Path(value)


def parse(argv: Sequence[str], environ: Mapping[str, str]) -> Listing | None:
    """The listing ``argv`` (without the program name) asks for, or None: leave it to typer."""
    if not argv or argv[0] not in COMMANDS or environ.get(COMPLETE_ENV):
        return None
    value: str | None = None
    json_output = False
    rest = list(argv[1:])
    while rest:
        arg = rest.pop(0)
        if arg == "--json" and not json_output:
            json_output = True
        elif arg == "--plugins" and value is None and rest and rest[0][:1] not in ("", "-"):
            value = rest.pop(0)
        elif arg.startswith("--plugins=") and value is None and len(arg) > len("--plugins="):
            value = arg[len("--plugins=") :]
        else:
            return None
    if value is None:
        value = environ.get(PLUGINS_ENV) or None  # click ignores an empty variable too
    plugins = None if value is None else _plugins_path(value)
    if value is not None and plugins is None:
        return None
    return Listing(argv[0], plugins, json_output)


def dispatch(argv: Sequence[str]) -> int | None:
    """Run the listing ``argv`` asks for and return its exit status; None if typer should."""
    listing = parse(argv, os.environ)
    if listing is None:
        return None
    from pipeline_ex.cli.errors import guarded
    from pipeline_ex.cli.logs import configure_logging

    configure_logging(0)  # what the root callback does without -v

    def command() -> int:
        from pipeline_ex.cli import listings

        run = listings.list_steps if listing.command == "steps" else listings.list_providers
        return run(listing.plugins, listing.json_output)

    return guarded(command)


def main() -> None:
    code = dispatch(sys.argv[1:])
    if code is None:
        from pipeline_ex.cli.app import main as run_app

        run_app()
        return
    sys.exit(code)
