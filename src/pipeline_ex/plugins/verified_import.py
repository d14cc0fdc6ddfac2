"""Importing a signed plugin from the bytes that were verified, not from the disk again.

The finder itself is ``pipeline_ex.plugins.isolation.verified_sources`` (it lives there
because an isolated plugin's child serves its plugin with it too); this module is the
host's side: which bytes of a signed distribution or directory to serve, under which names,
and when they may be put in force.  A signed directory is served under its private package
name by the loader (``_import_from_directory``).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable, Mapping
from importlib.machinery import EXTENSION_SUFFIXES, ExtensionFileLoader
from pathlib import Path
from types import ModuleType
from typing import Any

from pipeline_ex.errors import PluginError
from pipeline_ex.plugins.isolation.verified_sources import (
    IMPORTS,
    VerifiedSources,
    verified_source,
)

__all__ = [
    "IMPORTS",
    "VerifiedSources",
    "directory_sources",
    "distribution_sources",
    "serve",
    "token_of",
    "verified_source",
]

#: The package name an isolated child imports a directory plugin under.
CHILD_DIRECTORY_PACKAGE = "_pipeline_ex_plugin"
#: Top-level folders of an installation that are not import packages.
_NOT_IMPORTED = (".dist-info", ".data", ".egg-info", "__pycache__")


def token_of(manifest: Mapping[str, Any] | None) -> str:
    """What names a verification: a digest of the signed manifest's file list."""
    files = manifest.get("files") if manifest is not None else None
    text = json.dumps(files, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def distribution_sources(
    verified: Mapping[str, bytes],
    root: Path,
    *,
    token: str = "",
    shared: frozenset[str] = frozenset(),
) -> dict[str, VerifiedSources]:
    """Sources (not in force) for the packages and modules of a verified distribution, by
    the name each is served under, from ``verified`` (RECORD path -> bytes, relative to
    ``root``, the folder the distribution is installed in).

    Only Python sources are kept (a native extension is loaded from its file; data is read
    from disk).  A top-level name the distribution does not own alone is not claimed: a
    folder without ``__init__.py`` (a namespace package) and a name in ``shared`` (other
    installed distributions provide it too) are served one level down, through the
    subpackages and modules this distribution ships there, so that another distribution's
    ``acme.other`` is never refused as unverified.  Files outside ``root`` (``../`` paths:
    scripts, headers) are never served."""
    tree: dict[str, bytes] = {}
    for rel, data in verified.items():
        parts = rel.split("/")
        if ".." in parts or parts[0].endswith(_NOT_IMPORTED):
            continue
        if rel.endswith(".py"):
            tree[rel] = data
        elif rel.endswith(tuple(EXTENSION_SUFFIXES)):
            tree[rel] = b""  # known to be verified; loaded from its file
    sources: dict[str, VerifiedSources] = {}
    _claim(tree, "", "", root, token, shared, sources)
    return sources


def _claim(
    tree: Mapping[str, bytes],
    prefix: str,
    dotted: str,
    root: Path,
    token: str,
    shared: frozenset[str],
    sources: dict[str, VerifiedSources],
) -> None:
    """Serve what lies under folder ``prefix`` (import name ``dotted``) of ``tree``."""
    modules: dict[str, bytes] = {}
    folders: set[str] = set()
    for rel, data in tree.items():
        if not rel.startswith(prefix):
            continue
        head, slash, _ = rel[len(prefix) :].partition("/")
        if slash:
            folders.add(head)
        elif head.endswith(".py") and head[:-3].isidentifier():
            modules[head[:-3]] = data
    for folder in sorted(folders):
        if not folder.isidentifier():
            continue
        name = f"{dotted}{folder}"
        inside = f"{prefix}{folder}/"
        owned = f"{inside}__init__.py" in tree and not (not dotted and folder in shared)
        if owned:
            files = {
                rel[len(inside) :]: data for rel, data in tree.items() if rel.startswith(inside)
            }
            sources[name] = VerifiedSources(
                name, files, root / inside, root_file="__init__.py", token=token
            )
        else:  # a namespace, or a name others provide too: serve what is ours within
            _claim(tree, inside, f"{name}.", root, token, shared, sources)
    for module, data in modules.items():
        name = f"{dotted}{module}"
        if name not in sources and not (not dotted and module in shared):
            sources[name] = VerifiedSources(
                name, {f"{module}.py": data}, root / prefix, root_file=f"{module}.py", token=token
            )


def directory_sources(
    package: str, verified: Mapping[str, bytes], directory: Path, *, token: str = ""
) -> VerifiedSources:
    """Sources (not in force) for a verified plugin directory's Python files under
    ``package`` (the directory's other files stay where they are: data)."""
    files = {rel: data for rel, data in verified.items() if rel.endswith(".py")}
    return VerifiedSources(package, files, directory, token=token)


def serve(plugin: str, sources: tuple[VerifiedSources, ...]) -> None:
    """Put ``sources`` in force for the import that follows (held until the manager lets
    go of the tuple itself).

    A module they would serve that is already imported from elsewhere (from disk, by a
    plugin loaded without a signature policy, or from other verified bytes) would be
    reused as it is; taking it out of ``sys.modules`` would split whoever runs it from
    whoever imports it next.  So that is refused, naming the module."""
    for served in sources:
        stale = _imported_otherwise(served)
        if stale is not None:
            raise PluginError(
                f"plugin {plugin!r}: module {stale} is already imported in this process, not "
                f"from the verified files of its distribution (by a plugin loaded without "
                "a signature policy?); a verified import needs a process where it is not",
                code="signature_invalid",
                plugin=plugin,
            )
    IMPORTS.hold(sources, sources)


def _imported_otherwise(served: VerifiedSources) -> str | None:
    prefix = served.package + "."
    for name, module in list(sys.modules.items()):
        if (name == served.package or name.startswith(prefix)) and not _served_alike(
            module, served
        ):
            return name
    return None


def _served_alike(module: ModuleType, served: VerifiedSources) -> bool:
    loader = getattr(getattr(module, "__spec__", None), "loader", None)
    if isinstance(loader, ExtensionFileLoader):
        return True  # hash-checked, and it cannot be imported twice anyway
    if not isinstance(loader, VerifiedSources):
        return False
    if served.token and loader.token:
        return loader.token == served.token
    return loader.files == served.files


def let_go(sources: Iterable[VerifiedSources]) -> None:
    """The holder ``sources`` (a tuple ``serve`` put in force) needs them no more."""
    IMPORTS.release(sources)
