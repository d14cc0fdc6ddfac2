"""``shouting``: a module-style plugin — the same contract as functions without ``self``.

It depends on ``text_tools>=1.0`` (declared in its metadata), so pipeline-ex loads
``text_tools`` first and refuses to unload it while ``shouting`` is active.  Its ``shout``
step asks the provider registry for any provider with the ``echo`` capability, which
``text_tools`` contributes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline_ex.plugins import MetadataDict, StepContext, StepTypeEntry


class ShoutStep:
    def __init__(self, volume: int) -> None:
        self.volume = volume

    def execute(self, step: dict[str, Any], context: StepContext) -> dict[str, Any]:
        provider = context.providers.select(["echo"])
        reply = provider.query(str(step.get("text", "")), {})
        volume = int(step.get("volume", self.volume))
        return {**reply, "text": reply["text"].upper() + "!" * volume}


def init(config: Mapping[str, Any]) -> dict[str, Any]:
    return {"volume": int(config.get("volume", 1))}


def terminate(state: Any) -> None:
    return None


def get_metadata(state: Any) -> MetadataDict:
    return {
        "name": "shouting",
        "version": "1.0.0",
        "api_version": 1,
        "description": "shout step built on the text_tools echo provider",
        "dependencies": ["text_tools>=1.0"],
    }


def get_step_types(state: Any) -> list[StepTypeEntry]:
    return [("shout", ShoutStep(state["volume"]))]
