"""``dspy_plugin``: DSPy signatures as pipeline steps, optimized offline or live.

Components, as the seed's callbacks give them: with ``optimization_enabled`` the step types
``dspy_claude``, ``dspy_gemini`` and ``dspy_chain`` (none otherwise); the providers
``dspy_claude`` and ``dspy_gemini``; the schema extension ``dspy`` (workflow ``dspy_config``,
step ``dspy_signature`` and ``dspy_config``).  It depends on ``enhanced_schema_validator`` and
``json_yaml_bridge``, like the seed's entry.

``init`` reads the config (see ``settings``), imports DSPy (refusing with the extra to
install when it is missing) and looks for the training data, relative to the plugin config
file; missing training data is a warning, not a failure: steps then run unoptimized until
the data is there.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from pipeline_ex.contrib.dspy.runner import DSPyState, TrainingSource
from pipeline_ex.contrib.dspy.settings import CONFIG_SCHEMA, parse_settings
from pipeline_ex.contrib.dspy.signatures import FIELD_TYPES
from pipeline_ex.contrib.dspy.step_config import STEP_CONFIG_SCHEMA
from pipeline_ex.errors import PluginError
from pipeline_ex.log import get_logger
from pipeline_ex.plugins.behaviour import Plugin, Providers, SchemaExtensions, StepTypes

logger = get_logger(__name__)

NAME = "dspy_plugin"
VERSION = "1.0.0"
INSTALL_HINT = "pip install 'pipeline-ex[dspy]'"

_FIELD = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": r"^[A-Za-z][A-Za-z0-9_]*$"},
        "type": {"enum": list(FIELD_TYPES)},
        "description": {"type": "string"},
    },
    "additionalProperties": False,
}
SIGNATURE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["input_fields", "output_fields"],
    "properties": {
        "input_fields": {"type": "array", "minItems": 1, "items": _FIELD},
        "output_fields": {"type": "array", "minItems": 1, "items": _FIELD},
        "instructions": {"type": "string"},
    },
    "additionalProperties": False,
}
#: The ``dspy`` schema extension, in pipeline_ex's own shape.
SCHEMA_EXTENSION: dict[str, Any] = {
    "properties": {
        "workflow": {"properties": {"dspy_config": {**STEP_CONFIG_SCHEMA}}},
    },
    "$defs": {
        "step": {
            "properties": {
                "dspy_signature": SIGNATURE_SCHEMA,
                "dspy_config": STEP_CONFIG_SCHEMA,
            }
        }
    },
}


def import_dspy() -> Any:
    """Import DSPy offline (litellm must not fetch its price list at import)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    try:
        import dspy
    except ImportError as exc:
        raise PluginError(
            f"plugin {NAME!r} needs DSPy, which is not installed: {INSTALL_HINT} ({exc})",
            code="init_failed",
            plugin=NAME,
        ) from exc
    if not logging.getLogger().isEnabledFor(logging.INFO):
        # DSPy logs its optimizers' progress at INFO to stderr with its own handler; keep
        # that for -v (the host's INFO), not for every run.
        logging.getLogger("dspy").setLevel(logging.WARNING)
    return dspy


class DSPyPlugin(Plugin):
    def init(self, config: Mapping[str, Any]) -> DSPyState:
        settings = parse_settings(config, getattr(config, "config_dir", None))
        import_dspy()
        training = TrainingSource(settings.training_data_path)
        if settings.training_data_path is None:
            logger.warning("%s: no training_data_path; DSPy steps run unoptimized", NAME)
        elif not settings.training_data_path.exists():
            logger.warning(
                "%s: training data %s does not exist; DSPy steps run unoptimized until it does",
                NAME,
                settings.training_data_path,
            )
        else:
            training.current()  # a broken training file fails the load, not the first step
        return DSPyState(settings, training)

    def get_metadata(self, state: Any) -> Mapping[str, Any]:
        return {
            "name": NAME,
            "version": VERSION,
            "api_version": 1,
            "description": "DSPy signatures as steps, optimized by DSPy through pipeline providers",
            "dependencies": ["enhanced_schema_validator", "json_yaml_bridge"],
            "capabilities": ["dspy_optimization", "step_types", "providers", "schema_extension"],
            "config_schema": CONFIG_SCHEMA,
        }

    def get_step_types(self, state: DSPyState) -> StepTypes:
        from pipeline_ex.contrib.dspy.steps import DSPyChainStep, DSPyClaudeStep, DSPyGeminiStep

        if not state.settings.optimization_enabled:
            return []
        return [
            ("dspy_claude", DSPyClaudeStep(state)),
            ("dspy_gemini", DSPyGeminiStep(state)),
            ("dspy_chain", DSPyChainStep(state)),
        ]

    def get_providers(self, state: DSPyState) -> Providers:
        from pipeline_ex.contrib.dspy.providers import DSPyProvider

        return [
            (
                "dspy_claude",
                DSPyProvider("claude", state),
                ["dspy_optimization", "claude_compatible"],
            ),
            (
                "dspy_gemini",
                DSPyProvider("gemini", state),
                ["dspy_optimization", "gemini_compatible"],
            ),
        ]

    def get_schema_extensions(self, state: Any) -> SchemaExtensions:
        return [("dspy", SCHEMA_EXTENSION)]
