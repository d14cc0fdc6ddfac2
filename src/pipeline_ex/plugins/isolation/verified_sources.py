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
            return None  # not this package's: other finders answer
        name = self._file_of(rel)
        if name is not None:
            spec = ModuleSpec(
                fullname, self, origin=self._path(name), is_package=name.endswith("__init__.py")
            )
            spec.has_location = True
        elif rel == "" or any(key.startswith(f"{rel}/") for key in self.files):
            # the package without code of its own (a directory plugin's private package,
            # or a namespace package: a folder of verified modules without __init__.py)
            spec = ModuleSpec(fullname, self, is_package=True)
        else:
            extension = self._extension_spec(fullname, rel)
            if extension is not None:
                return extension
            # Refused, not passed on: another finder would look on disk, where only the
            # files that were verified may be imported from.
            raise ModuleNotFoundError(
                f"{fullname} is not among the verified files of {self.package}", name=fullname
            )
        if spec.submodule_search_locations is not None:
            # The real folder (tools that list it, such as pkgutil, see what is there);
            # every import under it still comes here first, and is refused if unverified.
            spec.submodule_search_locations = [self._path(rel) if rel else self.directory]
        return spec

    def _relative(self, fullname: str) -> str | None:
        if fullname == self.package:
            return ""
        if fullname.startswith(self.package + "."):
            return fullname[len(self.package) + 1 :].replace(".", "/")
        return None

    def _file_of(self, rel: str) -> str | None:
        """The verified file holding module ``rel``'s code, if there is one."""
        if rel == "":
            return self.root_file
        for name in (f"{rel}.py", f"{rel}/__init__.py"):
            if name in self.files:
                return name
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
        name = self._file_of(rel) if rel is not None else None
        if name is None:
            return  # a package without code of its own
        path = self._path(name)
        module.__file__ = path
        source = self.files[name]
        _remember_lines(path, source)
        exec(compile(source, path, "exec", dont_inherit=True), vars(module))

    def source_of(self, fullname: str) -> bytes | None:
        """The verified source of module ``fullname`` (``None``: not served here)."""
        rel = self._relative(fullname)
        name = self._file_of(rel) if rel is not None else None
        return self.files[name] if name is not None else None

    def get_source(self, fullname: str) -> str | None:
        """What ran, for ``inspect`` and tracebacks (not what the disk holds now)."""
        source = self.source_of(fullname)
        return source.decode("utf-8", "replace") if source is not None else None

    def is_package(self, fullname: str) -> bool:
        rel = self._relative(fullname)
        if rel is None:
            raise ImportError(f"{fullname} is not served here", name=fullname)
        name = self._file_of(rel)
        return name is None or name.endswith("__init__.py")

    def filename(self, fullname: str) -> str | None:
        """Where the verified code of ``fullname`` lives on disk (``None``: none)."""
        rel = self._relative(fullname)
        name = self._file_of(rel) if rel is not None else None
        return self._path(name) if name is not None else None

    def get_filename(self, fullname: str) -> str:
        path = self.filename(fullname)
        if path is None:
            raise ImportError(f"{fullname} has no verified file", name=fullname)
        return path

    def get_data(self, path: str) -> bytes:
        """A file of the package (``pkgutil.get_data``): a verified one from its bytes,
        package data from disk."""
        rel = os.path.relpath(path, self.directory).replace(os.sep, "/")
        if rel in self.files:
            return self.files[rel]
        with open(path, "rb") as file:
            return file.read()

    def get_resource_reader(self, fullname: str) -> _PackageFolder:
        """Package data (``importlib.resources``) is read from the package's folder."""
        rel = self._relative(fullname) or ""
        return _PackageFolder(self._path(rel) if rel else self.directory)

    def subtree(self, fullname: str, new_name: str) -> VerifiedSources | None:
        """The same verified bytes of module ``fullname`` (with its submodules, for a
        package) served under ``new_name``: a reload's private copy."""
        rel = self._relative(fullname)
        name = self._file_of(rel) if rel is not None else None
        if name is None:
            return None
        if name.endswith("__init__.py"):
            prefix = name[: -len("__init__.py")]
            files = {k[len(prefix) :]: v for k, v in self.files.items() if k.startswith(prefix)}
            folder = self._path(prefix.rstrip("/")) if prefix else self.directory
            return VerifiedSources(new_name, files, folder, root_file="__init__.py")
        folder_rel, _, file_name = name.rpartition("/")
        folder = self._path(folder_rel) if folder_rel else self.directory
        return VerifiedSources(new_name, {file_name: self.files[name]}, folder, root_file=file_name)

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


def _remember_lines(path: str, source: bytes) -> None:
    """Put what ran into ``linecache`` (with no mtime, so it is never re-read from disk):
    a traceback or ``inspect`` then shows the verified source, not a file swapped since."""
    import linecache

    text = source.decode("utf-8", "replace")
    linecache.cache[path] = (len(text), None, text.splitlines(True), path)


class _PackageFolder:
    """The smallest ``importlib.resources`` reader: the package's files are its folder."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def files(self) -> Path:
        from pathlib import Path

        return Path(self.folder)
