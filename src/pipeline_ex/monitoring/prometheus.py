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
- ``pipeline_ex_plugin_call_seconds{plugin, kind, component}`` histogram (buckets a
  factor of 4 apart, ``histogram.EXPOSED``), only for components called at least once
- ``pipeline_ex_runs_total{outcome}``

The collector reads the seam on each scrape, so nothing is kept twice and a scrape costs
one read of each cell.  A never-called component has its ``calls_total`` (0) but no
histogram: with only the built-in plugins loaded, 62 components' empty histograms were 87%
of a 246 KB scrape.  ``TextRenderer`` writes what ``prometheus_client.generate_latest``
writes for these families (a test compares the bytes), without its per-sample validation
and escaping of label names that are fixed here.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

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
        headlines = monitoring.headlines()
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
        for plugin in headlines:
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
            if reading.calls:
                buckets = [(_le(bound), count) for bound, count in cumulative(reading.buckets)]
                latency.add_metric(key, buckets, reading.sum_ns / 1e9)
        yield from (calls, errors, latency)

        runs = CounterMetricFamily(
            "pipeline_ex_runs", "Workflow runs by outcome", labels=["outcome"]
        )
        for outcome, count in sorted(monitoring.run_counts().items()):
            runs.add_metric([outcome], count)
        yield runs


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


#: Metric types as the text format 0.0.4 names them (``generate_latest``'s munging).
_TEXT_TYPES = {"unknown": "untyped"}
#: Types whose names or samples ``generate_latest`` munges further: left to it.
_OTHER_TYPES = frozenset({"info", "stateset", "gaugehistogram"})
_PLAIN_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_PLAIN_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _escape(value: str) -> str:
    """A label value as the text format writes it (backslash, newline, double quote)."""
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value


class TextRenderer:
    """Writes the text exposition format (0.0.4) of a registry: byte for byte what
    ``generate_latest`` writes, faster for the families ``MonitoringCollector`` builds.

    The label sets of a scrape are nearly all those of the previous one, so each one's
    rendered text is kept (up to ``max_labels`` sets, then the memo starts over), and a
    count below a million is written without ``floatToGoString``'s float round trip.
    A family this fast path does not cover (a collector someone else registered on the
    Runtime's registry with timestamps, exemplars, OpenMetrics-only samples or names that
    need escaping) makes the whole scrape go through ``generate_latest``.
    """

    def __init__(self, max_labels: int = 50_000) -> None:
        self.max_labels = max_labels
        self._labels: dict[tuple[tuple[str, str], ...], str] = {}
        self._lock = threading.Lock()

    def render(self, registry: CollectorRegistry) -> bytes:
        families = list(registry.collect())
        with self._lock:  # the memo is shared by concurrent scrapes
            text = self._render(families)
        return text if text is not None else _fallback(families)

    def _render(self, families: list[Metric]) -> bytes | None:
        lines: list[str] = []
        append = lines.append
        memo = self._labels
        if len(memo) > self.max_labels:
            memo.clear()
        for metric in families:
            name, kind = metric.name, metric.type
            if not _PLAIN_NAME.fullmatch(name) or kind in _OTHER_TYPES:
                return None
            if kind == "counter":
                name += "_total"
            doc = metric.documentation.replace("\\", "\\\\").replace("\n", "\\n")
            append(f"# HELP {name} {doc}\n# TYPE {name} {_TEXT_TYPES.get(kind, kind)}\n")
            special = {metric.name + suffix for suffix in ("_created", "_gsum", "_gcount")}
            for sample in metric.samples:
                if (
                    sample.timestamp is not None
                    or sample.exemplar is not None
                    or sample.native_histogram is not None
                    or sample.name in special
                    or not _PLAIN_NAME.fullmatch(sample.name)
                ):
                    return None
                labels = sample.labels
                text = ""
                if labels:
                    items = tuple(labels.items())
                    found = memo.get(items)
                    if found is None:
                        ordered = sorted(items)
                        if not all(_PLAIN_LABEL.fullmatch(k) for k, _ in ordered):
                            return None
                        inner = ",".join(f'{k}="{_escape(v)}"' for k, v in ordered)
                        found = memo[items] = "{" + inner + "}"
                    text = found
                value = sample.value
                if type(value) is int and 0 <= value < 1_000_000:
                    shown = f"{value}.0"
                else:
                    shown = floatToGoString(value)  # type: ignore[no-untyped-call]
                append(f"{sample.name}{text} {shown}\n")
        return "".join(lines).encode("utf-8")


def _fallback(families: list[Metric]) -> bytes:
    """``generate_latest`` over families already collected (collected once per scrape)."""

    class Collected(Collector):
        def collect(self) -> Iterator[Metric]:
            return iter(families)

    return generate_latest(Collected())


def build_registry(monitoring: Monitoring) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MonitoringCollector(monitoring))
    return registry
