"""Importing a signed plugin from the bytes that were verified, not from the disk again.

The finder itself is ``pipeline_ex.plugins.isolation.verified_sources.VerifiedSources``
(it lives there because an isolated plugin's child serves its plugin with it too); this
module is the host's side: which bytes of a signed distribution to serve, and under which
name.  A signed directory is served under its private package name by the loader
(``_import_from_directory``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from importlib.machinery import ExtensionFileLoader
from pathlib import Path
from types import ModuleType

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
    "serve",
    "verified_source",
]

#: The package name an isolated child imports a directory plugin under.
CHILD_DIRECTORY_PACKAGE = "_pipeline_ex_plugin"


def distribution_sources(verified: Mapping[str, bytes], root: Path) -> dict[str, VerifiedSources]:
    """A finder (not installed) for each top-level package or module of a verified
    distribution, by name, serving it from ``verified`` (RECORD path -> bytes, paths
    relative to ``root``, the folder the distribution is installed in).

    Every top-level name the RECORD lists is served, not only the plugin's: a plugin that
    imports a sibling package of its distribution gets verified bytes there too.  Files
    outside ``root`` (``../`` paths: scripts, headers) and native extensions at the top
    level are not served (an extension inside a package is loaded from its file)."""
    packages: dict[str, dict[str, bytes]] = {}
    modules: dict[str, bytes] = {}
    for rel, data in verified.items():
        parts = rel.split("/")
        if ".." in parts or parts[0].endswith(_NOT_IMPORTED):
            continue
        if len(parts) == 1:
            stem, _, suffix = rel.partition(".")
            if suffix == "py" and stem.isidentifier():
                modules[stem] = data
        elif parts[0].isidentifier():
            packages.setdefault(parts[0], {})["/".join(parts[1:])] = data
    sources = {
        top: VerifiedSources(
            top,
            files,
            root / top,
            root_file="__init__.py" if "__init__.py" in files else None,
        )
        for top, files in packages.items()
    }
    for top, data in modules.items():
        if top not in sources:
            sources[top] = VerifiedSources(top, {f"{top}.py": data}, root, root_file=f"{top}.py")
    return sources


#: Top-level folders of an installation that are not import packages.
_NOT_IMPORTED = (".dist-info", ".data", ".egg-info", "__pycache__")


def directory_sources(
    package: str, verified: Mapping[str, bytes], directory: Path
) -> VerifiedSources:
    """A finder (not installed) serving a verified plugin directory's Python files under
    ``package`` (the directory's other files stay where they are: data)."""
    files = {rel: data for rel, data in verified.items() if rel.endswith(".py")}
    return VerifiedSources(package, files, directory)


def serve(sources: Iterable[VerifiedSources]) -> None:
    """Put ``sources`` in force for the import that follows, letting go of any module of
    theirs that was imported otherwise (from disk, before a signature was asked for, or
    from other bytes): a cached module would be reused as it is.  A native extension is
    kept (it was hash-checked, and cannot be imported twice anyway)."""
    for finder in sources:
        prefix = finder.package + "."
        for name, module in list(sys.modules.items()):
            if (name == finder.package or name.startswith(prefix)) and not _served_alike(
                module, finder
            ):
                del sys.modules[name]
        finder.install()


def _served_alike(module: ModuleType, finder: VerifiedSources) -> bool:
    loader = getattr(getattr(module, "__spec__", None), "loader", None)
    if isinstance(loader, ExtensionFileLoader):
        return True
    return (
        isinstance(loader, VerifiedSources)
        and loader.package == finder.package
        and loader.files == finder.files
    )
