"""Where a document went wrong: a ``Location`` and the ``Problem`` found there.

Kept apart from :mod:`pipeline_ex.errors` (which re-exports both) so that importing the
error types does not import :mod:`dataclasses`; only code that reports document problems
pays for it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where in a document a problem is: file, path inside the document, line (1-based)."""

    file: str | None = None
    path: str = ""
    line: int | None = None

    def __str__(self) -> str:
        text = self.file or "<document>"
        if self.line is not None:
            text += f":{self.line}"
        if self.path:
            text += f" at {self.path}"
        return text


@dataclass(frozen=True)
class Problem:
    """One finding of validation: a message at a location."""

    message: str
    location: Location

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"
