"""Per-plugin call counters: calls, seconds and errors per component or operation.

The guard updates them on every call it makes into plugin code (lifecycle calls, a step's
``execute``, its hooks); ``plugins info`` and the Python API read them.
"""

from __future__ import annotations

from typing import Any


class CallStats:
    """Counters for one plugin, kept per component as ``[calls, seconds, errors]``.

    Plain numbers updated under the GIL (no lock on the hot path, so concurrent updates
    may rarely lose a count).  The plugin's totals are derived from the components, so a
    dispatch updates one small list and nothing else.
    """

    __slots__ = ("last_error", "per_component")

    def __init__(self) -> None:
        self.last_error: str | None = None
        self.per_component: dict[str, list[Any]] = {}

    def entry(self, component: str) -> list[Any]:
        """The live ``[calls, seconds, errors]`` list of ``component`` (created if new)."""
        counters = self.per_component.get(component)
        if counters is None:
            counters = self.per_component.setdefault(component, [0, 0.0, 0])
        return counters

    def _total(self, index: int) -> Any:
        return sum(counters[index] for counters in list(self.per_component.values()))

    @property
    def calls(self) -> int:
        return int(self._total(0))

    @property
    def total_seconds(self) -> float:
        return float(self._total(1))

    @property
    def errors(self) -> int:
        return int(self._total(2))

    def record(self, component: str, seconds: float, failed: bool) -> None:
        counters = self.entry(component)
        counters[0] += 1
        counters[1] += seconds
        if failed:
            counters[2] += 1

    def as_dict(self) -> dict[str, Any]:
        components = list(self.per_component.items())
        return {
            "calls": sum(int(c) for _, (c, _t, _e) in components),
            "errors": sum(int(e) for _, (_c, _t, e) in components),
            "total_seconds": round(sum(t for _, (_c, t, _e) in components), 6),
            "last_error": self.last_error,
            "components": {
                name: {
                    "calls": int(c),
                    "errors": int(e),
                    "mean_ms": round(1000 * t / c, 4) if c else 0.0,
                }
                for name, (c, t, e) in components
            },
        }
