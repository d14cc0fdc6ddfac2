"""Importing a signed plugin from the bytes that were verified, not from the disk again.

Verifying files and then letting the import system read them again leaves a window in
which a file can be swapped, and the import system would also run a planted ``.pyc``
instead of the signed source.  ``VerifiedSources`` is a meta path finder that serves one
private package (``_pipeline_ex_dirplugins.<plugin>_<digest>``) from a mapping of
``relative path -> bytes`` that signature verification produced: modules are compiled from
those bytes, no bytecode cache is read or written, and a module that was not in the
verified set cannot be imported under the package at all.

A plugin from a signed installed distribution is served the same way under its own name
(``serve_distribution``): its top-level package or module comes from the bytes the RECORD
check hashed.  A native extension of the distribution (hash-checked too) is loaded from
its file, and package data is read from the package's folder on disk.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType


class VerifiedSources(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves ``package`` and its submodules from ``files`` (posix paths relative to the
    plugin directory, as ``signing.read_directory`` returns them)."""

    def __init__(
        self,
        package: str,
        files: Mapping[str, bytes],
        directory: Path,
        *,
        root_file: str | None = None,
    ) -> None:
        self.package = package
        self.files = dict(files)
        self.directory = directory
        #: The package's (or single module's) own code in ``files``: ``__init__.py`` for a
        #: distribution's package, ``name.py`` for its top-level module, ``None`` for a
        #: directory plugin's private package (which has no code).
        self.root_file = root_file

    def _relative(self, fullname: str) -> str | None:
        if fullname == self.package:
            return ""
        if fullname.startswith(self.package + "."):
            return fullname[len(self.package) + 1 :].replace(".", "/")
        return None

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        rel = self._relative(fullname)
        if rel is None:
            return None
        if rel == "":
            if self.root_file is None:
                spec = importlib.util.spec_from_loader(fullname, self, is_package=True)
            else:
                spec = importlib.util.spec_from_loader(
                    fullname,
                    self,
                    origin=str(self.directory / self.root_file),
                    is_package=self.root_file == "__init__.py",
                )
        elif f"{rel}.py" in self.files:
            spec = importlib.util.spec_from_loader(
                fullname, self, origin=str(self.directory / f"{rel}.py")
            )
        elif f"{rel}/__init__.py" in self.files:
            spec = importlib.util.spec_from_loader(
                fullname, self, origin=str(self.directory / rel / "__init__.py"), is_package=True
            )
        else:
            return self._extension_spec(fullname, rel)
        if spec is not None and spec.submodule_search_locations is not None:
            # Nothing on disk is searched: only verified modules exist under the package.
            spec.submodule_search_locations = []
        return spec

    def _extension_spec(self, fullname: str, rel: str) -> importlib.machinery.ModuleSpec | None:
        """A verified native extension: loaded from its file (there is no other way)."""
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            if f"{rel}{suffix}" in self.files:
                path = str(self.directory / f"{rel}{suffix}")
                loader = importlib.machinery.ExtensionFileLoader(fullname, path)
                return importlib.util.spec_from_file_location(fullname, path, loader=loader)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def source_of(self, fullname: str) -> bytes | None:
        """The verified source of module ``fullname`` (``None``: not served here)."""
        rel = self._relative(fullname)
        if rel is None:
            return None
        if rel == "":
            return self.files.get(self.root_file) if self.root_file is not None else None
        return self.files.get(f"{rel}.py", self.files.get(f"{rel}/__init__.py"))

    def get_resource_reader(self, fullname: str) -> _PackageFolder:
        """Package data (``importlib.resources``) is read from the package's folder."""
        rel = self._relative(fullname) or ""
        return _PackageFolder(self.directory / rel if rel else self.directory)

    def exec_module(self, module: ModuleType) -> None:
        rel = self._relative(module.__name__)
        if rel == "":
            if self.root_file is None:
                return  # the private package itself has no code
            name = self.root_file
        else:
            assert rel is not None
            name = f"{rel}.py" if f"{rel}.py" in self.files else f"{rel}/__init__.py"
        source = self.files[name]
        module.__file__ = str(self.directory / name)
        code = compile(source, module.__file__, "exec", dont_inherit=True)
        exec(code, module.__dict__)

    def install(self) -> None:
        """First on ``sys.meta_path``, instead of any earlier finder for the same package."""
        for finder in finders_for(self.package):
            finder.uninstall()
        sys.meta_path.insert(0, self)

    def uninstall(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)


def finders_for(package: str) -> list[VerifiedSources]:
    """The installed finders serving ``package`` (for unloading)."""
    return [f for f in sys.meta_path if isinstance(f, VerifiedSources) and f.package == package]


class _PackageFolder:
    """The smallest ``importlib.resources`` reader: the package's files are its folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def files(self) -> Path:
        return self.folder


def serve_distribution(
    top: str, origin: Path, verified: Mapping[str, bytes], root: Path
) -> VerifiedSources | None:
    """Install a finder serving the top-level package or module ``top`` of a verified
    distribution from ``verified`` (RECORD path -> bytes, paths relative to ``root``, the
    folder the distribution is installed in).  ``origin`` is the file an import would
    load.  ``None`` (nothing installed) when that file is not among the verified ones,
    such as a native extension: it is then imported from disk."""
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
        finder = VerifiedSources(top, files, origin.parent, root_file="__init__.py")
    else:
        finder = VerifiedSources(
            top, {origin.name: verified[where]}, origin.parent, root_file=origin.name
        )
    finder.install()
    return finder


def verified_source(fullname: str) -> bytes | None:
    """The verified bytes a finder serves for module ``fullname``, if one does."""
    for finder in finders_for(fullname.split(".")[0]):
        source = finder.source_of(fullname)
        if source is not None:
            return source
    return None
