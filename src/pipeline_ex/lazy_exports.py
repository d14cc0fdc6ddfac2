"""Package attributes imported on first use (PEP 562), so that importing a package costs
only what its caller reads: ``from pipeline_ex.plugins import Plugin`` must not import the
plugin manager, and a child process must not import the host's side of isolation."""

from __future__ import annotations

import importlib
import sys

#: ``from pipeline_ex.plugins import Plugin`` imports this: ``typing`` is for the checker.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any


def exports(package: str, table: Mapping[str, str]) -> Callable[[str], Any]:
    """The ``__getattr__`` of ``package``: each name of ``table`` comes from the module it
    maps to (absolute, or relative to ``package`` when it starts with a dot), imported
    when first read and then kept in the package's namespace."""
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    return __getattr__
