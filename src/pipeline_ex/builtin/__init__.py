"""The built-in plugins, loaded at Runtime start through the same manager as any other.

They import only the public contract (``pipeline_ex.plugins.behaviour``, ``pipeline_ex.errors``
and the context they are handed), exactly like a third-party plugin.
"""

#: name -> reference, in the order the Runtime loads them.
BUILTIN_PLUGINS: dict[str, str] = {
    "core_steps": "pipeline_ex.builtin.core_steps:CoreStepsPlugin",
    "mock_providers": "pipeline_ex.builtin.mock_providers:MockProvidersPlugin",
    "live_providers": "pipeline_ex.builtin.live_providers:LiveProvidersPlugin",
    "enhanced_schema_validator": (
        "pipeline_ex.builtin.schema_validator:EnhancedSchemaValidatorPlugin"
    ),
    "json_yaml_bridge": "pipeline_ex.builtin.json_yaml_bridge:JsonYamlBridgePlugin",
}
