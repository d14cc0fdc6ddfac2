"""Monitoring: metrics of every plugin call, health, run records, and their exports.

``runtime.monitoring`` (a ``Monitoring``) is the entry point: ``snapshot()``,
``plugin(name)``, ``runs()``, ``check_health()``, ``subscribe(observer)``,
``prometheus_text()``.  The modules, one concept each: ``metrics`` (the seam the guard
counts into), ``histogram`` (latency buckets), ``runs`` (``RunRecord``), ``health``
(checks, error-rate window, the health thread), ``settings`` (the config's
``monitoring:`` section), ``snapshot`` (frozen copies), ``service`` (``Monitoring``),
``prometheus`` (the collector), ``tracing`` (OpenTelemetry, optional), ``log_context`` and
``log_format`` (what every log record carries).

Names are imported on first use, so the guard (which needs only ``metrics``) does not pay
for the rest when ``pipeline_ex`` is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline_ex.lazy_exports import exports

if TYPE_CHECKING:
    from pipeline_ex.monitoring.health import HealthState
    from pipeline_ex.monitoring.log_context import ContextFilter
    from pipeline_ex.monitoring.metrics import ComponentKey, Metrics
    from pipeline_ex.monitoring.runs import RunRecord
    from pipeline_ex.monitoring.service import Monitoring, Observer
    from pipeline_ex.monitoring.settings import HealthSettings
    from pipeline_ex.monitoring.snapshot import (
        ComponentSnapshot,
        MonitoringSnapshot,
        PluginSnapshot,
    )

_EXPORTS = {
    "ComponentKey": "metrics",
    "ComponentSnapshot": "snapshot",
    "ContextFilter": "log_context",
    "HealthSettings": "settings",
    "HealthState": "health",
    "Metrics": "metrics",
    "Monitoring": "service",
    "MonitoringSnapshot": "snapshot",
    "Observer": "service",
    "PluginSnapshot": "snapshot",
    "RunRecord": "runs",
}

__all__ = [
    "ComponentKey",
    "ComponentSnapshot",
    "ContextFilter",
    "HealthSettings",
    "HealthState",
    "Metrics",
    "Monitoring",
    "MonitoringSnapshot",
    "Observer",
    "PluginSnapshot",
    "RunRecord",
]


__getattr__ = exports(__name__, {name: f".{module}" for name, module in _EXPORTS.items()})
