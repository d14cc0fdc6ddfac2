"""Frozen, JSON-ready copies of what monitoring knows at one moment.

``MonitoringSnapshot.as_dict()`` is the document the status page, ``plugins status --json``
and any HTTP API serve; its keys are the contract (``/work`` brief: h11-contract) and only
ever grow.  Every float is finite and every time is an ISO-8601 string, so
``json.dumps(..., allow_nan=False)`` always succeeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipeline_ex.monitoring.health import HealthState
from pipeline_ex.monitoring.runs import RunRecord


def _finite(value: float | None, digits: int = 6) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits)


@dataclass(frozen=True)
class ComponentSnapshot:
    """One component's (or one lifecycle operation's, or hook's) counters."""

    kind: str
    name: str
    calls: int
    errors: int
    errors_by_code: dict[str, int]
    p50_ms: float | None
    p99_ms: float | None
    total_seconds: float = 0.0
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "calls": self.calls,
            "errors": self.errors,
            "errors_by_code": dict(self.errors_by_code),
            "p50_ms": _finite(self.p50_ms),
            "p99_ms": _finite(self.p99_ms),
            "total_seconds": _finite(self.total_seconds),
            "last_error": self.last_error,
        }


@dataclass(frozen=True)
class StatusEntry:
    at: datetime
    status: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"at": self.at.isoformat(), "status": self.status, "reason": self.reason}


@dataclass(frozen=True)
class PluginSnapshot:
    """One plugin: status, load, calls and errors (all kinds), latency, health, history.

    ``components`` holds the step types, providers and schema extensions; ``operations``
    the lifecycle calls (init, get_*, terminate, health_check) and hooks (preflight,
    semantic_check), which count in ``calls``/``errors`` too.  ``p50_ms``/``p99_ms`` are
    over step and provider calls only (what a workflow waits for), so a plugin whose only
    calls so far are lifecycle calls and health checks shows calls but no latency.
    """

    name: str
    version: str | None
    status: str
    isolation: str
    load_seconds: float | None
    loads: int
    restarts: int
    calls: int
    errors: int
    errors_by_code: dict[str, int]
    p50_ms: float | None
    p99_ms: float | None
    last_error: str | None
    health: HealthState
    history: tuple[StatusEntry, ...]
    components: tuple[ComponentSnapshot, ...]
    operations: tuple[ComponentSnapshot, ...] = ()
    error_code: str | None = None
    origin: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "status": self.status,
            "isolation": self.isolation,
            "load_seconds": _finite(self.load_seconds),
            "loads": self.loads,
            "restarts": self.restarts,
            "calls": self.calls,
            "errors": self.errors,
            "errors_by_code": dict(self.errors_by_code),
            "p50_ms": _finite(self.p50_ms),
            "p99_ms": _finite(self.p99_ms),
            "last_error": self.last_error,
            "error_code": self.error_code,
            "origin": self.origin,
            "health": self.health.as_dict(),
            "history": [entry.as_dict() for entry in self.history],
            "components": [c.as_dict() for c in self.components],
            "operations": [c.as_dict() for c in self.operations],
        }


@dataclass(frozen=True)
class MonitoringSnapshot:
    plugins: tuple[PluginSnapshot, ...]
    runs: tuple[RunRecord, ...]
    taken_at: datetime
    run_counts: dict[str, int] = field(default_factory=dict)

    def plugin(self, name: str) -> PluginSnapshot | None:
        return next((p for p in self.plugins if p.name == name), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "plugins": [p.as_dict() for p in self.plugins],
            "runs": [r.as_dict() for r in self.runs],
            "run_counts": dict(self.run_counts),
            "taken_at": self.taken_at.isoformat(),
        }
