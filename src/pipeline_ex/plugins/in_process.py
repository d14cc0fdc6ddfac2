"""The ``in_process`` host's specifics: plugin objects handed over directly, and the fresh
code a reload needs.

A plugin given as an object (``load_plugin(name, SomeClass)``) is adapted as it is; a
reload re-creates it from its class, re-imports its module beside the running one
(``reimport``), or re-reads its directory under a fresh private package name.  The manager
asks this module (or, for an isolated plugin, starts a new child through the loader) and
never handles modules itself.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pipeline_ex.errors import PluginError
from pipeline_ex.plugins import reimport
from pipeline_ex.plugins.adapter import PluginAdapter
from pipeline_ex.plugins.hosting import PluginHost
from pipeline_ex.plugins.loader import PluginLoader, PluginSpec, ResolvedPlugin

if TYPE_CHECKING:
    from pipeline_ex.plugins.isolation.verified_sources import VerifiedSources


def from_object(spec: PluginSpec, target: Any) -> ResolvedPlugin:
    """A plugin object (a ``Plugin`` subclass, an instance or a module) as given."""
    adapter = PluginAdapter.from_target(target, plugin=spec.name)
    label = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
    origin = f"object:{getattr(target, '__module__', '')}.{label or type(target).__name__}"
    return ResolvedPlugin(spec, adapter, origin)


def fresh_for_reload(
    loader: PluginLoader,
    spec: PluginSpec,
    old: PluginHost,
    origin: str,
    held: tuple[VerifiedSources, ...] = (),
) -> ResolvedPlugin:
    """Fresh code for a reload of an in-process plugin, imported beside the running version
    so that it keeps serving, untouched, until the new one has been checked and swapped in."""
    generation = time.monotonic_ns()
    if spec.path is not None:
        return loader.resolve(spec, generation=generation)
    assert isinstance(old, PluginAdapter)
    target = old.target
    if spec.module is None:
        if old.kind == "instance":
            raise PluginError(
                f"plugin {spec.name!r} was loaded from an instance, which cannot be "
                "re-created; load it from a class, a module or a reference to reload it",
                code="validation_failed",
                plugin=spec.name,
            )
        fresh = type(target) if old.kind == "class" else target
        return ResolvedPlugin(spec, PluginAdapter.from_target(fresh, plugin=spec.name), origin)
    module = reimport.module_of(target)
    if module is None or module.__name__.startswith("pipeline_ex."):
        return loader.resolve(spec)  # the host's own code: nothing to re-import
    # The code on disk is what runs next: the signature gate applies as at the first load.
    signature, sources = loader.gate_module(spec)
    if sources:
        from pipeline_ex.plugins.verified_import import IMPORTS

        # ``held``: what the running version holds.  Another plugin (of this Runtime or
        # another) running other verified bytes of the same packages would be switched to
        # these, which its own trust never judged.
        other = IMPORTS.held_otherwise(sources, besides=held)
        if other is not None:
            raise PluginError(
                f"plugin {spec.name!r}: another loaded plugin runs other verified bytes of "
                f"{other.package}; a reload would switch it to these (unload it first)",
                code="signature_invalid",
                plugin=spec.name,
            )
    # The fresh copy runs the newly verified bytes; they are put in force for the
    # distribution's other imports only once the new version is swapped in (the manager),
    # so that a reload refused on the way leaves the running version as it was.
    copy = reimport.fresh_copy(
        spec.name, module, generation, verified=sources if signature == "valid" else None
    )
    names = reimport.module_names(copy)
    try:
        origin_target = target if old.kind != "class" else type(target)
        fresh_target = reimport.counterpart(spec.name, module, copy, origin_target)
        adapter = PluginAdapter.from_target(fresh_target, plugin=spec.name)
    except BaseException:
        reimport.forget(copy.__name__)
        raise
    return ResolvedPlugin(spec, adapter, origin, names, signature=signature, sources=sources)
