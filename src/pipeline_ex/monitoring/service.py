"""``Monitoring``: one per Runtime; what the Python API, the CLI, Prometheus, tracing and
the status page read.

It owns the metrics seam (``Metrics``, shared with the guard that counts every plugin
call), the run history, the health monitor and the Prometheus ``CollectorRegistry``
(never the process-wide default one, so two Runtimes in one process export apart).
Observers subscribe here (``subscribe``), never to the guard.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from pipeline_ex.errors import PipelineExError, StepFailedError
from pipeline_ex.log import get_logger
from pipeline_ex.monitoring import log_context
from pipeline_ex.monitoring.health import HealthMonitor, HealthState
from pipeline_ex.monitoring.histogram import BUCKETS, quantile_ms
from pipeline_ex.monitoring.metrics import CallTracer, ComponentKey, Metrics
from pipeline_ex.monitoring.runs import DEFAULT_RUN_HISTORY, RunHistory, RunRecord
from pipeline_ex.monitoring.settings import HealthSettings
from pipeline_ex.plugins.registry import PluginRecord, PluginStatus, StatusChange

# The snapshot classes (and uuid, for run ids) are imported where they are used: a Runtime
# that never reads its monitoring, such as ``pipeline-ex steps``, skips them.
if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from pipeline_ex.monitoring.prometheus import TextRenderer
    from pipeline_ex.monitoring.snapshot import (
        ComponentSnapshot,
        MonitoringSnapshot,
        PluginSnapshot,
    )
    from pipeline_ex.plugins.loader import PluginConfig
    from pipeline_ex.plugins.manager import PluginManager

logger = get_logger(__name__)

T = TypeVar("T")

EventSink = Callable[[str, Mapping[str, Any]], None]

#: Component kinds listed under ``components`` (the others under ``operations``).
COMPONENT_KINDS = ("step_type", "provider", "schema_extension")


class Observer:
    """What a subscriber may implement (every method is optional; this base class does
    nothing).  Methods run on the thread where the event happens, so keep them short;
    an observer that raises is logged and otherwise ignored.

    ``call_started``/``call_finished`` wrap every plugin call (tracing); implementing them
    costs each dispatch a little, the others cost nothing per call.
    """

    def status_changed(self, plugin: str, change: StatusChange) -> None:
        """A plugin's status changed (loaded, failed, degraded, recovered, unloaded)."""

    def run_started(self, run: log_context.RunScope) -> None:
        """A workflow run began (on the thread that runs it)."""

    def run_finished(self, record: RunRecord) -> None:
        """A run ended, whatever its outcome; ``record`` is what ``runs()`` lists."""

    def step_started(self, path: str, name: str, kind: str) -> None:
        """A step began (on the thread that runs it)."""

    def step_finished(self, path: str, error: str | None) -> None:
        """The step at ``path`` ended (``error`` when it failed)."""


class PluginHeadline(NamedTuple):
    """A plugin's fields that need no reading of its call counters (``headlines``)."""

    name: str
    version: str | None
    status: str
    isolation: str
    load_seconds: float | None
    loads: int
    restarts: int
    health: HealthState


class _TracerAdapter(CallTracer):
    def __init__(self, observer: Any) -> None:
        self.observer = observer

    def start(self, key: ComponentKey) -> Any:
        return self.observer.call_started(key)

    def end(self, token: Any, error: BaseException | None) -> None:
        self.observer.call_finished(token, error)


class Monitoring:
    """Metrics, health, runs and exports of one Runtime (``runtime.monitoring``)."""

    def __init__(
        self,
        manager: PluginManager,
        *,
        run_history: int = DEFAULT_RUN_HISTORY,
    ) -> None:
        self.manager = manager
        self.metrics: Metrics = manager.guard.metrics
        self._runs = RunHistory(run_history)
        self._observers: list[Any] = []
        self._lock = threading.Lock()
        self._settings: dict[str, Any] = {}
        self._entry_settings: dict[str, Mapping[str, Any]] = {}
        self.health = HealthMonitor(manager, self.metrics, self.settings_for)
        self._registry: CollectorRegistry | None = None
        self._renderer: TextRenderer | None = None
        manager.registry.listeners.append(self._status_changed)

    # -- configuration -----------------------------------------------------------------
    def configure(self, config: PluginConfig | None) -> None:
        """Read the plugin config's ``monitoring:`` sections (top level and per entry)."""
        if config is None:
            return
        self._settings = dict(config.monitoring)
        self._entry_settings = {s.name: s.monitoring for s in config.specs if s.monitoring}

    def settings_for(self, plugin: str) -> HealthSettings:
        return HealthSettings.merged(self._settings, self._entry_settings.get(plugin))

    def start(self) -> None:
        """Start the health thread when any plugin is watched (``health_interval_s`` or
        ``error_rate``); plugins becoming active later start it too."""
        self.health.start()

    def close(self) -> None:
        self.health.stop()

    # -- the seam ----------------------------------------------------------------------
    def subscribe(self, observer: Any) -> Callable[[], None]:
        """Add an observer (see ``Observer``: any subset of its methods); returns the
        function that removes it again."""
        tracer = _TracerAdapter(observer) if hasattr(observer, "call_started") else None
        with self._lock:
            self._observers = [*self._observers, observer]
            if tracer is not None:
                self.metrics.tracers.append(tracer)

        def unsubscribe() -> None:
            with self._lock:
                self._observers = [o for o in self._observers if o is not observer]
                if tracer is not None and tracer in self.metrics.tracers:
                    self.metrics.tracers.remove(tracer)

        return unsubscribe

    def _notify(self, method: str, *args: Any) -> None:
        for observer in self._observers:
            handler = getattr(observer, method, None)
            if handler is None:
                continue
            try:
                handler(*args)
            except Exception:
                logger.exception("monitoring observer %r failed in %s", observer, method)

    def _status_changed(self, name: str, change: StatusChange) -> None:
        if change.status == PluginStatus.ACTIVE and self.settings_for(name).watched:
            # a plugin loaded after the Runtime was built (admin load, load_plugin) may be
            # the first one to need the health thread
            self.health.start()
        self._notify("status_changed", name, change)

    # -- runs --------------------------------------------------------------------------
    def record_run(
        self,
        workflow: str,
        run: Callable[[EventSink], T],
        *,
        on_event: EventSink | None = None,
        source: str = "api",
        mode: str = "mock",
        labels: Mapping[str, str] | None = None,
        run_id: str | None = None,
    ) -> T:
        """Run ``run(sink)`` as one recorded workflow run; ``sink`` is the event sink to
        give the executor (it forwards to ``on_event``)."""
        import uuid

        scope = log_context.RunScope(
            run_id=run_id or uuid.uuid4().hex[:16], workflow=workflow, owner_of=self._owner_of
        )
        started_at = datetime.now(UTC)
        started = time.perf_counter()
        token = log_context.enter_run(scope)
        observed = bool(self._observers)

        def sink(event: str, info: Mapping[str, Any]) -> None:
            if event == "step_started":
                path = str(info.get("path", ""))
                log_context.step_started(path, str(info.get("name")), str(info.get("type")))
                if observed:
                    self._notify("step_started", path, str(info.get("name")), info.get("type"))
            elif event in ("step_finished", "step_failed"):
                path = str(info.get("path", ""))
                log_context.step_ended(path)
                if observed:
                    self._notify("step_finished", path, info.get("error"))
            if on_event is not None:
                on_event(event, info)

        if observed:
            self._notify("run_started", scope)
        outcome, code, message = "ok", None, None
        try:
            return run(sink)
        except StepFailedError as exc:
            outcome, code, message = "failed", exc.code, exc.message
            raise
        except PipelineExError as exc:
            outcome, code, message = "failed", exc.code, exc.message
            raise
        except KeyboardInterrupt:
            outcome, code, message = "interrupted", "interrupted", "interrupted by the user"
            raise
        except BaseException as exc:
            outcome, code, message = "failed", "crashed", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            log_context.leave_run(token)
            record = RunRecord(
                id=scope.run_id,
                workflow=workflow,
                started_at=started_at,
                duration_s=time.perf_counter() - started,
                outcome=outcome,
                error_code=code,
                error=message,
                steps=scope.steps,
                step_types=tuple(sorted(scope.step_types)),
                providers=tuple(sorted(scope.providers)),
                source=source,
                mode=mode,
                labels=dict(labels or {}),
            )
            self._runs.add(record)
            level = logging.INFO if outcome == "ok" else logging.WARNING
            logger.log(
                level,
                "run %s of %s: %s in %.3f s (%d steps)%s",
                record.id,
                workflow,
                outcome,
                record.duration_s,
                record.steps,
                f" [{code}] {message}" if code else "",
                extra={"workflow": workflow, "run_id": record.id},
            )
            self._notify("run_finished", record)

    def _owner_of(self, step_type: str) -> str | None:
        try:
            return self.manager.steps.owner(step_type)
        except KeyError:
            return None

    def runs(self, limit: int | None = None) -> list[RunRecord]:
        """The runs remembered, newest first (at most ``limit``)."""
        return self._runs.newest(limit)

    def run_counts(self) -> dict[str, int]:
        """Runs since start-up by outcome (not bounded by the history)."""
        return self._runs.counts()

    # -- health ------------------------------------------------------------------------
    def check_health(self, name: str | None = None) -> dict[str, HealthState]:
        """Run the health check of ``name`` (or of every live plugin) now; a failing one
        degrades its plugin, a passing one (with a low error rate) restores it."""
        return self.health.check(name)

    # -- reading -----------------------------------------------------------------------
    def snapshot(self) -> MonitoringSnapshot:
        """Every plugin (load order, then those unloaded since), the recent runs."""
        from pipeline_ex.monitoring.snapshot import MonitoringSnapshot

        records = self.manager.registry
        plugins = [self._plugin(record) for record in records]
        for name in records.departed():
            plugins.append(self._departed(name))
        return MonitoringSnapshot(
            plugins=tuple(plugins),
            runs=tuple(self._runs.newest()),
            taken_at=datetime.now(UTC),
            run_counts=self._runs.counts(),
        )

    def plugin(self, name: str) -> PluginSnapshot | None:
        record = self.manager.registry.get(name)
        if record is not None:
            return self._plugin(record)
        if name in self.manager.registry.departed():
            return self._departed(name)
        return None

    def headlines(self) -> list[PluginHeadline]:
        """What a Prometheus scrape shows of each plugin (the snapshot's order), without
        reading its cells or computing its latency quantiles."""
        records = self.manager.registry
        rows = [self._headline(r.name, r, r.status) for r in records]
        rows.extend(self._headline(n, None, PluginStatus.UNLOADED) for n in records.departed())
        return rows

    def _headline(
        self, name: str, record: PluginRecord | None, status: PluginStatus
    ) -> PluginHeadline:
        return PluginHeadline(
            name=name,
            version=record.version if record is not None else None,
            status=str(status),
            isolation=record.isolation if record is not None else "in_process",
            load_seconds=(
                record.load_time_ms / 1000
                if record is not None and record.load_time_ms is not None
                else None
            ),
            loads=self.metrics.loads(name)[0],
            restarts=_restarts(record),
            health=self.health.state(name),
        )

    def _departed(self, name: str) -> PluginSnapshot:
        history = self.manager.registry.history(name)
        return self._build(name, None, PluginStatus.UNLOADED, history)

    def _plugin(self, record: PluginRecord) -> PluginSnapshot:
        return self._build(record.name, record, record.status, record.history)

    def _build(
        self,
        name: str,
        record: PluginRecord | None,
        status: PluginStatus,
        history: tuple[StatusChange, ...],
    ) -> PluginSnapshot:
        from pipeline_ex.monitoring.snapshot import PluginSnapshot, StatusEntry

        readings = self.metrics.read(name)
        by_key = {(r.key.kind, r.key.name): r for r in readings}
        components: list[ComponentSnapshot] = []
        owned = record.components if record is not None else None
        listed: set[tuple[str, str]] = set()
        if owned is not None:
            for kind, names in (
                ("step_type", owned.step_types),
                ("provider", owned.providers),
                ("schema_extension", owned.schema_extensions),
            ):
                for each in names:
                    listed.add((kind, each))
                    components.append(_component(kind, each, by_key.get((kind, each))))
        for reading in readings:  # counted, but no longer (or never) registered
            key = (reading.key.kind, reading.key.name)
            if reading.key.kind in COMPONENT_KINDS and key not in listed:
                components.append(_component(reading.key.kind, reading.key.name, reading))
        # lifecycle calls first, then hooks (cells are made in no particular order:
        # lifecycle ones when first read)
        operations = [
            _component(r.key.kind, r.key.name, r)
            for r in sorted(readings, key=lambda r: r.key.kind != "lifecycle")
            if r.key.kind not in COMPONENT_KINDS
        ]
        calls = sum(r.calls for r in readings)
        errors = sum(r.errors for r in readings)
        by_code: dict[str, int] = {}
        for reading in readings:
            for code, count in reading.errors_by_code.items():
                by_code[code] = by_code.get(code, 0) + count
        merged = [0] * BUCKETS
        for reading in readings:
            if reading.key.kind in ("step_type", "provider"):
                for index, count in enumerate(reading.buckets):
                    merged[index] += count
        headline = self._headline(name, record, status)
        last_error = self.metrics.last_errors.get(name)
        if record is not None and (
            record.status in (PluginStatus.FAILED, PluginStatus.DEGRADED) or last_error is None
        ):
            last_error = record.last_error or last_error
        return PluginSnapshot(
            name=name,
            version=headline.version,
            status=headline.status,
            isolation=headline.isolation,
            load_seconds=headline.load_seconds,
            loads=headline.loads,
            restarts=headline.restarts,
            calls=calls,
            errors=errors,
            errors_by_code=by_code,
            p50_ms=quantile_ms(merged, 0.5),
            p99_ms=quantile_ms(merged, 0.99),
            last_error=last_error,
            health=headline.health,
            history=tuple(
                StatusEntry(change.at, str(change.status), change.reason) for change in history
            ),
            components=tuple(components),
            operations=tuple(operations),
            error_code=record.error_code if record is not None else None,
            origin=record.origin if record is not None else None,
        )

    # -- Prometheus --------------------------------------------------------------------
    @property
    def registry(self) -> CollectorRegistry:
        """This Runtime's ``prometheus_client.CollectorRegistry`` (built on first use)."""
        if self._registry is None:
            from pipeline_ex.monitoring.prometheus import build_registry

            with self._lock:
                if self._registry is None:
                    self._registry = build_registry(self)
        return self._registry

    def prometheus_text(self) -> bytes:
        """The text exposition format of ``registry`` (what ``/metrics`` serves): the
        bytes ``prometheus_client.generate_latest`` would write, rendered faster."""
        registry = self.registry
        renderer = self._renderer
        if renderer is None:
            from pipeline_ex.monitoring.prometheus import TextRenderer

            renderer = self._renderer = TextRenderer()
        return renderer.render(registry)


def _component(kind: str, name: str, reading: Any) -> ComponentSnapshot:
    from pipeline_ex.monitoring.snapshot import ComponentSnapshot

    if reading is None:
        return ComponentSnapshot(kind, name, 0, 0, {}, None, None)
    return ComponentSnapshot(
        kind=kind,
        name=name,
        calls=reading.calls,
        errors=reading.errors,
        errors_by_code=dict(reading.errors_by_code),
        p50_ms=reading.p50_ms,
        p99_ms=reading.p99_ms,
        total_seconds=reading.sum_ns / 1e9,
        last_error=reading.last_error,
    )


def _restarts(record: PluginRecord | None) -> int:
    """An isolated plugin's restarts, as its host counts them (``ProcessPlugin.restarts``)."""
    if record is None or record.adapter is None:
        return 0
    value = getattr(record.adapter, "restarts", 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
