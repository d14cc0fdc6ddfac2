"""The ``monitoring:`` section of a plugin config, top level and per entry.

    monitoring:
      health_interval_s: 30          # run every plugin's health_check this often (0/absent: never)
      error_rate: {window_s: 60, threshold: 0.5, min_calls: 20}
    plugins:
      flaky: {module: ..., monitoring: {health_interval_s: 5}}

An entry's values override the top level's, key by key (``error_rate`` too).  A plugin is
watched when it has a ``health_interval_s`` or an ``error_rate`` (top level or its own): the
health thread then reads its error rate about four times per window, check or no check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline_ex.records import Record, put

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


class HealthSettings(Record):
    """Health checking of one plugin: ``interval_s`` 0 means no periodic check; the
    plugin is degraded when, over the last ``window_s`` seconds, at least ``min_calls``
    calls were made and more than ``threshold`` of them failed.  ``error_rate`` says the
    config asked for the error-rate rule (the defaults apply to checked plugins anyway)."""

    __slots__ = ("error_rate", "interval_s", "min_calls", "threshold", "window_s")
    FIELDS = ("interval_s", "window_s", "threshold", "min_calls", "error_rate")
    interval_s: float
    window_s: float
    threshold: float
    min_calls: int
    error_rate: bool

    def __init__(
        self,
        interval_s: float = 0.0,
        window_s: float = 60.0,
        threshold: float = 0.5,
        min_calls: int = 20,
        error_rate: bool = False,
    ) -> None:
        put(self, "interval_s", interval_s)
        put(self, "window_s", window_s)
        put(self, "threshold", threshold)
        put(self, "min_calls", min_calls)
        put(self, "error_rate", error_rate)

    @property
    def watched(self) -> bool:
        """Whether the health thread looks after this plugin at all."""
        return self.interval_s > 0 or self.error_rate

    @property
    def rate_every_s(self) -> float:
        """How often the error rate is sampled: often enough that the window read is at
        most a quarter longer than ``window_s``, and at least once a second."""
        return min(self.window_s / 4, 1.0)

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
            error_rate="error_rate" in top or "error_rate" in entry,
        )
