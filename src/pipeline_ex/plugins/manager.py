"""PluginManager: the one writer of plugin lifecycle (the seed's GenServer, as a lock).

Loading follows the seed's flow: resolve and validate the code (loader), plan dependencies
(graphlib), ``init``, read and check metadata, collect components, register them all or
nothing (integrator), record the outcome (registry).  Every call into plugin code goes
through the guard.  All mutations hold one re-entrant lock; readers (the engine) never do.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline_ex.configuration import ConfigurationSystem
from pipeline_ex.errors import PluginError
from pipeline_ex.interrupts import plugin_raised
from pipeline_ex.log import get_logger
from pipeline_ex.plugins import hosting, in_process
from pipeline_ex.plugins.adapter import is_default
from pipeline_ex.plugins.components import (
    Prepared,
    ProviderHandle,
    StepHandle,
    plain_json,
    prepare,
)
from pipeline_ex.plugins.config_schema import check_after_init, check_config
from pipeline_ex.plugins.dependencies import (
    Candidate,
    check_against_loaded,
    dependency_failed,
    plan,
    shutdown_order,
)
from pipeline_ex.plugins.guard import LONGEST_WAIT_S, Abandoned, Guard
from pipeline_ex.plugins.hosting import PluginHost
from pipeline_ex.plugins.integrator import ComponentIntegrator
from pipeline_ex.plugins.leases import Lease
from pipeline_ex.plugins.loader import (
    PluginConfig,
    PluginLoader,
    PluginSpec,
    ResolvedPlugin,
    unload_modules,
)
from pipeline_ex.plugins.metadata import (
    Dependency,
    PluginMetadata,
    note_missing_api_version,
    parse_dependencies,
    parse_metadata,
)
from pipeline_ex.plugins.registry import PluginRecord, PluginRegistry, PluginStatus
from pipeline_ex.plugins.settings import settings_for
from pipeline_ex.records import Record, put
from pipeline_ex.registries import ProviderRegistry, StepRegistry

if TYPE_CHECKING:
    from pipeline_ex.plugins.isolation.verified_sources import VerifiedSources

logger = get_logger(__name__)


class LoadReport(Record):
    """The outcome of ``load_all``: which plugins loaded, which failed and why."""

    __slots__ = ("failed", "loaded")
    FIELDS = ("loaded", "failed")
    loaded: tuple[str, ...]
    failed: Mapping[str, PluginError]

    def __init__(self, loaded: tuple[str, ...], failed: Mapping[str, PluginError]) -> None:
        put(self, "loaded", loaded)
        put(self, "failed", failed)

    @property
    def ok(self) -> bool:
        return not self.failed


class PluginManager:
    def __init__(
        self,
        steps: StepRegistry,
        providers: ProviderRegistry,
        configuration: ConfigurationSystem,
        *,
        loader: PluginLoader | None = None,
        guard: Guard | None = None,
    ) -> None:
        self.steps = steps
        self.providers = providers
        self.configuration = configuration
        self.loader = loader if loader is not None else PluginLoader()
        self.guard = guard if guard is not None else Guard()
        self.registry = PluginRegistry()
        self.integrator = ComponentIntegrator(steps, providers, configuration)
        # Every step type runs through the guard: its execute is wrapped once, when the
        # plugin's components are prepared, so dispatch costs one lookup and one call.
        steps.instrument(self._caller_for)
        # Providers too: a plugin's arrive as guarded handles; one registered straight into
        # the registry is given one here, so its queries are counted alike.
        providers.instrument(self._provider_for)
        self._lock = threading.RLock()
        #: Plugins whose health check is still running (perhaps hung): never a second one.
        self._checking: dict[str, _RunningCheck] = {}
        #: What serves each loaded plugin's distribution from its verified bytes (see
        #: ``verified_import``): out of force once no loaded plugin needs it.
        self._served: dict[str, tuple[VerifiedSources, ...]] = {}

    # -- queries ----------------------------------------------------------------------------
    def get_plugin(self, name: str) -> PluginRecord:
        record = self.registry.get(name)
        if record is None:
            live = [r.name for r in self.registry.live()]
            failed = self.registry.names(PluginStatus.FAILED)
            also = f"; failed to load: {', '.join(failed)}" if failed else ""
            raise PluginError(
                f"plugin {name!r} is not loaded; loaded: {', '.join(live) or 'none'}{also}",
                code="not_loaded",
                plugin=name,
            )
        return record

    def list_plugins(self) -> list[PluginRecord]:
        return list(self.registry)

    def _active_versions(self) -> dict[str, str]:
        return {r.name: r.version or "" for r in self.registry.live()}

    # -- loading ----------------------------------------------------------------------------
    def load_plugin(
        self,
        name: str,
        module: Any = None,
        config: Mapping[str, Any] | None = None,
        *,
        path: str | Path | None = None,
        dependencies: tuple[str, ...] = (),
        overrides: tuple[str, ...] = (),
    ) -> Any:
        """Load one plugin and return its state; raises ``PluginError`` with a code.

        ``module`` is a reference string (dotted path, entry point, Elixir alias) or the
        plugin object itself (a ``Plugin`` subclass, an instance or a module).  With neither
        ``module`` nor ``path``, ``name`` is looked up as a config entry's ``module`` would
        be: an installed entry point, then a module of that name.
        """
        if module is None and path is None:
            module = name
        spec = PluginSpec(
            name=name,
            module=module if isinstance(module, str) else None,
            path=Path(path).resolve() if path is not None else None,
            config=dict(config or {}),
            dependencies=tuple(dependencies),
            overrides=tuple(overrides),
        )
        target = module if not isinstance(module, str) else None
        report = self.load_specs([spec], targets={name: target} if target is not None else None)
        if name in report.failed:
            raise report.failed[name]
        return self.get_plugin(name).state

    def load_all(self, plugin_config: PluginConfig | str | Path | Mapping[str, Any]) -> LoadReport:
        """Load every enabled plugin in dependency order; report each failure, keep going.

        With ``autoload: true`` in the config, every installed entry point that is neither
        configured nor already loaded is loaded too, under its entry point name.
        """
        if isinstance(plugin_config, str | Path):
            plugin_config = self.loader.load_config(plugin_config)
        elif not isinstance(plugin_config, PluginConfig):
            plugin_config = self.loader.config_from_mapping(plugin_config)
        live = [r.name for r in self.registry.live()]
        autoloaded = self.loader.autoload_specs(plugin_config, taken=live)
        return self.load_specs([*plugin_config.enabled(), *autoloaded])

    def load_specs(
        self, specs: list[PluginSpec], *, targets: Mapping[str, Any] | None = None
    ) -> LoadReport:
        """Load ``specs`` in dependency order; every plugin call runs supervised (see
        ``Guard.supervise``) so a hanging plugin is a ``timeout``, not a hung host.

        The one load path: ``load_plugin`` and ``load_all`` both come here.  ``targets``
        gives plugin objects (a class, an instance, a module) by plugin name, for specs that
        are not resolved by reference.
        """
        # The cyclic collector pauses for the batch: importing and starting plugins
        # allocates thousands of objects that live on (modules, classes, records, handles),
        # and a collection every ~700 of them found next to nothing to free while costing a
        # cold load ~13 us per plugin.  It resumes when the batch ends, a hung plugin's too
        # (the supervisor gives up on it and returns).
        collecting = gc.isenabled()
        if collecting:
            gc.disable()
        try:
            return self._load_batch(specs, dict(targets or {}))
        finally:
            if collecting:
                gc.enable()

    def _load_batch(self, specs: list[PluginSpec], objects: dict[str, Any]) -> LoadReport:
        failures: dict[str, PluginError] = {}
        loaded: list[str] = []
        with self._lock:
            prepared: dict[str, tuple[ResolvedPlugin, Candidate, PluginMetadata | None]] = {}

            def prepare(spec: PluginSpec) -> None:
                self._refuse_if_active(spec.name)
                prepared[spec.name] = self._prepare(spec, objects.get(spec.name))

            for spec, outcome in zip(specs, self.guard.supervise(specs, prepare), strict=True):
                if isinstance(outcome, PluginError):
                    failures[spec.name] = outcome
            the_plan = plan([c for _, c, _ in prepared.values()], self._active_versions())
            failures.update(the_plan.failures)

            def load_next(name: str) -> None:
                resolved, candidate, static = prepared[name]
                broken = [
                    d
                    for d in candidate.dependencies
                    if d.name in failures and not self._is_live(d.name)
                ]
                try:
                    if broken:
                        raise dependency_failed(name, broken[0].name, failures[broken[0].name])
                    self._start(resolved, candidate, static)
                except PluginError as exc:
                    failures[name] = exc
                    return
                loaded.append(name)

            def timed_out(name: str, error: PluginError) -> None:
                failures[name] = error
                # its modules leave sys.modules and an isolated host is closed, so that a
                # retry imports fresh code (the stuck call runs on without them)
                self._mark_failed(prepared[name][0], error)

            self.guard.supervise(the_plan.order, load_next, on_timeout=timed_out)
            by_name = {s.name: s for s in specs}
            for name, error in failures.items():
                record = self.registry.get(name)
                if record is None or record.status == PluginStatus.LOADING:
                    if name in prepared:
                        self._mark_failed(prepared[name][0], error)
                    else:
                        self._mark_failed_spec(by_name[name], error)
                logger.warning(
                    "plugin %s failed [%s]: %s",
                    name,
                    error.code,
                    error.message,
                    extra={"plugin": name},
                )
        ordered_failures = {s.name: failures[s.name] for s in specs if s.name in failures}
        return LoadReport(tuple(loaded), ordered_failures)

    def _prepare(
        self, spec: PluginSpec, target: Any
    ) -> tuple[ResolvedPlugin, Candidate, PluginMetadata | None]:
        """Import and check the plugin's code, then read what planning needs."""
        isolated = hosting.guard_timeout(spec)
        if isolated is not None:
            self.guard.timeouts[spec.name] = isolated
        elif "call_timeout_s" in spec.limits:
            self.guard.timeouts[spec.name] = float(spec.limits["call_timeout_s"])
        else:
            self.guard.timeouts.pop(spec.name, None)
        try:
            resolved = self.guard.watched(
                spec.name, "import", self._resolve, spec, target, code="validation_failed"
            )
        except PluginError as exc:
            if exc.code != "timeout":
                self._mark_failed_spec(spec, exc)
            raise
        try:
            candidate, static = self._candidate(resolved)
        except PluginError as exc:
            if exc.code != "timeout":
                self._mark_failed(resolved, exc)
            raise
        return resolved, candidate, static

    def _is_live(self, name: str) -> bool:
        record = self.registry.get(name)
        return record is not None and record.is_live

    def _refuse_if_active(self, name: str) -> None:
        record = self.registry.get(name)
        if record is not None and not record.is_live and record.adapter is not None:
            raise PluginError(
                f"plugin {name!r} failed while loaded and still holds its components; "
                "unload it first",
                code="component_conflict",
                plugin=name,
            )
        if self._is_live(name):
            record = self.get_plugin(name)
            raise PluginError(
                f"plugin {name!r} is already loaded ({record.origin})",
                code="component_conflict",
                plugin=name,
            )

    def _resolve(self, spec: PluginSpec, target: Any) -> ResolvedPlugin:
        if target is not None:
            return in_process.from_object(spec, target)
        return self.loader.resolve(spec, on_failed=self._on_isolated_failure(spec.name))

    def _on_isolated_failure(self, name: str) -> Callable[[PluginError], None]:
        """What an isolated plugin's host calls when its restart budget is used up: the
        record says ``failed`` (its components stay registered and answer with the error,
        until the plugin is unloaded).  No manager lock: this may run on a step's thread
        while the manager waits for that step to finish."""

        def failed(error: PluginError) -> None:
            record = self.registry.get(name)
            if record is not None and record.is_live:
                self.registry.put(
                    record.evolve(
                        status=PluginStatus.FAILED,
                        last_error=error.message,
                        error_code=error.code,
                        traceback=error.traceback,
                    )
                )
            logger.error("plugin %s failed: %s", name, error.message, extra={"plugin": name})

        return failed

    def _candidate(self, resolved: ResolvedPlugin) -> tuple[Candidate, PluginMetadata | None]:
        """What planning knows before init: config, manifest and static metadata."""
        spec = resolved.spec
        static: PluginMetadata | None = None
        try:
            raw = self.guard.watched(
                spec.name,
                "get_metadata",
                _metadata_reader(spec.name, resolved.adapter),
                None,
                code="validation_failed",
            )
        except PluginError as exc:
            if exc.code == "timeout":
                raise
            raw = None  # metadata that needs state is read after init instead
        if raw is not None:
            static = parse_metadata(raw, loaded_as=spec.name)
            if spec.security is not None:  # refused before init, when it can be
                spec.security.check_permissions(spec.name, static.permissions)
            note_missing_api_version(raw, spec.name)
            if static.config_schema is not None:
                # the plugin's schema may hold a pathological pattern: under the deadline
                self.guard.watched(
                    spec.name,
                    "config_schema",
                    check_config,
                    spec,
                    static.config_schema,
                    code="validation_failed",
                )
        # what could not be checked yet is checked on the metadata read right after init
        # (see _start: check_after_init)
        manifest = resolved.manifest or {}
        if static is not None and manifest and str(manifest.get("version")) != static.version:
            raise PluginError(
                f"plugin {spec.name!r}: manifest says version {manifest.get('version')} but "
                f"the plugin says {static.version}",
                code="validation_failed",
                plugin=spec.name,
            )
        deps = self._merge_dependencies(
            parse_dependencies(
                spec.dependencies,
                plugin=spec.name,
                source=f"config {spec.source}" if spec.source else "load_plugin",
            ),
            parse_dependencies(
                manifest.get("dependencies", []),
                plugin=spec.name,
                source=_manifest_source(spec) if manifest.get("dependencies") else "manifest",
            ),
            static.dependencies if static else (),
        )
        version = static.version if static else (str(manifest["version"]) if manifest else None)
        conflicts = static.conflicts if static else ()
        return Candidate(spec.name, version, deps, conflicts), static

    @staticmethod
    def _merge_dependencies(*groups: tuple[Dependency, ...]) -> tuple[Dependency, ...]:
        """One requirement per dependency; each keeps where its parts were declared."""
        if not any(groups):  # the common case: nothing declared anywhere
            return ()
        merged: dict[str, Dependency] = {}
        for group in groups:
            for dep in group:
                known = merged.get(dep.name)
                merged[dep.name] = dep if known is None else known.merged(dep)
        return tuple(merged.values())

    def _start(
        self,
        resolved: ResolvedPlugin,
        candidate: Candidate,
        static: PluginMetadata | None,
        old: PluginRecord | None = None,
    ) -> PluginRecord:
        """init, check and register one plugin — or, given ``old``, swap it in for the
        running version (a reload).  Runs inside a supervised batch.

        Whatever fails (a plugin call, a check, a registry refusing, even a host bug), the
        plugin ends with nothing registered and its state terminated; a reload that fails
        leaves the old version serving.
        """
        spec, adapter, name = resolved.spec, resolved.adapter, resolved.spec.name
        started = time.perf_counter()
        if old is None:
            self.registry.put(
                PluginRecord(
                    name=name, status=PluginStatus.LOADING, origin=resolved.origin, spec=spec
                )
            )
        begun: dict[str, Any] = {}
        try:
            state, raw_metadata, prepared, lease = self._init_and_collect(
                name,
                adapter,
                settings_for(spec.config, spec.source),
                begun,
                static,
                lambda raw: check_after_init(spec, raw, before=static),
            )
            if static is not None and raw_metadata == static.raw:
                # The same answer as before init (both are plain JSON copies, so comparing
                # them runs no plugin code): parsed, permission-checked and config-checked
                # already.  Anything else is parsed again and must not contradict it.
                metadata = static
            else:
                metadata = parse_metadata(raw_metadata, loaded_as=name)
                if spec.security is not None:
                    spec.security.check_permissions(name, metadata.permissions)
            if (
                static is not None
                and metadata is not static
                and (
                    static.version != metadata.version
                    or {str(d) for d in static.dependencies}
                    != {str(d) for d in metadata.dependencies}
                )
            ):
                raise PluginError(
                    f"plugin {name!r}: metadata changed after init (version "
                    f"{static.version} -> {metadata.version}); a plugin must describe itself "
                    "consistently",
                    code="validation_failed",
                    plugin=name,
                )
            deps = self._merge_dependencies(candidate.dependencies, metadata.dependencies)
            self._check_fits(name, metadata, deps)
            overrides = frozenset(spec.overrides)
            if old is None:
                components = self.integrator.integrate(name, prepared, overrides=overrides)
            else:
                components = self.integrator.swap(name, prepared, overrides=overrides)
        except Abandoned:
            # The supervisor timed this plugin out and moved on; now that its call returned,
            # undo what init set up (the failure is already recorded).
            try:
                if "state" in begun:
                    self._terminate_quietly(name, adapter, begun["state"])
            finally:
                if old is not None:  # a reload's new version: let go of its code
                    hosting.release(adapter)
                    if resolved.module_names and resolved.module_names != old.module_names:
                        unload_modules(_package_of(resolved.module_names))
            raise
        except BaseException as exc:
            if not isinstance(exc, PluginError) and not plugin_raised(exc):
                raise  # the user's Ctrl-C: stop, the record says loading
            error = (
                exc
                if isinstance(exc, PluginError)
                else PluginError(
                    f"plugin {name!r}: {type(exc).__name__}: {exc}", code="crashed", plugin=name
                )
            )
            if old is None:
                self.integrator.remove(name)  # a no-op unless a registry write went half-way
            if "state" in begun and error.code != "timeout":
                self._terminate_quietly(name, adapter, begun["state"])
            if old is None:
                self._mark_failed(resolved, error)
            else:
                hosting.release(resolved.adapter)
                if resolved.module_names and resolved.module_names != old.module_names:
                    unload_modules(_package_of(resolved.module_names))
                # The old version goes on serving; its record tells what the reload hit.
                self.registry.put(
                    old.evolve(
                        last_error=f"reload failed: {error.message}",
                        error_code=error.code,
                        traceback=error.traceback,
                    )
                )
            if error is exc:
                raise
            raise error from exc
        record = PluginRecord(
            name=name,
            status=PluginStatus.ACTIVE,
            origin=resolved.origin,
            version=metadata.version,
            metadata=metadata,
            components=components,
            load_time_ms=(time.perf_counter() - started) * 1000,
            loaded_at=datetime.now(UTC),
            config=dict(spec.config),
            state=state,
            adapter=adapter,
            module_names=resolved.module_names,
            signature=resolved.signature,
            **hosting.describe(adapter),
            dependencies=tuple(d.name for d in deps),
            requirements=deps,
            spec=spec,
            lease=lease,
        )
        self.registry.put(record, reason=None if old is None else "reloaded")
        self.guard.metrics.record_load(name, (record.load_time_ms or 0.0) / 1000)
        if resolved.sources or name in self._served:
            self._serve(name, resolved.sources, swapped=old is not None)
        if old is not None:
            # Swapped and recorded: new calls reach the new version.  Calls already running
            # on the old one finish on it before its state is terminated; whatever happens
            # to that terminate (even the supervisor giving up on it), the old version's
            # host and modules are let go.
            try:
                self._drain(name, old.lease)
                if old.adapter is not None:
                    self._terminate_quietly(name, old.adapter, old.state)
            finally:
                if old.adapter is not None:
                    hosting.release(old.adapter)
                if old.module_names and old.module_names != resolved.module_names:
                    unload_modules(_package_of(old.module_names))
        logger.info(
            "plugin %s %s %s in %.2f ms",
            name,
            metadata.version,
            "loaded" if old is None else "reloaded",
            record.load_time_ms or 0.0,
            extra={"plugin": name},
        )
        return record

    def _check_fits(
        self, name: str, metadata: PluginMetadata, deps: tuple[Dependency, ...]
    ) -> None:
        """The plugin, as it described itself after init, fits the live ones: its
        dependencies and conflicts, and theirs on it (a reload may change its version)."""
        problem = check_against_loaded(
            Candidate(name, metadata.version, deps, metadata.conflicts),
            _LiveVersions(self.registry, name),
        )
        if problem is not None:
            raise problem
        # Only the live plugins that name this one can object to it (an index, not a
        # walk over every live plugin for each new one).
        for record in self.registry.mentioning(name):
            if record.name == name:
                continue
            for dep in record.requirements:
                if dep.name == name and not dep.allows(metadata.version):
                    raise PluginError(
                        f"plugin {record.name!r} needs {dep.described(metadata.version)}, but "
                        f"{name} would be version {metadata.version}",
                        code="version_conflict",
                        plugin=name,
                    )
            if record.metadata is not None and name in record.metadata.conflicts:
                raise PluginError(
                    f"plugin {record.name!r} declares a conflict with {name!r}",
                    code="component_conflict",
                    plugin=name,
                )

    def _init_and_collect(
        self,
        plugin: str,
        adapter: PluginHost,
        config: dict[str, Any],
        begun: dict[str, Any],
        static: PluginMetadata | None,
        check_metadata: Callable[[Any], None],
    ) -> tuple[Any, Any, Prepared, Lease]:
        """init, metadata and components, each a watched plugin call.

        ``begun`` receives the state as soon as init returns, so a later failure can still
        terminate what init set up.  Preparing the components is watched too: it iterates
        what ``get_*`` returned, instantiates component classes and reads their hooks, which
        is plugin code.  The step types' callers are built here, with a fresh ``Lease`` for
        this version of the plugin.
        """
        watched = self.guard.watched
        state = watched(plugin, "init", adapter.init, config, code="init_failed")
        begun["state"] = state
        metadata = watched(
            plugin,
            "get_metadata",
            _metadata_reader(plugin, adapter),
            state,
            code="validation_failed",
        )
        # What could not be checked before init (its config against a config_schema that
        # needs the state), before any component is looked at; under the deadline too.
        # Metadata equal to what was read before init has nothing left to check.
        if static is None or metadata != static.raw:
            watched(plugin, "config_schema", check_metadata, metadata, code="validation_failed")
        # A get_* the plugin does not define is the host's stand-in: nothing to guard.
        offered = [
            None if is_default(ask) else watched(plugin, operation, ask, state, code="init_failed")
            for operation, ask in (
                ("get_step_types", adapter.get_step_types),
                ("get_providers", adapter.get_providers),
                ("get_schema_extensions", adapter.get_schema_extensions),
            )
        ]
        prepared = watched(
            plugin, "components", prepare, plugin, *offered, code="validation_failed"
        )
        lease = Lease()
        for handle in prepared.steps.values():
            self._arm(handle, lease)
        for name, provider, _ in prepared.providers:
            provider.lease = lease
            provider.query = self.guard.bind(
                plugin,
                name,
                provider.query,
                lease,
                self._current_provider(name),
                kind="provider",
            )
            if provider.preflight is not None:
                provider.preflight = self.guard.shield(
                    plugin, f"provider:{name}.preflight", provider.preflight
                )
            provider.freeze()
        return state, metadata, prepared, lease

    def _arm(self, handle: StepHandle, lease: Lease) -> None:
        """Give a step handle its guarded caller and guarded hooks."""
        plugin, name = handle.plugin, handle.name
        handle.lease = lease
        handle.call = self.guard.bind(plugin, name, handle.execute, lease, self._redirect(name))
        if handle.preflight is not None:
            handle.preflight = self.guard.shield(plugin, f"{name}.preflight", handle.preflight)
        if handle.semantic_check is not None:
            handle.semantic_check = self.guard.shield(
                plugin,
                f"{name}.semantic_check",
                handle.semantic_check,
                check_result=_problem_list,
            )
        handle.freeze()

    def _redirect(self, name: str) -> Callable[[Any, Any], Any]:
        """Where a call to a retired version of step type ``name`` goes: the current one."""

        def current(step: Any, context: Any) -> Any:
            handle, caller = self.steps.resolve(name)
            lease = handle.lease if isinstance(handle, StepHandle) else None
            if lease is not None and lease.is_retired:
                raise PluginError(
                    f"step type {name!r} of plugin {handle.plugin!r} is being unloaded",
                    code="not_loaded",
                    plugin=handle.plugin,
                )
            return caller(step, context)

        return current

    def _current_provider(self, name: str) -> Callable[[str, dict[str, Any]], Any]:
        """Where a query to a retired version of provider ``name`` goes: the current one."""

        def current(prompt: str, options: dict[str, Any]) -> Any:
            provider = self.providers.get(name)
            lease = (
                getattr(provider, "lease", None) if isinstance(provider, ProviderHandle) else None
            )
            if lease is not None and lease.is_retired:
                raise PluginError(
                    f"provider {name!r} of plugin {provider.plugin!r} is being unloaded",
                    code="not_loaded",
                    plugin=provider.plugin,
                )
            return provider.query(prompt, options)

        return current

    def _caller_for(self, owner: str, name: str, step: Any) -> Callable[[Any, Any], Any]:
        """The StepRegistry's instrument: a handle's prepared caller, or (for a step object
        registered straight into the registry, outside any plugin) a guarded execute."""
        if isinstance(step, StepHandle) and step.call is not None:
            return step.call
        return self.guard.bind(owner, name, step.execute)

    def _provider_for(self, owner: str, name: str, provider: Any) -> Any:
        """The ProviderRegistry's instrument (see ``_caller_for``)."""
        if isinstance(provider, ProviderHandle):
            return provider
        handle = ProviderHandle(plugin=owner, name=name, target=provider)
        handle.query = self.guard.bind(owner, name, handle.query, kind="provider")
        handle.freeze()
        return handle

    def _drain(self, name: str, lease: Lease | None) -> None:
        """Wait (bounded by the call timeout) for calls on a retired version to return."""
        limit = self.guard.timeout_for(name)
        if lease is not None and not lease.drain(limit):
            logger.warning(
                "plugin %s: %d call(s) still running after %gs; terminating it anyway",
                name,
                lease.in_flight(),
                limit,
                extra={"plugin": name},
            )

    def _mark_failed(self, resolved: ResolvedPlugin, exc: PluginError) -> None:
        """Record the failure; a directory plugin's modules leave ``sys.modules``, an
        isolated plugin's child is killed and reaped."""
        hosting.release(resolved.adapter)
        if resolved.module_names:
            unload_modules(_package_of(resolved.module_names))
        self._let_go(resolved.sources)
        self._mark_failed_spec(resolved.spec, exc, origin=resolved.origin)

    def _serve(self, name: str, sources: tuple[VerifiedSources, ...], *, swapped: bool) -> None:
        """``name`` is loaded (or was just swapped in by a reload) with ``sources``: they
        serve its distribution's imports from now on; what served the version before
        goes out of force (unless another plugin holds the same)."""
        from pipeline_ex.plugins.verified_import import IMPORTS

        before = self._served.pop(name, ())
        if sources:
            self._served[name] = sources
            if swapped:  # a first load put them in force before importing the plugin
                IMPORTS.hold(sources, sources)
        self._let_go(before)

    @staticmethod
    def _let_go(sources: tuple[VerifiedSources, ...]) -> None:
        """The holder ``sources`` lets go of them (see ``verified_import``)."""
        if sources:
            from pipeline_ex.plugins.verified_import import let_go

            let_go(sources)

    def _mark_failed_spec(
        self, spec: PluginSpec, exc: PluginError, *, origin: str | None = None
    ) -> None:
        self.registry.put(
            PluginRecord(
                name=spec.name,
                status=PluginStatus.FAILED,
                origin=origin or spec.origin,
                last_error=exc.message,
                error_code=exc.code,
                traceback=exc.traceback,
                config=dict(spec.config),
                spec=spec,
            )
        )

    def _terminate_quietly(self, name: str, adapter: PluginHost, state: Any) -> None:
        if is_default(adapter.terminate):
            return  # the plugin defines none: the host's stand-in would do nothing
        try:
            self.guard.watched(name, "terminate", adapter.terminate, state)
        except PluginError as exc:
            logger.error(
                "plugin %s: terminate failed [%s]: %s",
                name,
                exc.code,
                exc.message,
                extra={"plugin": name},
            )

    def mark_disabled(self, spec: PluginSpec) -> None:
        """Record a config entry with ``enabled: false`` (never loaded) as ``disabled``, so
        that status listings and monitoring show it; loading it later replaces the record."""
        with self._lock:
            record = self.registry.get(spec.name)
            if record is not None and (record.is_live or record.adapter is not None):
                return
            self.registry.put(
                PluginRecord(
                    name=spec.name,
                    status=PluginStatus.DISABLED,
                    origin=spec.origin,
                    config=dict(spec.config),
                    spec=spec,
                    isolation=spec.isolation,
                )
            )

    # -- unloading --------------------------------------------------------------------------
    def dependents_of(self, name: str) -> list[str]:
        """Active plugins that depend on ``name``, directly or through others."""
        found: list[str] = []
        frontier = [name]
        while frontier:
            current = frontier.pop()
            for record in self.registry.live():
                if current in record.dependencies and record.name not in found:
                    found.append(record.name)
                    frontier.append(record.name)
        return found

    def unload_plugin(self, name: str, *, cascade: bool = False) -> None:
        """Terminate and deregister; refused while others depend on it unless ``cascade``."""
        with self._lock:
            record = self.registry.get(name)
            if record is None:
                self.get_plugin(name)  # raises not_loaded
                return
            if not record.is_live:
                if record.adapter is not None:  # an isolated plugin failed while loaded
                    self._unload_one(record)
                else:
                    self.registry.remove(name)  # a failed load: forget it
                return
            dependents = self.dependents_of(name)
            if dependents and not cascade:
                raise PluginError(
                    f"plugin {name!r} is required by {', '.join(sorted(dependents))}; "
                    "unload them first or pass cascade=True",
                    code="in_use",
                    plugin=name,
                )
            if dependents:
                graph = {
                    r.name: set(r.dependencies)
                    for r in self.registry.live()
                    if r.name in dependents
                }
                for dependent in shutdown_order(graph):
                    self._unload_one(self.get_plugin(dependent))
            self._unload_one(record)

    def _unload_one(self, record: PluginRecord) -> None:
        """Deregister, let running calls finish (bounded), then terminate."""
        self.integrator.remove(record.name)
        try:
            self._drain(record.name, record.lease)
            if record.adapter is not None:
                self._terminate_quietly(record.name, record.adapter, record.state)
        finally:  # even when terminate overran and the supervisor moved on
            if record.adapter is not None:
                hosting.release(record.adapter)
            if record.module_names:
                unload_modules(_package_of(record.module_names))
            self._let_go(self._served.pop(record.name, ()))
            self.registry.remove(record.name)
        logger.info("plugin %s unloaded", record.name, extra={"plugin": record.name})

    def reload_plugin(self, name: str) -> Any:
        """Re-import and swap atomically; the old version serves until the new one is ready,
        and a failed reload leaves the old one in place."""
        with self._lock:
            old = self.get_plugin(name)
            if not old.is_live or old.spec is None:
                raise PluginError(f"plugin {name!r} is not active", code="not_loaded", plugin=name)

            def reload_one(spec: PluginSpec) -> PluginRecord:
                resolved = self.guard.watched(
                    name, "import", self._re_resolve, spec, old, code="validation_failed"
                )
                candidate, _ = self._candidate(resolved)
                return self._start(resolved, candidate, None, old)

            def timed_out(spec: PluginSpec, error: PluginError) -> None:
                current = self.registry.get(name)
                if current is not None and current.is_live:  # the old version serves on
                    self.registry.put(
                        current.evolve(
                            last_error=f"reload failed: {error.message}", error_code=error.code
                        )
                    )

            (outcome,) = self.guard.supervise([old.spec], reload_one, on_timeout=timed_out)
            if isinstance(outcome, PluginError):
                raise outcome
            return outcome.state

    def _re_resolve(self, spec: PluginSpec, old: PluginRecord) -> ResolvedPlugin:
        """Fresh code for a reload: a new child for an isolated plugin, or the in-process
        host's fresh import beside the running version (see ``in_process``)."""
        if hosting.is_isolated(spec):
            return self.loader.resolve(spec, on_failed=self._on_isolated_failure(spec.name))
        assert old.adapter is not None
        return in_process.fresh_for_reload(
            self.loader, spec, old.adapter, old.origin, self._served.get(spec.name, ())
        )

    def shutdown(self) -> None:
        """Terminate every plugin, dependents first; one failing terminate stops nothing.
        Then the guard's idle helper threads exit."""
        with self._lock:
            graph = {r.name: set(r.dependencies) for r in self.registry.live()}
            for name in shutdown_order(graph):
                record = self.registry.get(name)
                if record is None:
                    continue
                try:
                    self._unload_one(record)
                except Exception:  # keep going: the host is shutting down
                    logger.exception(
                        "plugin %s: unload during shutdown failed", name, extra={"plugin": name}
                    )
            for record in list(self.registry):
                if record.adapter is not None:  # failed while loaded (an isolated plugin)
                    self._unload_one(record)
                self.registry.remove(record.name)
        self.guard.close()

    # -- health -----------------------------------------------------------------------
    def health(self, name: str, *, cancelled: Callable[[], bool] | None = None) -> dict[str, Any]:
        """Run the plugin's ``health_check`` under a deadline; a failing or hanging check
        degrades the plugin.

        A check is never started while the previous one is still running (no thread per
        call piles up behind a hung check).  A caller that finds one running shares its
        answer, waiting for it at most until that check's own deadline; only a check past
        its deadline makes the answer ``timeout``: a slow but timely check is no failure.
        ``cancelled`` (the health thread's stop flag) turns the degrading off for an answer
        that comes after the caller stopped caring (the Runtime is closing).
        """
        record = self.get_plugin(name)
        if record.adapter is None or record.status == PluginStatus.FAILED:
            return {"status": str(record.status), "error": record.last_error}
        check = record.adapter.health_check
        if check is None:
            return {"status": str(record.status)}
        # An infinite call_timeout_s waits as long as a wait can (a week and a half).
        limit = min(max(5.0, self.guard.timeout_for(name)), LONGEST_WAIT_S)
        with self._lock:
            running = self._checking.get(name)
            if running is None:
                mine = _RunningCheck(time.monotonic() + limit)
                self._checking[name] = mine
        if running is not None:
            return self._share(name, running)

        def run_check(state: Any) -> Any:
            mine.started = True
            try:
                return check(state)
            finally:
                self._check_returned(name, mine)

        # A check that already degraded the plugin is expected to fail again: its repeats
        # are logged at debug (the status change itself was logged once).
        quiet = record.status == PluginStatus.DEGRADED
        try:
            report = self.guard.call(
                name, "health_check", run_check, record.state, timeout=limit, quiet=quiet
            )
        except PluginError as exc:
            if not mine.started:  # refused before it ran: nothing is left running
                self._check_returned(name, mine)
            if cancelled is None or not cancelled():
                self._degrade(name, exc)
            outcome: dict[str, Any] = {"status": "degraded", "error": exc.message, "code": exc.code}
        else:
            outcome = {"status": str(record.status), "report": report}
        mine.finish(outcome)
        return outcome

    def _share(self, name: str, running: _RunningCheck) -> dict[str, Any]:
        answered = running.done.wait(max(0.0, running.deadline - time.monotonic()))
        if answered and running.outcome is not None and running.outcome.get("code") != "timeout":
            return dict(running.outcome)
        # past its deadline (and perhaps still hung): a failure again, not a new thread
        error = PluginError(
            f"plugin {name!r}: the previous health_check has not returned within its deadline",
            code="timeout",
            plugin=name,
        )
        self._degrade(name, error)
        return {"status": "degraded", "error": error.message, "code": error.code}

    def _check_returned(self, name: str, check: _RunningCheck) -> None:
        with self._lock:
            if self._checking.get(name) is check:
                del self._checking[name]

    def _degrade(self, name: str, exc: PluginError) -> None:
        with self._lock:
            current = self.registry.get(name)
            if current is not None and current.status == PluginStatus.ACTIVE:
                self.registry.put(
                    current.evolve(
                        status=PluginStatus.DEGRADED,
                        last_error=exc.message,
                        error_code=exc.code,
                        traceback=exc.traceback,
                    )
                )


class _RunningCheck:
    """A health check in progress: its deadline, and its answer for callers that wait."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.started = False
        self.done = threading.Event()
        self.outcome: dict[str, Any] | None = None

    def finish(self, outcome: dict[str, Any]) -> None:
        self.outcome = outcome
        self.done.set()


class _LiveVersions(Mapping[str, str]):
    """The live plugins' versions but ``excluded``'s, read from the registry on demand:
    checking one plugin asks about its few dependencies and conflicts, so building the
    whole mapping per load (quadratic in a batch) was wasted."""

    def __init__(self, registry: PluginRegistry, excluded: str) -> None:
        self._registry = registry
        self._excluded = excluded

    def __getitem__(self, name: str) -> str:
        record = self._registry.get(name)
        if record is None or not record.is_live or name == self._excluded:
            raise KeyError(name)
        return record.version or ""

    def __iter__(self) -> Iterator[str]:
        return (r.name for r in self._registry.live() if r.name != self._excluded)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _metadata_reader(plugin: str, adapter: PluginHost) -> Callable[[Any], Any]:
    """``get_metadata`` whose answer is copied to plain JSON data inside the same watched
    call: the host then parses strings and lists it owns, never a plugin object whose
    ``__str__`` or ``get`` could hang outside the deadline."""

    def read(state: Any) -> Any:
        raw = adapter.get_metadata(state)
        if raw is None:
            return None
        return plain_json(raw, plugin=plugin, where="get_metadata's answer")

    return read


def _problem_list(value: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """A ``semantic_check`` answer as ``[(path, message), ...]``, or a clear refusal."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, list | tuple):
        raise TypeError(
            f"semantic_check must return a list of (path, message) pairs, "
            f"got {type(value).__name__}"
        )
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for item in value[:1000]:
        if not (isinstance(item, tuple | list) and len(item) == 2):
            raise TypeError(f"semantic_check returned {item!r}, not a (path, message) pair")
        path, message = item
        if isinstance(path, str):
            path = (path,)
        if not isinstance(path, tuple | list) or not all(
            isinstance(p, str | int) and not isinstance(p, bool) for p in path
        ):
            raise TypeError(f"semantic_check returned the path {path!r}, not a tuple of keys")
        problems.append((tuple(path), str(message)))
    return problems


def _manifest_source(spec: PluginSpec) -> str:
    """Where a directory plugin's manifest dependencies were declared (for their errors)."""
    return f"manifest {Path(str(spec.path)) / 'plugin.yaml'}"


def _package_of(module_names: tuple[str, ...]) -> str:
    return min(module_names, key=len)
