"""Built-in plugin ``enhanced_schema_validator``: JSON Schema 2020-12 for step outputs.

It contributes the ``output_schema`` step key as a schema extension whose value must itself
be a valid Draft 2020-12 schema (so ``pipeline-ex validate`` catches a broken
``output_schema`` with its path and line), and the engine validates each such step's result
against it after the step runs (a mapping result as is; a provider reply's ``text`` parsed
as JSON first).  Composition keywords (``allOf``/``anyOf``/``oneOf``, ``if``/``then``/
``else``) are plain JSON Schema here and also merge across extensions in the
ConfigurationSystem.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline_ex.plugins.behaviour import Plugin, SchemaExtensions

META_SCHEMA = "https://json-schema.org/draft/2020-12/schema"

OUTPUT_SCHEMA_EXTENSION: dict[str, Any] = {
    "$defs": {
        "step": {
            "properties": {
                "output_schema": {"$ref": META_SCHEMA, "type": "object"},
            }
        }
    }
}


class EnhancedSchemaValidatorPlugin(Plugin):
    def get_metadata(self, state: Any) -> Mapping[str, Any]:
        return {
            "name": "enhanced_schema_validator",
            "version": "1.0.0",
            "api_version": 1,
            "description": "JSON Schema 2020-12 output_schema for steps, composition-aware",
            "capabilities": ["schema_validation", "output_schema"],
        }

    def get_schema_extensions(self, state: Any) -> SchemaExtensions:
        return [("output_schema", OUTPUT_SCHEMA_EXTENSION)]
