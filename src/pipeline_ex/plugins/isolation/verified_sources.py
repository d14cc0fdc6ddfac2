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

One finder for the whole process (``IMPORTS``, first on ``sys.meta_path`` from its first
use on, never removed) dispatches each import to the ``VerifiedSources`` of the longest
package name that covers it: what serves a package changes by swapping one dict, so an
import running in another thread never finds the package unserved for a moment, and a
reload's private copy (``pkg.sub__reload_N``) is served by its own sources, not by those of
``pkg``.  Who needs which sources is counted per holder (a loaded plugin, a reload copy),
process-wide: two Runtimes loading one distribution each keep theirs in force.

It lives in the isolation package because an isolated plugin's child imports only this
package: the host hands the verified bytes to the child in its bootstrap frame
(``as_wire`` / ``from_wire``), and the child serves its plugin from them as the host does
in-process.  Standard library only, and light: the child's start-up pays for every import.
"""

from __future__ import annotations

import _thread
import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES, ExtensionFileLoader, ModuleSpec

#: The child imports this module: ``typing`` (~5 ms at start-up) and ``importlib.abc``
#: (which brings ``importlib.resources``) are for the type checker only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
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
        token: str = "",
        strict: bool = True,
        namespace: bool = False,
        foreign: frozenset[str] = frozenset(),
    ) -> None:
        self.package = package
        self.files = dict(files)
        self.directory = os.fspath(directory)
        self.root_file = root_file
        #: Names what was verified (the signed manifest's digest): two sources with the
        #: same token serve the same bytes, without comparing them.
        self.token = token
        #: Refuse a name under the package that ``files`` do not hold (the package is the
        #: distribution's alone); otherwise leave it to the other finders (a package other
        #: distributions ship modules into too).
        self.strict = strict
        #: A namespace package (PEP 420): no code; its ``__path__`` is every folder of
        #: that name on the search path, so a planted ``__init__.py`` in one never runs.
        self.namespace = namespace
        #: Of a package other distributions ship files into too (not ``strict``): the
        #: modules they ship (``sub/mod``, relative), which are left to the other finders;
        #: any other name that is not verified is refused all the same.
        self.foreign = foreign

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
            spec.cached = None  # no bytecode is read or written for it
        elif rel == "" or any(key.startswith(f"{rel}/") for key in self.files):
            # the package without code of its own (a directory plugin's private package,
            # or a namespace package: a folder of verified modules without __init__.py)
            spec = ModuleSpec(fullname, self, is_package=True)
            if self.namespace and rel == "":
                spec.submodule_search_locations = self._portions(fullname)
                return spec
        else:
            extension = self._extension_spec(fullname, rel)
            if extension is not None:
                return extension
            if self.namespace or (not self.strict and rel in self.foreign):
                return None  # another distribution's module: the other finders find it
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

    def _portions(self, fullname: str) -> Any:
        """The namespace's search path: ``PathFinder``'s own (live: a portion added to
        ``sys.path`` later is found) when it sees a namespace; else (a planted
        ``__init__.py`` made one portion a regular package) every folder of that name."""
        from importlib.machinery import PathFinder

        parent, _, last = fullname.rpartition(".")
        paths = sys.path if not parent else getattr(sys.modules.get(parent), "__path__", [])
        found = PathFinder.find_spec(fullname, paths if parent else None)
        if found is not None and found.origin is None and found.submodule_search_locations:
            return found.submodule_search_locations
        folders = [os.path.join(entry or ".", last) for entry in paths]
        portions = [folder for folder in folders if os.path.isdir(folder)]
        return portions if self.directory in portions else [self.directory, *portions]

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

    def get_code(self, fullname: str) -> Any:
        """The compiled verified source (``runpy`` and friends ask for it)."""
        path = self.filename(fullname)
        source = self.source_of(fullname)
        if path is None or source is None:
            raise ImportError(f"{fullname} has no verified source", name=fullname)
        return compile(source, path, "exec", dont_inherit=True)

    def serves(self, fullname: str) -> bool:
        """Whether ``fullname`` is one of the verified modules (Python or native)."""
        if self.source_of(fullname) is not None:
            return True
        rel = self._relative(fullname)
        return bool(rel) and any(f"{rel}{suffix}" in self.files for suffix in EXTENSION_SUFFIXES)

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

    def filename_of(self, rel: str) -> str:
        """Where file ``rel`` (a key of ``files``) is on disk."""
        return self._path(rel)

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
            return VerifiedSources(
                new_name, files, folder, root_file="__init__.py", token=self.token
            )
        folder_rel, _, file_name = name.rpartition("/")
        folder = self._path(folder_rel) if folder_rel else self.directory
        return VerifiedSources(
            new_name, {file_name: self.files[name]}, folder, root_file=file_name, token=self.token
        )

    # -- in force ----------------------------------------------------------------------
    def install(self) -> None:
        """Serve this package, process-wide, until ``uninstall`` (held by the sources
        themselves: for a test or a script; the host holds per plugin, see ``hold``)."""
        IMPORTS.hold(self, (self,))

    def uninstall(self) -> None:
        IMPORTS.release(self)

    # -- to the child ----------------------------------------------------------------------
    def as_wire(self) -> dict[str, Any]:
        """Plain data for the bootstrap frame (strings and bytes)."""
        return {
            "package": self.package,
            "directory": self.directory,
            "root_file": self.root_file,
            "files": self.files,
            "token": self.token,
            "strict": self.strict,
            "namespace": self.namespace,
            "foreign": sorted(self.foreign),
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
            token=str(data.get("token") or ""),
            strict=bool(data.get("strict", True)),
            namespace=bool(data.get("namespace", False)),
            foreign=frozenset(str(name) for name in data.get("foreign") or ()),
        )

    def size(self) -> int:
        """The bytes it serves, in all."""
        return sum(len(data) for data in self.files.values())


class VerifiedImports:
    """The process's one finder for verified sources (see the module doc).

    ``hold(holder, sources)`` puts sources in force for as long as ``holder`` keeps them;
    when several holders serve the same package, the latest served wins and the others
    come back as it is released.  ``find_spec`` reads one dict and takes no lock."""

    def __init__(self) -> None:
        self._lock = _thread.allocate_lock()
        #: package -> the holders serving it, oldest first
        self._held: dict[str, list[tuple[object, VerifiedSources]]] = {}
        #: package -> the sources in force (replaced whole on every change)
        self._table: dict[str, VerifiedSources] = {}

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        table = self._table
        if not table:
            return None
        name = fullname
        while True:  # the longest served package covering ``fullname``
            sources = table.get(name)
            if sources is not None:
                return sources.find_spec(fullname, path, target)
            cut = name.rfind(".")
            if cut < 0:
                return None
            name = name[:cut]

    def hold(self, holder: object, sources: Iterable[VerifiedSources]) -> None:
        with self._lock:
            for served in sources:
                self._held.setdefault(served.package, []).append((holder, served))
            self._publish()

    def release(self, holder: object) -> None:
        """Whatever ``holder`` held goes out of force (another holder's comes back)."""
        with self._lock:
            for package, held in list(self._held.items()):
                kept = [entry for entry in held if entry[0] is not holder]
                if kept:
                    self._held[package] = kept
                else:
                    del self._held[package]
            self._publish()

    def drop(self, package: str) -> None:
        """``package`` is served no more, whoever held it (its modules were unloaded)."""
        with self._lock:
            self._held.pop(package, None)
            self._publish()

    def held_otherwise(
        self, sources: Iterable[VerifiedSources], besides: object
    ) -> VerifiedSources | None:
        """One of the sources held now, for a package of ``sources``, by a holder other
        than ``besides``, with other bytes (another token): what a change of ``sources``
        would take away from another plugin."""
        held = self._held
        for served in sources:
            if served.namespace:
                continue  # no code: nothing to switch
            for holder, other in held.get(served.package, ()):
                if holder is not besides and not other.namespace and other.token != served.token:
                    return other
        return None

    def serving(self, package: str) -> VerifiedSources | None:
        """The sources in force for exactly ``package``."""
        return self._table.get(package)

    def covering(self, fullname: str) -> VerifiedSources | None:
        """The sources in force that would serve module ``fullname``."""
        table = self._table
        name = fullname
        while name:
            sources = table.get(name)
            if sources is not None:
                return sources
            name = name.rpartition(".")[0]
        return None

    def _publish(self) -> None:
        # The latest holder serves, except that a namespace (no code) never displaces a
        # holder with code for the same name (another signed distribution's package).
        table = {}
        for package, held in self._held.items():
            with_code = [served for _, served in held if not served.namespace]
            table[package] = with_code[-1] if with_code else held[-1][1]
        self._table = table
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)


IMPORTS = VerifiedImports()


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
