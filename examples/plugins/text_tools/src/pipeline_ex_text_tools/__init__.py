"""``text_tools``: a class-style pipeline-ex plugin.

It contributes one of each component kind:
- step type ``word_count``: counts the words of ``text`` (a template can feed it another
  step's output, e.g. ``text: "{{steps.draft.text}}"``);
- provider ``echo`` (capabilities ``text_generation``, ``echo``): answers with the prompt,
  optionally upper-cased, a deterministic stand-in for an LLM;
- schema extension ``text_tools``: lets a workflow carry a ``text_tools`` section with
  ``max_words``, which ``word_count`` then enforces.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline_ex.plugins import (
    MetadataDict,
    Plugin,
    ProviderEntry,
    SchemaExtensionEntry,
    StepContext,
    StepTypeEntry,
)

__version__ = "1.2.0"


class WordCountStep:
    """A class is instantiated once, when the plugin's components are registered."""

    def execute(self, step: dict[str, Any], context: StepContext) -> dict[str, Any]:
        words = str(step.get("text", "")).split()
        limit = (context.workflow.get("text_tools") or {}).get("max_words")
        if limit is not None and len(words) > limit:
            return {"success": False, "error": f"{len(words)} words exceed max_words={limit}"}
        return {"success": True, "words": len(words), "text": " ".join(words)}


class EchoProvider:
    """Follows the provider contract: ``query`` returns ``text``, ``success`` and ``cost``."""

    def __init__(self, upper: bool) -> None:
        self.upper = upper

    def query(self, prompt: str, options: dict[str, Any]) -> dict[str, Any]:
        text = prompt.upper() if self.upper else prompt
        return {"text": text, "success": True, "cost": 0.0, "provider": "echo"}


class TextToolsPlugin(Plugin):
    def init(self, config: Mapping[str, Any]) -> dict[str, Any]:
        # Refuse bad configuration here: raising makes the load fail with init_failed.
        upper = config.get("upper", False)
        if not isinstance(upper, bool):
            raise ValueError(f"'upper' must be true or false, got {upper!r}")
        return {"upper": upper}

    def get_metadata(self, state: Any) -> MetadataDict:
        return {
            "name": "text_tools",
            "version": __version__,
            "api_version": 1,
            "description": "word_count step, echo provider, text_tools schema section",
            "capabilities": ["text_processing"],
        }

    def get_step_types(self, state: Any) -> list[StepTypeEntry]:
        return [("word_count", WordCountStep)]

    def get_providers(self, state: Any) -> list[ProviderEntry]:
        return [("echo", EchoProvider(state["upper"]), ["text_generation", "echo"])]

    def get_schema_extensions(self, state: Any) -> list[SchemaExtensionEntry]:
        return [
            (
                "text_tools",
                {
                    "properties": {
                        "workflow": {
                            "properties": {
                                "text_tools": {
                                    "type": "object",
                                    "properties": {"max_words": {"type": "integer", "minimum": 1}},
                                    "additionalProperties": False,
                                }
                            }
                        }
                    }
                },
            )
        ]

    def health_check(self, state: Any) -> dict[str, Any]:
        return {"status": "ok", "upper": state["upper"]}
