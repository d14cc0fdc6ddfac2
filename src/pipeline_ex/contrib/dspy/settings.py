"""The DSPy plugin's ``config:``, read once at ``init`` into a frozen ``DSPySettings``.

Every key the seed's plugin_config.yaml uses is accepted with the seed's meaning; a wrong
type or an unknown value is refused at load time (``init_failed`` naming the key), never at
the first step that happens to read it.  Relative paths (``training_data_path``) are read
against the plugin config file's folder, ``cache_dir`` against the working directory, as the
issue specifies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline_ex.errors import InvalidInputError

#: ``evaluation_mode`` -> the DSPy optimizer it selects (see ``optimizers``).
EVALUATION_MODES = ("bootstrap_few_shot", "mipro", "copro")
#: ``optimization_frequency`` -> how old a compiled program may get (seconds); ``adaptive``
#: has no age limit and recompiles on the observed metric instead.
FREQUENCIES: Mapping[str, float | None] = {
    "daily": 86_400.0,
    "weekly": 7 * 86_400.0,
    "monthly": 30 * 86_400.0,
    "adaptive": None,
}
DEFAULT_CACHE_DIR = Path(".pipeline_ex") / "dspy_cache"

KNOWN_KEYS = frozenset(
    {
        "optimization_enabled",
        "evaluation_mode",
        "training_data_path",
        "cache_enabled",
        "optimization_frequency",
        "cache_dir",
        "adaptive_threshold",
        "adaptive_window",
        "holdout_fraction",
        "num_threads",
        "mipro_num_trials",
        "copro_breadth",
        "copro_depth",
    }
)


def _range(kind: str, low: float, high: float) -> dict[str, Any]:
    return {"type": kind, "minimum": low, "maximum": high}


#: The plugin's ``config_schema`` (in its metadata): the host checks the ``config:`` mapping
#: against it before ``init`` and reports every problem with the config file's line.
#: ``parse_settings`` checks the same rules for configs given as plain mappings.
CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "optimization_enabled": {"type": "boolean"},
        "evaluation_mode": {"enum": list(EVALUATION_MODES)},
        "training_data_path": {"type": "string", "minLength": 1},
        "cache_enabled": {"type": "boolean"},
        "optimization_frequency": {"enum": list(FREQUENCIES)},
        "cache_dir": {"type": "string", "minLength": 1},
        "adaptive_threshold": _range("number", 0, 1),
        "adaptive_window": _range("integer", 1, 10_000),
        "holdout_fraction": _range("number", 0, 0.9),
        "num_threads": _range("integer", 1, 64),
        "mipro_num_trials": _range("integer", 1, 1000),
        "copro_breadth": _range("integer", 2, 100),
        "copro_depth": _range("integer", 1, 100),
    },
    "additionalProperties": False,
}


class DSPyConfigError(InvalidInputError):
    """The plugin's ``config:`` or a step's DSPy keys are wrong; names the key."""

    code = "dspy_config_invalid"


@dataclass(frozen=True)
class DSPySettings:
    """What the plugin was configured with (defaults as the seed's config implies)."""

    optimization_enabled: bool = True
    evaluation_mode: str = "bootstrap_few_shot"
    training_data_path: Path | None = None
    cache_enabled: bool = True
    optimization_frequency: str = "daily"
    cache_dir: Path = field(default_factory=lambda: Path.cwd() / DEFAULT_CACHE_DIR)
    #: ``adaptive``: recompile when the mean observed metric of the last ``adaptive_window``
    #: labelled runs falls below this.
    adaptive_threshold: float = 0.8
    adaptive_window: int = 20
    #: Share of a step's training examples kept out of compiling, to measure on.
    holdout_fraction: float = 0.25
    num_threads: int = 1
    mipro_num_trials: int = 6
    copro_breadth: int = 3
    copro_depth: int = 1

    @property
    def max_age(self) -> float | None:
        return FREQUENCIES[self.optimization_frequency]

    def optimizer_settings(self) -> dict[str, Any]:
        """What part of the settings changes a compiled program (goes into the cache key)."""
        settings: dict[str, Any] = {"mode": self.evaluation_mode}
        if self.evaluation_mode == "mipro":
            settings["num_trials"] = self.mipro_num_trials
        if self.evaluation_mode == "copro":
            settings["breadth"] = self.copro_breadth
            settings["depth"] = self.copro_depth
        return settings


def _bool(config: Mapping[str, Any], key: str, default: bool) -> bool:
    value = config.get(key, default)
    if not isinstance(value, bool):
        raise DSPyConfigError(f"dspy_plugin config {key!r} must be true or false, got {value!r}")
    return value


def _choice(config: Mapping[str, Any], key: str, default: str, choices: Any) -> str:
    value = config.get(key, default)
    if value not in choices:
        raise DSPyConfigError(
            f"dspy_plugin config {key!r} must be one of {', '.join(choices)}; got {value!r}"
        )
    return str(value)


def _number(config: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise DSPyConfigError(
            f"dspy_plugin config {key!r} must be a number from {low:g} to {high:g}; got {value!r}"
        )
    return float(value)


def _count(config: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise DSPyConfigError(
            f"dspy_plugin config {key!r} must be an integer from {low} to {high}; got {value!r}"
        )
    return value


def _path(config: Mapping[str, Any], key: str) -> str | None:
    value = config.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise DSPyConfigError(f"dspy_plugin config {key!r} must be a path, got {value!r}")
    return value


def parse_settings(config: Mapping[str, Any], config_dir: Path | None = None) -> DSPySettings:
    """``config:`` -> ``DSPySettings``; ``config_dir`` is the plugin config file's folder."""
    unknown = sorted(set(config) - KNOWN_KEYS)
    if unknown:
        raise DSPyConfigError(
            f"dspy_plugin config has unknown key(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(sorted(KNOWN_KEYS))}"
        )
    base = config_dir or Path.cwd()
    training = _path(config, "training_data_path")
    cache = _path(config, "cache_dir")
    return DSPySettings(
        optimization_enabled=_bool(config, "optimization_enabled", True),
        evaluation_mode=_choice(config, "evaluation_mode", "bootstrap_few_shot", EVALUATION_MODES),
        training_data_path=(base / Path(training).expanduser()) if training else None,
        cache_enabled=_bool(config, "cache_enabled", True),
        optimization_frequency=_choice(config, "optimization_frequency", "daily", FREQUENCIES),
        cache_dir=(Path.cwd() / Path(cache).expanduser())
        if cache
        else Path.cwd() / DEFAULT_CACHE_DIR,
        adaptive_threshold=_number(config, "adaptive_threshold", 0.8, 0.0, 1.0),
        adaptive_window=_count(config, "adaptive_window", 20, 1, 10_000),
        holdout_fraction=_number(config, "holdout_fraction", 0.25, 0.0, 0.9),
        num_threads=_count(config, "num_threads", 1, 1, 64),
        mipro_num_trials=_count(config, "mipro_num_trials", 6, 1, 1000),
        copro_breadth=_count(config, "copro_breadth", 3, 2, 100),
        copro_depth=_count(config, "copro_depth", 1, 1, 100),
    )
