"""The plugin architecture: contract, loader, manager, registry, integrator.

Plugin authors need only ``Plugin``, ``PluginError``, ``API_VERSION`` and the typed
contracts (``Step``, ``Provider``, ``StepContext``, ``MetadataDict``, ...) from here.
"""

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
from pipeline_ex.plugins.loader import PluginConfig, PluginLoader, PluginSpec
from pipeline_ex.plugins.manager import LoadReport, PluginManager
from pipeline_ex.plugins.registry import PluginRecord, PluginRegistry, PluginStatus

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
