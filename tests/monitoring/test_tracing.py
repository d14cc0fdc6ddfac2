"""OpenTelemetry spans (the ``otel`` extra): runs, steps and plugin calls, nested."""

from __future__ import annotations

from typing import Any

import pytest
from monitoring_samples import AsksProvider, Echo, plugin

pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

from pipeline_ex import Runtime
from pipeline_ex.monitoring import tracing

RUN = {"workflow": {"name": "traced", "steps": [{"name": "q", "type": "ask", "provider": "echo"}]}}


def test_spans_for_the_run_each_step_and_each_plugin_call() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with Runtime(tracer_provider=provider) as rt:
        assert rt.tracing is not None
        rt.plugins.load_plugin("echoes", plugin("echoes", providers={"echo": Echo}))
        rt.plugins.load_plugin("asker", plugin("asker", steps={"ask": AsksProvider}))
        exporter.clear()  # keep the run's spans only
        rt.run(RUN)
    spans = {span.name: span for span in exporter.get_finished_spans()}
    run, step = spans["run traced"], spans["step q"]
    execute, query = spans["asker step_type ask"], spans["echoes provider echo"]
    assert step.parent is not None and step.parent.span_id == run.context.span_id
    assert execute.parent is not None and execute.parent.span_id == step.context.span_id
    assert query.parent is not None and query.parent.span_id == execute.context.span_id
    assert len({s.context.trace_id for s in (run, step, execute, query)}) == 1
    assert query.attributes is not None
    assert dict(query.attributes) == {
        "pipeline_ex.plugin": "echoes",
        "pipeline_ex.kind": "provider",
        "pipeline_ex.component": "echo",
    }
    assert run.attributes is not None and run.attributes["pipeline_ex.outcome"] == "ok"


def test_lifecycle_calls_are_traced_too() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    class Asker(plugin("asker", steps={"ask": AsksProvider})):  # type: ignore[misc]
        def terminate(self, state: Any) -> None:  # its own: plugin code, so traced
            return None

    with Runtime(tracer_provider=provider) as rt:
        rt.plugins.load_plugin("asker", Asker)
    names = {span.name for span in exporter.get_finished_spans()}
    assert {"asker lifecycle init", "asker lifecycle terminate"} <= names
    # Plugin's own get_schema_extensions (not overridden) is a host stand-in: no call, no span
    assert "asker lifecycle get_schema_extensions" not in names


def test_tracing_is_off_without_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(tracing, "_wants_export", lambda: False)
    monkeypatch.delitem(__import__("sys").modules, "opentelemetry.trace", raising=False)
    with Runtime() as rt:
        assert rt.tracing is None and rt.monitoring.metrics.tracers == []


def test_the_environment_configures_an_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setattr(tracing, "_exporters", lambda: [InMemorySpanExporter()])
    from opentelemetry import trace

    monkeypatch.setattr(trace, "get_tracer_provider", lambda: trace.NoOpTracerProvider())
    installed: list[Any] = []
    monkeypatch.setattr(trace, "set_tracer_provider", installed.append)
    provider = tracing._provider_from_env(trace)
    assert installed and isinstance(installed[0], TracerProvider)
    assert provider is not None
