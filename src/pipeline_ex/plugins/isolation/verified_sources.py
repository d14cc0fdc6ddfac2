"""Modules served from the bytes a signature check verified, never read from disk again.

Verifying files and then letting the import system read them again leaves a window in
which a file can be swapped, and the import system would also run a planted ``.pyc``
instead of the signed source.  ``VerifiedSources`` is a meta path finder and loader that
serves one package (a directory plugin's private package, or a signed distribution's
top-level package or module under its own name) from a mapping ``relative path -> bytes``:
modules are compiled from those bytes, no bytecode cache is read or written, and a module
that was not in the verified set cannot be imported under the package.  A native extension
of a signed distribution (hash-checked too) is loaded from its file, there being no other
way; package data (``importlib.resources``) is read from the package's folder.

It lives in the isolation package because an isolated plugin's child imports only this
package: the host hands the verified bytes to the child in its bootstrap frame
(``as_wire`` / ``from_wire``), and the child serves its plugin from them as the host does
in-process.  Standard library only, and light: the child's start-up pays for every import.
"""

from __future__ import annotations

import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES, ExtensionFileLoader, ModuleSpec

#: The child imports this module: ``typing`` (~5 ms at start-up) and ``importlib.abc``
#: (which brings ``importlib.resources``) are for the type checker only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from importlib.abc import Loader as _Loader
    from pathlib import Path
    from types import ModuleType
    from typing import Any
else:
    _Loader = object


class VerifiedSources(_Loader):
    """Serves ``package`` and its submodules from ``files`` (posix paths relative to
    ``directory``, the folder the package's files are in).

    ``root_file`` is the package's (or single module's) own code in ``files``:
    ``__init__.py`` for a distribution's package, ``name.py`` for its top-level module;
    ``None`` for a directory plugin's private package, which has no code of its own.
    """

    def __init__(
        self,
        package: str,
        files: Mapping[str, bytes],
        directory: str | os.PathLike[str],
        *,
        root_file: str | None = None,
    ) -> None:
        self.package = package
        self.files = dict(files)
        self.directory = os.fspath(directory)
        self.root_file = root_file

    # -- the finder ------------------------------------------------------------------------
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        rel = self._relative(fullname)
        if rel is None:
            return None
        if rel == "":
            if self.root_file is None:
                spec = ModuleSpec(fullname, self, is_package=True)
            else:
                spec = ModuleSpec(
                    fullname,
                    self,
                    origin=self._path(self.root_file),
                    is_package=self.root_file == "__init__.py",
                )
        elif f"{rel}.py" in self.files:
            spec = ModuleSpec(fullname, self, origin=self._path(f"{rel}.py"))
        elif f"{rel}/__init__.py" in self.files:
            spec = ModuleSpec(
                fullname, self, origin=self._path(f"{rel}/__init__.py"), is_package=True
            )
        else:
            return self._extension_spec(fullname, rel)
        if spec.submodule_search_locations is not None:
            # Nothing on disk is searched: only verified modules exist under the package.
            spec.submodule_search_locations = []
        return spec

    def _relative(self, fullname: str) -> str | None:
        if fullname == self.package:
            return ""
        if fullname.startswith(self.package + "."):
            return fullname[len(self.package) + 1 :].replace(".", "/")
        return None

    def _path(self, rel: str) -> str:
        return os.path.join(self.directory, *rel.split("/"))

    def _extension_spec(self, fullname: str, rel: str) -> ModuleSpec | None:
        """A verified native extension: loaded from its file (there is no other way)."""
        for suffix in EXTENSION_SUFFIXES:
            if f"{rel}{suffix}" in self.files:
                path = self._path(f"{rel}{suffix}")
                return ModuleSpec(fullname, ExtensionFileLoader(fullname, path), origin=path)
        return None

    # -- the loader ------------------------------------------------------------------------
    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        rel = self._relative(module.__name__)
        if rel == "":
            if self.root_file is None:
                return  # a directory plugin's private package has no code
            name = self.root_file
        else:
            assert rel is not None
            name = f"{rel}.py" if f"{rel}.py" in self.files else f"{rel}/__init__.py"
        module.__file__ = self._path(name)
        exec(compile(self.files[name], module.__file__, "exec", dont_inherit=True), vars(module))

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
        return _PackageFolder(self._path(rel) if rel else self.directory)

    # -- in force --------------------------------------------------------------------------
    def install(self) -> None:
        """First on ``sys.meta_path``, instead of any earlier finder for the same package."""
        for finder in finders_for(self.package):
            finder.uninstall()
        sys.meta_path.insert(0, self)

    def uninstall(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)

    # -- to the child ----------------------------------------------------------------------
    def as_wire(self) -> dict[str, Any]:
        """Plain data for the bootstrap frame (strings and bytes)."""
        return {
            "package": self.package,
            "directory": self.directory,
            "root_file": self.root_file,
            "files": self.files,
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> VerifiedSources:
        files = data["files"]
        if not isinstance(files, dict) or not all(
            isinstance(k, str) and isinstance(v, bytes) for k, v in files.items()
        ):
            raise ValueError("verified sources: files must map paths to bytes")
        return cls(
            str(data["package"]),
            files,
            str(data["directory"]),
            root_file=data.get("root_file"),
        )

    def size(self) -> int:
        """The bytes it serves, in all."""
        return sum(len(data) for data in self.files.values())


def finders_for(package: str) -> list[VerifiedSources]:
    """The installed finders serving ``package``."""
    return [f for f in sys.meta_path if isinstance(f, VerifiedSources) and f.package == package]


def verified_source(fullname: str) -> bytes | None:
    """The verified bytes a finder serves for module ``fullname``, if one does."""
    for finder in finders_for(fullname.split(".")[0]):
        source = finder.source_of(fullname)
        if source is not None:
            return source
    return None


class _PackageFolder:
    """The smallest ``importlib.resources`` reader: the package's files are its folder."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def files(self) -> Path:
        from pathlib import Path

        return Path(self.folder)
