"""The ``monitoring:`` section of a plugin config, top level and per entry.

    monitoring:
      health_interval_s: 30          # run every plugin's health_check this often (0/absent: never)
      error_rate: {window_s: 60, threshold: 0.5, min_calls: 20}
    plugins:
      flaky: {module: ..., monitoring: {health_interval_s: 5}}

An entry's values override the top level's, key by key (``error_rate`` too).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MONITORING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "health_interval_s": {"type": "number", "minimum": 0},
        "error_rate": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "window_s": {"type": "number", "exclusiveMinimum": 0},
                "threshold": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                "min_calls": {"type": "integer", "minimum": 1},
            },
        },
    },
}


@dataclass(frozen=True)
class HealthSettings:
    """Health checking of one plugin: ``interval_s`` 0 means no periodic check; the
    plugin is degraded when, over the last ``window_s`` seconds, at least ``min_calls``
    calls were made and more than ``threshold`` of them failed."""

    interval_s: float = 0.0
    window_s: float = 60.0
    threshold: float = 0.5
    min_calls: int = 20

    @classmethod
    def merged(
        cls, top: Mapping[str, Any] | None, entry: Mapping[str, Any] | None
    ) -> HealthSettings:
        top, entry = top or {}, entry or {}
        rate = {**dict(top.get("error_rate") or {}), **dict(entry.get("error_rate") or {})}
        interval = entry.get("health_interval_s", top.get("health_interval_s", 0.0))
        defaults = cls()
        return cls(
            interval_s=float(interval or 0.0),
            window_s=float(rate.get("window_s", defaults.window_s)),
            threshold=float(rate.get("threshold", defaults.threshold)),
            min_calls=int(rate.get("min_calls", defaults.min_calls)),
        )
