"""Fresh copies of a plugin's module for a reload, imported beside the running one.

``importlib.reload`` re-executes a module in place: the running version's module object
changes under it before the new code has been checked, and a reload that then fails leaves
the "old" version serving new code.  Instead, the module's current source is executed as a
new module under a private name (``<name>__reload_<generation>``); the running version is
untouched until the manager has initialised and checked the new one and swapped it in.
The copy is tracked like a directory plugin's modules, so unloading it (or a failed reload)
removes it from ``sys.modules``.

Scope, said plainly: only the plugin's own module is re-executed (for a package, its
``__init__`` and whatever it imports relatively from the package); other modules it
imports are shared with the running version, and other importers of the original name keep
seeing the original module.
"""

from __future__ import annotations

import importlib.util
import sys
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import TYPE_CHECKING, Any

from pipeline_ex.errors import PluginError

if TYPE_CHECKING:
    from pipeline_ex.plugins.isolation.verified_sources import VerifiedSources


def module_of(target: Any) -> ModuleType | None:
    """The module that defines a plugin target (a module, a class, an instance)."""
    if isinstance(target, ModuleType):
        return target
    name = getattr(type(target), "__module__", None)
    return sys.modules.get(name) if name else None


def fresh_copy(
    plugin: str,
    module: ModuleType,
    generation: int,
    *,
    verified: tuple[VerifiedSources, ...] | None = None,
) -> ModuleType:
    """Execute ``module``'s current source file as a new module under a private name.

    ``verified``: the signature gate has just passed the module's distribution and these
    serve its verified bytes: the copy runs those (``verified_import``), never the file
    nor its ``.pyc`` (a module they do not hold is refused)."""
    fresh_name = f"{module.__name__}__reload_{generation}"
    if verified is not None:
        return _verified_copy(plugin, module, fresh_name, verified)
    origin = getattr(module.__spec__, "origin", None) if module.__spec__ else None
    if not origin or not str(origin).endswith(".py"):
        raise PluginError(
            f"plugin {plugin!r}: module {module.__name__} has no source file to reload from",
            code="validation_failed",
            plugin=plugin,
        )
    package_path = getattr(module, "__path__", None)
    spec = importlib.util.spec_from_file_location(
        fresh_name,
        origin,
        submodule_search_locations=list(package_path) if package_path is not None else None,
    )
    if spec is None or spec.loader is None:
        raise PluginError(
            f"plugin {plugin!r}: cannot re-import {origin}", code="validation_failed", plugin=plugin
        )
    return _execute(spec, module, fresh_name)


def _verified_copy(
    plugin: str, module: ModuleType, fresh_name: str, sources: tuple[VerifiedSources, ...]
) -> ModuleType:
    """The copy from the bytes the gate verified, served under ``fresh_name`` (with its
    submodules, for a package) by a finder of its own, which ``forget`` removes."""
    # A copy made by an earlier reload is looked up by the name it is a copy of.
    original = getattr(module, _COPY_OF, module.__name__)
    copy = None
    for finder in sources:
        copy = finder.subtree(original, fresh_name)
        if copy is not None:
            break
    if copy is None:
        raise PluginError(
            f"plugin {plugin!r}: {original} is not among the verified sources of its "
            "distribution; it is not reloaded from disk",
            code="signature_invalid",
            plugin=plugin,
        )
    copy.install()  # held by itself, until ``forget``
    spec = copy.find_spec(fresh_name)
    assert spec is not None
    fresh = _execute(spec, module, fresh_name)
    setattr(fresh, _COPY_OF, original)
    return fresh


#: The module a reload's copy was made from (set on the copy).
_COPY_OF = "__pipeline_ex_copy_of__"


def _execute(spec: ModuleSpec, module: ModuleType, fresh_name: str) -> ModuleType:
    fresh = importlib.util.module_from_spec(spec)
    if spec.submodule_search_locations is None:
        # ``from . import sibling`` in the copy still means the original package.
        fresh.__package__ = module.__package__
    sys.modules[fresh_name] = fresh
    try:
        assert spec.loader is not None
        spec.loader.exec_module(fresh)
    except BaseException:
        forget(fresh_name)
        raise
    return fresh


def counterpart(plugin: str, old_module: ModuleType, fresh: ModuleType, target: Any) -> Any:
    """The object in ``fresh`` that plays the role ``target`` played in ``old_module``."""
    if target is old_module:
        return fresh
    # An instance exported by the module: find it by the name the module gave it.
    for name, value in vars(old_module).items():
        if value is target and hasattr(fresh, name):
            return getattr(fresh, name)
    cls = target if isinstance(target, type) else type(target)
    found: Any = fresh
    for part in cls.__qualname__.split("."):
        found = getattr(found, part, None)
        if found is None:
            raise PluginError(
                f"plugin {plugin!r}: the reloaded {old_module.__name__} no longer defines "
                f"{cls.__qualname__}",
                code="validation_failed",
                plugin=plugin,
            )
    return found


def module_names(fresh: ModuleType) -> tuple[str, ...]:
    """The copy and any submodules imported under its private name."""
    prefix = fresh.__name__
    return tuple(n for n in list(sys.modules) if n == prefix or n.startswith(prefix + "."))


def forget(prefix: str) -> None:
    for name in [n for n in list(sys.modules) if n == prefix or n.startswith(prefix + ".")]:
        sys.modules.pop(name, None)
    from pipeline_ex.plugins.isolation.verified_sources import IMPORTS

    IMPORTS.drop(prefix)
