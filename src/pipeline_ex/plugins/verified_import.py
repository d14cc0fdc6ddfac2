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
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from importlib.machinery import EXTENSION_SUFFIXES, ExtensionFileLoader
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from pipeline_ex.errors import PluginError
from pipeline_ex.plugins.isolation.verified_sources import IMPORTS, VerifiedSources

if TYPE_CHECKING:
    from pipeline_ex.plugins import signing

__all__ = [
    "IMPORTS",
    "VerifiedSources",
    "directory_sources",
    "distribution_sources",
    "serve",
    "sources_of",
    "token_of",
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


def sources_of(
    distribution: str,
    verification: signing.Verification,
    *,
    trusted: Callable[[str], signing.Verification | None],
) -> dict[str, VerifiedSources]:
    """Sources (not in force) for a verified distribution, by served name, with what the
    distributions it shares top-level names with ship there.

    Only what ``trusted`` (another distribution's verification by the config's trusted
    keys, or ``None``) vouches for counts, and only its hashed files: an unsigned RECORD,
    or an unhashed row, could declare any planted file "theirs" and so pass it on to be
    imported from disk.  A package such a distribution ships as a regular one, that this
    one ships modules into, is served from that distribution's verified bytes too, under
    its token (not imported from disk).  Each other distribution is verified once."""
    from pipeline_ex.plugins import signing

    mine = signing.normal_name(distribution)
    shared: dict[str, frozenset[str]] = {}
    elsewhere: set[str] = set()
    parents: dict[str, VerifiedSources] = {}
    vouched: dict[str, tuple[signing.Verification, dict[str, VerifiedSources]] | None] = {}
    for name, names in owners().items():
        others = [d for d in names if signing.normal_name(d) != mine]
        if not others or len(others) == len(names):
            continue  # not ours, or ours alone
        for other in others:
            if other not in vouched:
                result = trusted(other)
                vouched[other] = (
                    None
                    if result is None
                    else (
                        result,
                        distribution_sources(
                            result.files,
                            signing.installed_at(other),
                            token=token_of(result.manifest),
                        ),
                    )
                )
        theirs = [entry for entry in (vouched[other] for other in others) if entry is not None]
        modules, packages = foreign_modules(name, [list(v.files) for v, _ in theirs])
        shared[name] = modules
        regular = {f"{name}/{p}" if p else name for p in packages}
        elsewhere.update(regular)
        for _, their_sources in theirs:
            for folder in regular:
                dotted = folder.replace("/", ".")
                if dotted in their_sources and not their_sources[dotted].namespace:
                    parents.setdefault(dotted, their_sources[dotted])
    sources = distribution_sources(
        verification.files,
        signing.installed_at(distribution),
        token=token_of(verification.manifest),
        shared=shared,
        packages_elsewhere=frozenset(elsewhere),
    )
    for dotted, served in parents.items():
        sources.setdefault(dotted, served)
    return sources


def distribution_sources(
    verified: Mapping[str, bytes],
    root: Path,
    *,
    token: str = "",
    shared: Mapping[str, frozenset[str]] | None = None,
    packages_elsewhere: frozenset[str] = frozenset(),
) -> dict[str, VerifiedSources]:
    """Sources (not in force) for the packages and modules of a verified distribution, by
    the name each is served under, from ``verified`` (RECORD path -> bytes, relative to
    ``root``, the folder the distribution is installed in).

    Only Python sources are kept (a native extension is loaded from its file; data is read
    from disk).  Every package on the way to a verified module is served, so none of its
    code comes from disk: a folder without ``__init__.py`` as a namespace package (no code;
    its ``__path__`` gathers every folder of that name, so another distribution's
    ``acme.other`` is still found, and an ``__init__.py`` planted in ours never runs); a
    top-level package named in ``shared`` (other installed distributions ship files under
    it too: the modules they ship, by name) from our bytes, leaving those modules to the
    other finders and refusing any other name it does not hold.
    A top-level module in ``shared`` is not served (another distribution's copy would be
    replaced for the whole process).  Files outside ``root`` are never served."""
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
    _claim(tree, "", "", root, token, shared or {}, packages_elsewhere, sources)
    return sources


def _claim(
    tree: Mapping[str, bytes],
    prefix: str,
    dotted: str,
    root: Path,
    token: str,
    shared: Mapping[str, frozenset[str]],
    elsewhere: frozenset[str],
    sources: dict[str, VerifiedSources],
) -> None:
    """Serve what lies under folder ``prefix`` (import name ``dotted``) of ``tree``.

    ``elsewhere``: folders (``a/b``) that a trusted distribution ships as a regular
    package: not served as a namespace here (that one serves it, or it is a dependency)."""
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
        if f"{inside}__init__.py" in tree:
            files = {
                rel[len(inside) :]: data for rel, data in tree.items() if rel.startswith(inside)
            }
            sources[name] = VerifiedSources(
                name,
                files,
                root / inside,
                root_file="__init__.py",
                token=token,
                strict=not (not dotted and folder in shared),
                foreign=shared.get(folder, frozenset()) if not dotted else frozenset(),
            )
        else:  # a namespace package: served without code, what is ours within too
            if inside.rstrip("/") not in elsewhere:
                native = {
                    rel[len(inside) :]: data
                    for rel, data in tree.items()
                    if rel.startswith(inside)
                    and "/" not in rel[len(inside) :]
                    and rel.endswith(tuple(EXTENSION_SUFFIXES))
                }
                sources[name] = VerifiedSources(
                    name, native, root / inside, token=token, strict=False, namespace=True
                )
            _claim(tree, inside, f"{name}.", root, token, shared, elsewhere, sources)
    for module, data in modules.items():
        name = f"{dotted}{module}"
        if name not in sources and not (not dotted and module in shared):
            sources[name] = VerifiedSources(
                name, {f"{module}.py": data}, root / prefix, root_file=f"{module}.py", token=token
            )


def owners() -> Mapping[str, list[str]]:
    """``importlib.metadata.packages_distributions()`` (top-level name -> distributions),
    kept while ``sys.path`` and its folders are unchanged: it reads every installed
    distribution (~150 ms here) and a signed load asks twice."""
    global _OWNERS
    key = tuple((entry, _mtime(entry)) for entry in sys.path)
    if _OWNERS is None or _OWNERS[0] != key:
        from importlib.metadata import packages_distributions

        _OWNERS = (key, packages_distributions())
    return _OWNERS[1]


def _mtime(entry: str) -> int:
    try:
        return os.stat(entry or ".").st_mtime_ns
    except OSError:
        return 0


_OWNERS: tuple[tuple[tuple[str, int], ...], Mapping[str, list[str]]] | None = None


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
    # Held first, then checked: an import from disk in another thread can no longer
    # slip in between.
    IMPORTS.hold(sources, sources)
    for served in sources:
        stale = _imported_otherwise(served)
        if stale is not None:
            IMPORTS.release(sources)
            raise PluginError(
                f"plugin {plugin!r}: module {stale} is already imported in this process from "
                "other bytes than the verified files of its distribution (from disk, by a "
                "plugin loaded without a signature policy, or an earlier verified version); "
                "a verified import needs a process where it is not",
                code="signature_invalid",
                plugin=plugin,
            )


def _imported_otherwise(served: VerifiedSources) -> str | None:
    if served.namespace:  # only the namespace itself is its own: the rest is others'
        module = sys.modules.get(served.package)
        if module is not None and not _served_alike(module, served):
            return served.package
        return None
    prefix = served.package + "."
    for name, module in list(sys.modules.items()):
        if not (name == served.package or name.startswith(prefix)):
            continue
        if _served_alike(module, served):
            continue
        covering = IMPORTS.covering(name)
        if (
            covering is not None
            and len(covering.package) > len(served.package)
            and getattr(getattr(module, "__spec__", None), "loader", None) is covering
        ):
            continue  # a module another verified distribution ships into this package
        return name
    return None


def _served_alike(module: ModuleType, served: VerifiedSources) -> bool:
    spec = getattr(module, "__spec__", None)
    loader = getattr(spec, "loader", None)
    if served.namespace:  # a namespace package (no code), not a regular one planted
        return getattr(spec, "origin", None) is None or (
            isinstance(loader, VerifiedSources) and loader.namespace
        )
    if isinstance(loader, ExtensionFileLoader):
        # one of the verified extensions (hash-checked; it cannot be imported twice)
        origin = os.path.realpath(getattr(spec, "origin", "") or "")
        return any(
            os.path.realpath(served.filename_of(rel)) == origin
            for rel in served.files
            if rel.endswith(tuple(EXTENSION_SUFFIXES))
        )
    if not isinstance(loader, VerifiedSources):
        return False
    if served.token and loader.token:
        return loader.token == served.token
    return loader.files == served.files


def let_go(sources: Iterable[VerifiedSources]) -> None:
    """The holder ``sources`` (a tuple ``serve`` put in force) needs them no more."""
    IMPORTS.release(sources)


def foreign_modules(
    top: str, file_lists: Iterable[Iterable[str]]
) -> tuple[frozenset[str], frozenset[str]]:
    """What other distributions ship under ``top``, from their file lists (RECORD paths),
    relative to it: the modules (``sub/mod`` for ``top/sub/mod.py`` or a native extension,
    ``sub`` for a subpackage), and the folders that are regular packages there (``""`` for
    ``top`` itself, ``sub`` for ``top/sub/__init__.py``).  Pass only files a verified
    signature covers: what an unsigned RECORD (or an unhashed row) says proves nothing."""
    suffixes = (".py", *EXTENSION_SUFFIXES)
    names: set[str] = set()
    packages: set[str] = set()
    for files in file_lists:
        for path in files:
            parts = tuple(path.split("/"))
            if not parts or parts[0] != top:
                continue
            last = parts[-1]
            suffix = next((x for x in suffixes if last.endswith(x)), None)
            if suffix is None or len(parts) < 2:
                continue
            inner = [*parts[1:-1], last[: -len(suffix)]]
            if inner[-1] == "__init__":
                inner.pop()
                packages.add("/".join(inner))
            for depth in range(1, len(inner) + 1):
                names.add("/".join(inner[:depth]))
    return frozenset(names), frozenset(packages)
