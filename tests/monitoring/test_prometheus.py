"""Prometheus export: the Runtime's own CollectorRegistry, parsed back with
``prometheus_client.parser``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from monitoring_samples import AsksProvider, Boom, Echo, plugin
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from pipeline_ex import Runtime
from pipeline_ex.errors import StepFailedError


@pytest.fixture
def rt() -> Iterator[Runtime]:
    runtime = Runtime()
    runtime.plugins.load_plugin("echoes", plugin("echoes", providers={"echo": Echo}))
    runtime.plugins.load_plugin("asker", plugin("asker", steps={"ask": AsksProvider, "boom": Boom}))
    try:
        yield runtime
    finally:
        runtime.close()


def _samples(runtime: Runtime) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    text = runtime.monitoring.prometheus_text().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def _value(
    samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str
) -> float:
    matches = [v for got, v in samples[name] if all(got.get(k) == x for k, x in labels.items())]
    assert len(matches) == 1, (name, labels, samples.get(name))
    return matches[0]


def test_calls_errors_and_latency_are_exported_per_plugin_and_component(rt: Runtime) -> None:
    workflow = {
        "workflow": {"name": "p", "steps": [{"name": "a", "type": "ask", "provider": "echo"}]}
    }
    rt.run(workflow)
    rt.run(workflow)
    with pytest.raises(StepFailedError):
        rt.run({"workflow": {"name": "p", "steps": [{"name": "b", "type": "boom"}]}})
    samples = _samples(rt)
    key = {"plugin": "echoes", "kind": "provider", "component": "echo"}
    assert _value(samples, "pipeline_ex_plugin_calls_total", **key) == 2
    assert _value(samples, "pipeline_ex_plugin_call_seconds_count", **key) == 2
    assert _value(samples, "pipeline_ex_plugin_call_seconds_bucket", le="+Inf", **key) == 2
    assert _value(samples, "pipeline_ex_plugin_call_seconds_sum", **key) > 0
    assert (
        _value(
            samples,
            "pipeline_ex_plugin_errors_total",
            plugin="asker",
            kind="step_type",
            component="boom",
            code="crashed",
        )
        == 1
    )
    assert _value(samples, "pipeline_ex_plugin_status", plugin="asker", status="active") == 1
    assert _value(samples, "pipeline_ex_plugin_status", plugin="asker", status="failed") == 0
    assert _value(samples, "pipeline_ex_plugin_loads_total", plugin="asker") == 1
    assert _value(samples, "pipeline_ex_plugin_info", plugin="asker", version="1.2.3") == 1
    assert _value(samples, "pipeline_ex_runs_total", outcome="ok") == 2
    assert _value(samples, "pipeline_ex_runs_total", outcome="failed") == 1
    lifecycle = {"plugin": "asker", "kind": "lifecycle", "component": "init"}
    assert _value(samples, "pipeline_ex_plugin_calls_total", **lifecycle) == 1


def test_each_runtime_owns_its_registry_and_never_the_global_one() -> None:
    with Runtime() as first, Runtime() as second:
        first.run(
            {
                "workflow": {
                    "name": "p",
                    "steps": [
                        {
                            "name": "a",
                            "type": "claude",
                            "prompt": [{"type": "static", "content": "x"}],
                        }
                    ],
                }
            }
        )
        assert first.monitoring.registry is not second.monitoring.registry
        assert first.monitoring.registry is not REGISTRY
        assert REGISTRY.get_sample_value("pipeline_ex_runs_total", {"outcome": "ok"}) is None
        key = {"plugin": "core_steps", "kind": "step_type", "component": "claude"}
        assert _value(_samples(first), "pipeline_ex_plugin_calls_total", **key) == 1
        assert _value(_samples(second), "pipeline_ex_plugin_calls_total", **key) == 0


def test_never_called_components_have_a_zero_count_and_no_histogram(rt: Runtime) -> None:
    samples = _samples(rt)
    idle = {"plugin": "echoes", "kind": "provider", "component": "echo"}
    assert _value(samples, "pipeline_ex_plugin_calls_total", **idle) == 0
    for suffix in ("bucket", "count", "sum"):
        assert not [
            labels
            for labels, _ in samples.get(f"pipeline_ex_plugin_call_seconds_{suffix}", [])
            if all(labels.get(k) == v for k, v in idle.items())
        ]
    called = {"plugin": "asker", "kind": "lifecycle", "component": "init"}
    assert _value(samples, "pipeline_ex_plugin_call_seconds_count", **called) == 1
    buckets = [
        labels["le"]
        for labels, _ in samples["pipeline_ex_plugin_call_seconds_bucket"]
        if all(labels.get(k) == v for k, v in called.items())
    ]
    assert len(buckets) == 15 and buckets[-1] == "+Inf"


class _Odd(Collector):
    """Label values that need escaping, and (with ``stamped``) a sample with a timestamp,
    which only ``generate_latest`` writes."""

    def __init__(self, stamped: bool) -> None:
        self.stamped = stamped

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("odd_value", "help with \\ and\nnewline", labels=["v"])
        family.add_metric(['quote " back \\ line \n end'], 1.5)
        family.add_metric(["big"], 12_345_678)
        family.add_metric(["small"], 7, timestamp=1.0 if self.stamped else None)
        yield family


@pytest.mark.parametrize("stamped", [False, True])
def test_prometheus_text_is_what_generate_latest_writes(rt: Runtime, stamped: bool) -> None:
    workflow = {
        "workflow": {"name": "p", "steps": [{"name": "a", "type": "ask", "provider": "echo"}]}
    }
    rt.run(workflow)
    rt.monitoring.registry.register(_Odd(stamped))
    first = rt.monitoring.prometheus_text()
    assert first == generate_latest(rt.monitoring.registry)
    rt.run(workflow)  # counts change, label sets are remembered from the first scrape
    assert rt.monitoring.prometheus_text() == generate_latest(rt.monitoring.registry)
    assert b'v="quote \\" back \\\\ line \\n end"' in first
