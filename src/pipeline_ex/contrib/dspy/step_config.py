"""A step's ``dspy_config`` (over the workflow's ``dspy_config`` defaults), checked.

Keys: ``optimization_enabled`` (this step may be optimized; the plugin's switch must be on
too), ``few_shot_examples`` (demos the optimizer may put in the prompt), ``bootstrap_iterations``
(BootstrapFewShot rounds), ``module`` (``predict`` or ``chain_of_thought``), ``metric`` (a
dotted path; exact match on the output fields by default).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline_ex.contrib.dspy.settings import DSPyConfigError

MODULES = ("predict", "chain_of_thought")
STEP_KEYS = (
    "optimization_enabled",
    "few_shot_examples",
    "bootstrap_iterations",
    "module",
    "metric",
)

#: The JSON Schema of a ``dspy_config`` mapping (the ``dspy`` schema extension uses it).
STEP_CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "optimization_enabled": {"type": "boolean"},
        "few_shot_examples": {"type": "integer", "minimum": 0, "maximum": 64},
        "bootstrap_iterations": {"type": "integer", "minimum": 1, "maximum": 100},
        "module": {"enum": list(MODULES)},
        "metric": {"type": "string", "pattern": r"^[A-Za-z_][\w.]*(:[A-Za-z_][\w.]*)?$"},
    },
    "additionalProperties": False,
}


@dataclass(frozen=True)
class StepDSPyConfig:
    optimization_enabled: bool = True
    few_shot_examples: int = 4
    bootstrap_iterations: int = 1
    module: str = "predict"
    metric: str | None = None

    def fingerprint(self) -> dict[str, Any]:
        return {
            "few_shot_examples": self.few_shot_examples,
            "bootstrap_iterations": self.bootstrap_iterations,
            "module": self.module,
            "metric": self.metric or "exact_match",
        }


def _int(value: Any, key: str, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise DSPyConfigError(
            f"{where}.{key} must be an integer from {low} to {high}, got {value!r}"
        )
    return value


def parse_step_config(
    step: Mapping[str, Any] | None,
    workflow: Mapping[str, Any] | None = None,
    where: str = "dspy_config",
) -> StepDSPyConfig:
    """The step's settings: its own ``dspy_config`` over the workflow's, over the defaults."""
    merged: dict[str, Any] = {}
    for source, label in ((workflow, "workflow.dspy_config"), (step, where)):
        if source is None:
            continue
        if not isinstance(source, Mapping):
            raise DSPyConfigError(f"{label} must be a mapping, got {source!r}")
        for key in source:
            if key in STEP_KEYS:
                merged[key] = (source[key], label)
            elif source is step:
                raise DSPyConfigError(
                    f"{label} has unknown key {key!r}; known: {', '.join(STEP_KEYS)}"
                )
    config = StepDSPyConfig()
    values: dict[str, Any] = {}
    for key, (value, label) in merged.items():
        if key == "optimization_enabled" and not isinstance(value, bool):
            raise DSPyConfigError(f"{label}.{key} must be true or false, got {value!r}")
        if key == "few_shot_examples":
            value = _int(value, key, label, 0, 64)
        if key == "bootstrap_iterations":
            value = _int(value, key, label, 1, 100)
        if key == "module" and value not in MODULES:
            raise DSPyConfigError(
                f"{label}.module must be one of {', '.join(MODULES)}; got {value!r}"
            )
        if key == "metric" and (not isinstance(value, str) or not value.strip()):
            raise DSPyConfigError(f"{label}.metric must be a dotted path, got {value!r}")
        values[key] = value
    return StepDSPyConfig(**{**config.__dict__, **values})
