"""OpenTelemetry tracing (the optional ``otel`` extra): a span per run, per step and per
plugin call, nested as they run, with ``pipeline_ex.plugin``/``pipeline_ex.component``/
``pipeline_ex.kind`` attributes on plugin calls.

When is it on?

- ``Runtime(tracer_provider=...)``: spans go to that provider (tests use the SDK's
  ``InMemorySpanExporter``);
- else, with the SDK installed, when the standard variables ask for an exporter
  (``OTEL_TRACES_EXPORTER``, e.g. ``console`` or ``otlp`` with its package installed, or
  ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``): a provider is built from them once per
  process and made the global one (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``,
  ``OTEL_TRACES_SAMPLER`` apply as the SDK reads them);
- else, when the application already set a global SDK provider, that one;
- otherwise off, and free: no observer is subscribed, so dispatch checks one empty list.

Without the extra (``import opentelemetry`` fails), ``install`` returns ``None`` at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline_ex.monitoring.log_context import RunScope
    from pipeline_ex.monitoring.metrics import ComponentKey
    from pipeline_ex.monitoring.runs import RunRecord
    from pipeline_ex.monitoring.service import Monitoring

logger = logging.getLogger(__name__)

SCOPE = "pipeline_ex"
_env_lock = threading.Lock()


def install(monitoring: Monitoring, tracer_provider: Any = None) -> SpanObserver | None:
    """Subscribe a ``SpanObserver`` to ``monitoring`` when tracing is on (module doc).

    OpenTelemetry is not even imported unless a provider is given, the environment asks
    for an exporter, or the application imported it already (and may have configured it).
    """
    if tracer_provider is None and not _wants_export() and "opentelemetry.trace" not in sys.modules:
        return None
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    provider = tracer_provider if tracer_provider is not None else _provider_from_env(trace)
    if provider is None:
        return None
    observer = SpanObserver(provider.get_tracer(SCOPE))
    monitoring.subscribe(observer)
    return observer


def _wants_export() -> bool:
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def _provider_from_env(trace: Any) -> Any:
    current = trace.get_tracer_provider()
    try:
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError:
        return None
    if isinstance(current, TracerProvider):
        return current  # the application (or an earlier Runtime) configured one
    if not _wants_export():
        return None
    with _env_lock:
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            return current
        provider = TracerProvider()
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        for exporter in _exporters():
            provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        return trace.get_tracer_provider()


def _exporters() -> list[Any]:
    """The exporters ``OTEL_TRACES_EXPORTER`` names (default ``otlp``), found through the
    ``opentelemetry_traces_exporter`` entry points as the SDK's own configurator does."""
    from importlib.metadata import entry_points

    names = [
        n.strip()
        for n in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")
        if n.strip() and n.strip() != "none"
    ]
    found = {ep.name: ep for ep in entry_points(group="opentelemetry_traces_exporter")}
    exporters = []
    for name in names:
        entry = found.get(name)
        if entry is None and name == "otlp":
            entry = found.get("otlp_proto_grpc") or found.get("otlp_proto_http")
        if entry is None:
            logger.warning(
                "OTEL_TRACES_EXPORTER=%s: no such exporter installed (have: %s)",
                name,
                ", ".join(sorted(found)) or "none",
            )
            continue
        exporters.append(entry.load()())
    return exporters


class _Open(threading.local):
    """Per thread: the spans opened by run and step events, with their context tokens."""

    def __init__(self) -> None:
        self.stack: list[tuple[str, Any, Any]] = []


class SpanObserver:
    """A monitoring observer that turns runs, steps and plugin calls into spans."""

    def __init__(self, tracer: Any) -> None:
        from opentelemetry import context, trace

        self._tracer = tracer
        self._context = context
        self._trace = trace
        self._open = _Open()

    def _push(self, marker: str, span: Any) -> None:
        token = self._context.attach(self._trace.set_span_in_context(span))
        self._open.stack.append((marker, span, token))

    def _pop_to(self, marker: str, error: str | None) -> None:
        stack = self._open.stack
        if not any(entry[0] == marker for entry in stack):
            return
        while stack:
            name, span, token = stack.pop()
            self._context.detach(token)
            if error is not None:
                span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, error))
            span.end()
            if name == marker:
                return

    # -- runs and steps (monitoring events) ------------------------------------------
    def run_started(self, run: RunScope) -> None:
        span = self._tracer.start_span(
            f"run {run.workflow}",
            attributes={"pipeline_ex.workflow": run.workflow, "pipeline_ex.run_id": run.run_id},
        )
        self._push(f"run:{run.run_id}", span)

    def run_finished(self, record: RunRecord) -> None:
        stack = self._open.stack
        marker = f"run:{record.id}"
        for name, span, _ in stack:
            if name == marker:
                span.set_attribute("pipeline_ex.outcome", record.outcome)
                span.set_attribute("pipeline_ex.steps", record.steps)
                if record.error_code:
                    span.set_attribute("pipeline_ex.error_code", record.error_code)
        self._pop_to(marker, record.error if record.outcome != "ok" else None)

    def step_started(self, path: str, name: str, kind: str) -> None:
        span = self._tracer.start_span(
            f"step {name}",
            attributes={
                "pipeline_ex.step": name,
                "pipeline_ex.step_type": str(kind),
                "pipeline_ex.path": path,
            },
        )
        self._push(f"step:{path}", span)

    def step_finished(self, path: str, error: str | None) -> None:
        self._pop_to(f"step:{path}", error)

    # -- plugin calls (the metrics seam's per-call hook) -------------------------------
    def call_started(self, key: ComponentKey) -> Any:
        span = self._tracer.start_span(
            f"{key.plugin} {key.kind} {key.name}",
            attributes={
                "pipeline_ex.plugin": key.plugin,
                "pipeline_ex.kind": key.kind,
                "pipeline_ex.component": key.name,
            },
        )
        token = self._context.attach(self._trace.set_span_in_context(span))
        return span, token

    def call_finished(self, token: Any, error: BaseException | None) -> None:
        span, context_token = token
        with contextlib.suppress(Exception):  # ended in another context: nothing to detach
            self._context.detach(context_token)
        if error is not None:
            span.record_exception(error)
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, type(error).__name__))
        span.end()
