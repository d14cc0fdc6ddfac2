"""Importing a signed plugin from the bytes that were verified, not from the disk again.

The finder itself is ``pipeline_ex.plugins.isolation.verified_sources.VerifiedSources``
(it lives there because an isolated plugin's child serves its plugin with it too); this
module is the host's side: which bytes of a signed distribution to serve, and under which
name.  A signed directory is served under its private package name by the loader
(``_import_from_directory``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pipeline_ex.plugins.isolation.verified_sources import (
    VerifiedSources,
    finders_for,
    verified_source,
)

__all__ = [
    "VerifiedSources",
    "directory_sources",
    "distribution_sources",
    "finders_for",
    "verified_source",
]

#: The package name an isolated child imports a directory plugin under.
CHILD_DIRECTORY_PACKAGE = "_pipeline_ex_plugin"


def distribution_sources(
    top: str, origin: Path, verified: Mapping[str, bytes], root: Path
) -> VerifiedSources | None:
    """A finder (not installed) serving the top-level package or module ``top`` of a
    verified distribution from ``verified`` (RECORD path -> bytes, paths relative to
    ``root``, the folder the distribution is installed in).  ``origin`` is the file an
    import would load.  ``None`` when that file is not among the verified sources (a
    native extension): it is then imported from its file."""
    origin, root = origin.resolve(), root.resolve()
    try:
        where = origin.relative_to(root).as_posix()
    except ValueError:
        return None
    if where not in verified or not where.endswith(".py"):
        return None
    if origin.name == "__init__.py":
        prefix = where[: -len("__init__.py")]
        files = {
            rel[len(prefix) :]: data for rel, data in verified.items() if rel.startswith(prefix)
        }
        return VerifiedSources(top, files, origin.parent, root_file="__init__.py")
    return VerifiedSources(
        top, {origin.name: verified[where]}, origin.parent, root_file=origin.name
    )


def directory_sources(
    package: str, verified: Mapping[str, bytes], directory: Path
) -> VerifiedSources:
    """A finder (not installed) serving a verified plugin directory's Python files under
    ``package`` (the directory's other files stay where they are: data)."""
    files = {rel: data for rel, data in verified.items() if rel.endswith(".py")}
    return VerifiedSources(package, files, directory)
