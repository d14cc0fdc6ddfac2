"""Prometheus export: a custom collector over the metrics seam, in a ``CollectorRegistry``
the Runtime owns (``runtime.monitoring.registry``), never the process-wide default one.

Series (every one labelled ``plugin``; component series also ``kind`` and ``component``):

- ``pipeline_ex_plugin_info{plugin, version, isolation}`` 1
- ``pipeline_ex_plugin_status{plugin, status}`` 1 for the current status, 0 for the others
- ``pipeline_ex_plugin_loads_total``, ``pipeline_ex_plugin_restarts_total``,
  ``pipeline_ex_plugin_load_seconds`` (the last load)
- ``pipeline_ex_plugin_health_ok`` (1/0; absent until a check ran)
- ``pipeline_ex_plugin_calls_total{plugin, kind, component}``
- ``pipeline_ex_plugin_errors_total{plugin, kind, component, code}``
- ``pipeline_ex_plugin_call_seconds{plugin, kind, component}`` histogram (log-2 buckets)
- ``pipeline_ex_runs_total{outcome}``

The collector reads the seam on each scrape, so nothing is kept twice and a scrape costs
one read of each cell.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from pipeline_ex.monitoring.histogram import cumulative
from pipeline_ex.plugins.registry import PluginStatus

if TYPE_CHECKING:
    from pipeline_ex.monitoring.service import Monitoring

STATUSES = [str(s) for s in PluginStatus]


class MonitoringCollector(Collector):
    """Turns one ``Monitoring``'s snapshot and cells into metric families on each scrape."""

    def __init__(self, monitoring: Monitoring) -> None:
        self.monitoring = monitoring

    def describe(self) -> list[Metric]:
        return []  # series depend on the plugins loaded; collected, not pre-declared

    def collect(self) -> Iterator[Metric]:
        monitoring = self.monitoring
        snapshot = monitoring.snapshot()
        info = GaugeMetricFamily(
            "pipeline_ex_plugin_info",
            "Loaded plugin version and isolation tier",
            labels=["plugin", "version", "isolation"],
        )
        status = GaugeMetricFamily(
            "pipeline_ex_plugin_status",
            "1 for the plugin's current status",
            labels=["plugin", "status"],
        )
        loads = CounterMetricFamily(
            "pipeline_ex_plugin_loads", "Successful loads and reloads", labels=["plugin"]
        )
        restarts = CounterMetricFamily(
            "pipeline_ex_plugin_restarts",
            "Restarts of an isolated plugin's child process",
            labels=["plugin"],
        )
        load_seconds = GaugeMetricFamily(
            "pipeline_ex_plugin_load_seconds", "Duration of the last load", labels=["plugin"]
        )
        health = GaugeMetricFamily(
            "pipeline_ex_plugin_health_ok",
            "1 when the last health check passed, 0 when it failed",
            labels=["plugin"],
        )
        for plugin in snapshot.plugins:
            info.add_metric([plugin.name, plugin.version or "", plugin.isolation], 1)
            for each in STATUSES:
                status.add_metric([plugin.name, each], 1 if each == plugin.status else 0)
            loads.add_metric([plugin.name], plugin.loads)
            restarts.add_metric([plugin.name], plugin.restarts)
            if plugin.load_seconds is not None:
                load_seconds.add_metric([plugin.name], plugin.load_seconds)
            if plugin.health.ok is not None:
                health.add_metric([plugin.name], 1 if plugin.health.ok else 0)
        yield from (info, status, loads, restarts, load_seconds, health)

        labels = ["plugin", "kind", "component"]
        calls = CounterMetricFamily(
            "pipeline_ex_plugin_calls", "Calls into plugin code", labels=labels
        )
        errors = CounterMetricFamily(
            "pipeline_ex_plugin_errors",
            "Plugin calls that raised, by error code",
            labels=[*labels, "code"],
        )
        latency = HistogramMetricFamily(
            "pipeline_ex_plugin_call_seconds",
            "Duration of calls into plugin code",
            labels=labels,
        )
        for reading in monitoring.metrics.read():
            key = [reading.key.plugin, reading.key.kind, reading.key.name]
            calls.add_metric(key, reading.calls)
            for code, count in sorted(reading.errors_by_code.items()):
                errors.add_metric([*key, code], count)
            buckets = [(_le(bound), count) for bound, count in cumulative(reading.buckets)]
            latency.add_metric(key, buckets, reading.sum_ns / 1e9)
        yield from (calls, errors, latency)

        runs = CounterMetricFamily(
            "pipeline_ex_runs", "Workflow runs by outcome", labels=["outcome"]
        )
        for outcome, count in sorted(snapshot.run_counts.items()):
            runs.add_metric([outcome], count)
        yield runs


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


def build_registry(monitoring: Monitoring) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MonitoringCollector(monitoring))
    return registry
