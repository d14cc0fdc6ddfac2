"""The plugin architecture: contract, loader, manager, registry, integrator.

Plugin authors need only ``Plugin``, ``PluginError``, ``API_VERSION`` and the typed
contracts (``Step``, ``Provider``, ``StepContext``, ``MetadataDict``, ...) from here; those
are imported with the package.  The host's machinery (loader, manager, registry) is
imported on first use (PEP 562), so a plugin module's ``from pipeline_ex.plugins import
Plugin`` does not pull in the whole host.
"""

from typing import TYPE_CHECKING, Any

from pipeline_ex.errors import PLUGIN_ERROR_CODES, PluginError
from pipeline_ex.plugins.behaviour import API_VERSION, Plugin
from pipeline_ex.plugins.contracts import (
    MetadataDict,
    Provider,
    ProviderEntry,
    ProviderView,
    SchemaExtensionEntry,
    Step,
    StepContext,
    StepTypeEntry,
    StepTypesView,
)

if TYPE_CHECKING:
    from pipeline_ex.plugins.loader import PluginConfig, PluginLoader, PluginSpec
    from pipeline_ex.plugins.manager import LoadReport, PluginManager
    from pipeline_ex.plugins.registry import PluginRecord, PluginRegistry, PluginStatus

#: Host names imported on first use: name -> module.
_LAZY = {
    "PluginConfig": "pipeline_ex.plugins.loader",
    "PluginLoader": "pipeline_ex.plugins.loader",
    "PluginSpec": "pipeline_ex.plugins.loader",
    "LoadReport": "pipeline_ex.plugins.manager",
    "PluginManager": "pipeline_ex.plugins.manager",
    "PluginRecord": "pipeline_ex.plugins.registry",
    "PluginRegistry": "pipeline_ex.plugins.registry",
    "PluginStatus": "pipeline_ex.plugins.registry",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "API_VERSION",
    "PLUGIN_ERROR_CODES",
    "LoadReport",
    "MetadataDict",
    "Plugin",
    "PluginConfig",
    "PluginError",
    "PluginLoader",
    "PluginManager",
    "PluginRecord",
    "PluginRegistry",
    "PluginSpec",
    "PluginStatus",
    "Provider",
    "ProviderEntry",
    "ProviderView",
    "SchemaExtensionEntry",
    "Step",
    "StepContext",
    "StepTypeEntry",
    "StepTypesView",
]
