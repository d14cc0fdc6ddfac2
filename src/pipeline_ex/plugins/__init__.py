"""The plugin architecture: contract, loader, manager, registry, integrator.

Plugin authors need only ``Plugin``, ``PluginError``, ``API_VERSION`` and the typed
contracts (``Step``, ``Provider``, ``StepContext``, ``MetadataDict``, ...) from here.
``Plugin`` and the errors are imported with the package; the typed contracts (protocols
and typed dicts, which need :mod:`typing` at run time) and the host's machinery (loader,
manager, registry) are imported on first use (PEP 562), so a plugin module's ``from
pipeline_ex.plugins import Plugin`` pulls in neither.
"""

from pipeline_ex.errors import PLUGIN_ERROR_CODES, PluginError
from pipeline_ex.lazy_exports import exports
from pipeline_ex.plugins.behaviour import API_VERSION, Plugin

#: Type checkers treat a module-level ``TYPE_CHECKING`` name as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
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
    from pipeline_ex.plugins.loader import PluginConfig, PluginLoader, PluginSpec
    from pipeline_ex.plugins.manager import LoadReport, PluginManager
    from pipeline_ex.plugins.registry import PluginRecord, PluginRegistry, PluginStatus

#: Names imported on first use: name -> module.
_LAZY = {
    **dict.fromkeys(
        (
            "MetadataDict",
            "Provider",
            "ProviderEntry",
            "ProviderView",
            "SchemaExtensionEntry",
            "Step",
            "StepContext",
            "StepTypeEntry",
            "StepTypesView",
        ),
        "pipeline_ex.plugins.contracts",
    ),
    "PluginConfig": "pipeline_ex.plugins.loader",
    "PluginLoader": "pipeline_ex.plugins.loader",
    "PluginSpec": "pipeline_ex.plugins.loader",
    "LoadReport": "pipeline_ex.plugins.manager",
    "PluginManager": "pipeline_ex.plugins.manager",
    "PluginRecord": "pipeline_ex.plugins.registry",
    "PluginRegistry": "pipeline_ex.plugins.registry",
    "PluginStatus": "pipeline_ex.plugins.registry",
}


__getattr__ = exports(__name__, _LAZY)


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
