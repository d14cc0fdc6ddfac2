"""Importing a signed plugin from the bytes that were verified, not from the disk again.

Verifying files and then letting the import system read them again leaves a window in
which a file can be swapped, and the import system would also run a planted ``.pyc``
instead of the signed source.  ``VerifiedSources`` is a meta path finder that serves one
private package (``_pipeline_ex_dirplugins.<plugin>_<digest>``) from a mapping of
``relative path -> bytes`` that signature verification produced: modules are compiled from
those bytes, no bytecode cache is read or written, and a module that was not in the
verified set cannot be imported under the package at all.
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

    def __init__(self, package: str, files: Mapping[str, bytes], directory: Path) -> None:
        self.package = package
        self.files = dict(files)
        self.directory = directory

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
            spec = importlib.util.spec_from_loader(fullname, self, is_package=True)
        elif f"{rel}.py" in self.files:
            spec = importlib.util.spec_from_loader(
                fullname, self, origin=str(self.directory / f"{rel}.py")
            )
        elif f"{rel}/__init__.py" in self.files:
            spec = importlib.util.spec_from_loader(
                fullname, self, origin=str(self.directory / rel / "__init__.py"), is_package=True
            )
        else:
            return None
        if spec is not None and spec.submodule_search_locations is not None:
            # Nothing on disk is searched: only verified modules exist under the package.
            spec.submodule_search_locations = []
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        rel = self._relative(module.__name__)
        if rel == "":
            return  # the private package itself has no code
        assert rel is not None
        name = f"{rel}.py" if f"{rel}.py" in self.files else f"{rel}/__init__.py"
        source = self.files[name]
        module.__file__ = str(self.directory / name)
        code = compile(source, module.__file__, "exec", dont_inherit=True)
        exec(code, module.__dict__)

    def install(self) -> None:
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)

    def uninstall(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)


def finders_for(package: str) -> list[VerifiedSources]:
    """The installed finders serving ``package`` (for unloading)."""
    return [f for f in sys.meta_path if isinstance(f, VerifiedSources) and f.package == package]
