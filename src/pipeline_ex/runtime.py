"""Runtime: the composition root.

It owns the three registries and the plugin manager, loads the built-in plugins and then
the configured ones, and runs workflows.  The CLI, the tests and library users each build
their own; nothing here is a module-level singleton.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline_ex.builtin import BUILTIN_PLUGINS
from pipeline_ex.configuration import ConfigurationSystem
from pipeline_ex.documents import Document
from pipeline_ex.errors import InvalidInputError
from pipeline_ex.monitoring.metrics import Metrics
from pipeline_ex.monitoring.service import Monitoring
from pipeline_ex.plugins.guard import DEFAULT_TIMEOUT, Guard
from pipeline_ex.plugins.loader import PluginConfig, PluginSpec
from pipeline_ex.plugins.manager import LoadReport, PluginManager
from pipeline_ex.registries import ProviderRegistry, StepRegistry
from pipeline_ex.workflow.modes import MODES

if TYPE_CHECKING:
    from pipeline_ex.workflow.executor import EventSink, Executor

PluginConfigSource = str | Path | Mapping[str, Any] | PluginConfig


def _env_seconds(name: str) -> float | None:
    """A positive number of seconds from the environment, or None; junk is an input error."""
    text = os.environ.get(name)
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise InvalidInputError(f"{name}={text!r} is not a positive number of seconds")
    return value


def _name_hint(workflow: object) -> str:
    """A run's name before its document is read: the file's stem, or ``?``."""
    if isinstance(workflow, str | Path):
        return Path(workflow).stem
    return "?"


def _workflow_name(data: object, fallback: str) -> str:
    """The workflow's ``name`` (what run records and logs call it), else ``fallback``."""
    data = data.get("workflow") if isinstance(data, Mapping) else None
    name = data.get("name") if isinstance(data, Mapping) else None
    return name if isinstance(name, str) and name else fallback


class Runtime:
    """Registries + plugin manager + executor, wired once.

    ``plugin_config`` is a plugin_config.yaml path (or mapping); an entry named like a
    built-in replaces that built-in's entry (so the seed's config can set
    ``enhanced_schema_validator``'s options or disable it).  ``mock_responses`` is a fixture
    file for the mock providers.  ``plugin_timeout`` is the deadline (seconds) of every
    plugin lifecycle call (init, get_*, terminate, health_check; 10 by default); a config
    entry's ``limits: {call_timeout_s: N}`` sets its own.  ``PIPELINE_EX_PLUGINS``,
    ``PIPELINE_EX_MODE`` and ``PIPELINE_EX_PLUGIN_TIMEOUT`` are read when the arguments are
    not given.

    ``monitoring`` (``runtime.monitoring``) counts every plugin call, keeps run records and
    plugin health; ``metrics=False`` turns off the per-call timing of step types and
    providers (counting in flight and errors stays).  ``tracer_provider`` sends spans to
    that OpenTelemetry provider; without it, tracing follows the standard ``OTEL_*``
    environment variables when the ``otel`` extra is installed (see
    ``pipeline_ex.monitoring.tracing``).
    """

    def __init__(
        self,
        plugin_config: PluginConfigSource | None = None,
        *,
        mode: str | None = None,
        mock_responses: str | Path | None = None,
        load_builtins: bool = True,
        plugin_timeout: float | None = None,
        metrics: bool = True,
        run_history: int = 100,
        tracer_provider: Any = None,
    ) -> None:
        self.steps = StepRegistry()
        self.providers = ProviderRegistry()
        self.configuration = ConfigurationSystem()
        timeout = plugin_timeout or _env_seconds("PIPELINE_EX_PLUGIN_TIMEOUT") or DEFAULT_TIMEOUT
        guard = Guard(timeout=timeout, metrics=Metrics(enabled=metrics))
        self.plugins = PluginManager(self.steps, self.providers, self.configuration, guard=guard)
        #: Metrics, health, run records and their exports (``pipeline_ex.monitoring``).
        self.monitoring = Monitoring(self.plugins, run_history=run_history)
        from pipeline_ex.monitoring.tracing import install as install_tracing

        #: The OpenTelemetry observer when tracing is on, else None.
        self.tracing = install_tracing(self.monitoring, tracer_provider)
        self._executor: Executor | None = None
        self._executor_lock = threading.Lock()
        self.mode = mode or os.environ.get("PIPELINE_EX_MODE") or "mock"
        if self.mode not in MODES:
            raise InvalidInputError(f"unknown mode {self.mode!r}; use one of {', '.join(MODES)}")
        if plugin_config is None and os.environ.get("PIPELINE_EX_PLUGINS"):
            plugin_config = os.environ["PIPELINE_EX_PLUGINS"]
        self.plugin_config = self._read_config(plugin_config)
        self.monitoring.configure(self.plugin_config)
        specs: dict[str, PluginSpec] = {}
        if load_builtins:
            for name, reference in BUILTIN_PLUGINS.items():
                specs[name] = PluginSpec(name=name, module=reference, source="<builtin>")
        if self.plugin_config is not None:
            for spec in self.plugin_config.specs:
                specs.pop(spec.name, None)  # a configured entry replaces the built-in's
                specs[spec.name] = spec
            # ``autoload: true``: every installed plugin the config does not name
            for spec in self.plugins.loader.autoload_specs(self.plugin_config, taken=specs):
                specs[spec.name] = spec
        mocks = specs.get("mock_providers")
        if mock_responses is not None and mocks is not None:
            specs["mock_providers"] = mocks.replace(
                config={**mocks.config, "responses_file": str(mock_responses)}
            )
        #: What happened at start-up: ``loaded`` names and ``failed`` {name: PluginError};
        #: a plugin that fails to load never stops the Runtime, so check this (or
        #: ``load_report.ok``) when a missing plugin must be an error.
        self.load_report: LoadReport = self.plugins.load_specs(
            [s for s in specs.values() if s.enabled]
        )
        for spec in specs.values():
            if not spec.enabled:
                self.plugins.mark_disabled(spec)
        failed_mocks = self.load_report.failed.get("mock_providers")
        if mock_responses is not None and failed_mocks is not None:
            # The caller asked for these fixtures: a bad file is their input error, not a
            # plugin to carry on without.
            self.close()
            raise InvalidInputError(
                f"--mock-responses {mock_responses}: {failed_mocks.message}",
                code="mock_responses_invalid",
            )
        self.monitoring.start()

    @property
    def executor(self) -> Executor:
        """The workflow engine, built on first use: a Runtime that only lists or serves its
        plugins never imports its dozen modules (a twentieth of a ``pipeline-ex steps``)."""
        executor = self._executor
        if executor is None:
            with self._executor_lock:
                executor = self._executor
                if executor is None:
                    from pipeline_ex.workflow.executor import Executor

                    executor = Executor(self.steps, self.providers, self.configuration)
                    self._executor = executor
        return executor

    def _read_config(self, source: PluginConfigSource | None) -> PluginConfig | None:
        if source is None or isinstance(source, PluginConfig):
            return source
        if isinstance(source, Mapping):
            return self.plugins.loader.config_from_mapping(source)
        return self.plugins.loader.load_config(source)

    def validate(self, source: str | Path | Mapping[str, Any] | Document) -> Document:
        """Load and validate a workflow without running it."""
        return self.executor.prepare(source)

    def run(
        self,
        workflow: str | Path | Mapping[str, Any] | Document,
        *,
        inputs: Mapping[str, Any] | None = None,
        mode: str | None = None,
        output_dir: str | Path | None = None,
        on_event: EventSink | None = None,
        source: str = "api",
        labels: Mapping[str, str] | None = None,
        run_id: str | None = None,
    ) -> dict[str, Any]:
        """Run a workflow; returns ``{step name: result}``.

        Every run, whatever its outcome, becomes a ``RunRecord`` in
        ``runtime.monitoring.runs()``: ``source`` says who asked (``api``, ``cli``,
        ``server``), ``labels`` adds free-form tags, and ``run_id`` is the record's id (and
        the logs' ``run_id``) when the caller has already told someone which run this is,
        as the server does in its answer; a fresh one otherwise.
        """
        run_mode = mode or self.mode
        name = _name_hint(workflow)
        if isinstance(workflow, str | Path):
            from pipeline_ex.workflow.loading import load_workflow

            # Read a file once here to name the run (the executor takes the Document as it
            # is); an error is raised again by the executor, inside the recorded run.  A
            # mapping is named without loading it: loading walks its size budgets, which
            # the executor's validation does once per content (and skips on a cache hit).
            with contextlib.suppress(Exception):
                workflow = load_workflow(workflow)
        if isinstance(workflow, Document):
            name = _workflow_name(workflow.data, name)
        elif isinstance(workflow, Mapping):
            with contextlib.suppress(Exception):
                name = _workflow_name(workflow, name)
        document = workflow
        return self.monitoring.record_run(
            name,
            lambda sink: self.executor.run(
                document, inputs=inputs, mode=run_mode, output_dir=output_dir, on_event=sink
            ),
            on_event=on_event,
            source=source,
            mode=run_mode,
            labels=labels,
            run_id=run_id,
        )

    def close(self) -> None:
        """Stop the health thread and terminate every plugin, dependents first
        (``runtime.plugins.shutdown()``); the ``with`` block calls it on the way out."""
        self.monitoring.close()
        self.plugins.shutdown()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
