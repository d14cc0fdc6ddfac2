"""ComponentIntegrator: a plugin's components enter the registries together or not at all.

Registration is one batch per registry (one snapshot swap each).  If a later batch fails
(a provider name already taken, a schema extension that cannot merge), the earlier batches
are rolled back before the error propagates, so no registry ever holds half a plugin.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from pipeline_ex.configuration import ConfigurationSystem
from pipeline_ex.errors import ComponentConflictError, PipelineExError, PluginError
from pipeline_ex.plugins.registry import Components
from pipeline_ex.registries import ProviderRegistry, StepRegistry
from pipeline_ex.registries.providers import provider_priority
from pipeline_ex.registries.snapshot import NameTakenError


def _instantiate(component: Any, *, plugin: str, what: str, name: str) -> Any:
    """A class is instantiated once, at registration; an instance is used as it is."""
    if not inspect.isclass(component):
        return component
    try:
        return component()
    except Exception as exc:
        raise PluginError(
            f"plugin {plugin!r}: cannot instantiate {what} {name!r} "
            f"({component.__qualname__}): {type(exc).__name__}: {exc}",
            code="validation_failed",
            plugin=plugin,
        ) from exc


def _pairs(value: Any, width: int, plugin: str, what: str) -> list[tuple[Any, ...]]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        value = list(value.items())
    if not isinstance(value, Iterable) or isinstance(value, str | bytes):
        raise PluginError(
            f"plugin {plugin!r}: get_{what} must return a list, got {type(value).__name__}",
            code="validation_failed",
            plugin=plugin,
        )
    out = []
    for item in value:
        if not isinstance(item, tuple | list) or len(item) != width:
            raise PluginError(
                f"plugin {plugin!r}: each entry of get_{what} must be a {width}-tuple, "
                f"got {item!r}",
                code="validation_failed",
                plugin=plugin,
            )
        if not isinstance(item[0], str) or not item[0]:
            raise PluginError(
                f"plugin {plugin!r}: {what} name must be a non-empty string, got {item[0]!r}",
                code="validation_failed",
                plugin=plugin,
            )
        out.append(tuple(item))
    return out


def _duplicates(names: list[str], plugin: str, what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise PluginError(
                f"plugin {plugin!r} offers {what} {name!r} twice",
                code="validation_failed",
                plugin=plugin,
            )
        seen.add(name)


def _plugin_error(plugin: str, exc: PipelineExError) -> PluginError:
    """A registry's refusal, as the plugin's error: a name or schema clash is a conflict.

    A step type or provider name held by another plugin can be taken over on purpose; the
    message says how (``overrides:`` in the plugin's config entry).
    """
    conflict = exc.code in (ComponentConflictError.code, "schema_conflict")
    hint = ""
    if isinstance(exc, NameTakenError):
        hint = (
            f"; to take {'it' if len(exc.names) == 1 else 'them'} over on purpose, add "
            f"'overrides: [{', '.join(exc.names)}]' to the config entry of plugin {plugin!r}"
        )
    return PluginError(
        f"plugin {plugin!r}: {exc.message}{hint}",
        code="component_conflict" if conflict else "validation_failed",
        plugin=plugin,
    )


class Prepared(NamedTuple):
    """A plugin's components, checked and instantiated, not yet registered anywhere."""

    steps: dict[str, Any]
    providers: list[tuple[str, Any, list[str]]]
    extensions: dict[str, dict[str, Any]]

    def names(self) -> Components:
        return Components(
            step_types=tuple(self.steps),
            providers=tuple(name for name, _, _ in self.providers),
            schema_extensions=tuple(self.extensions),
        )


class ComponentIntegrator:
    def __init__(
        self, steps: StepRegistry, providers: ProviderRegistry, configuration: ConfigurationSystem
    ) -> None:
        self.steps = steps
        self.providers = providers
        self.configuration = configuration

    @staticmethod
    def prepare(plugin: str, step_types: Any, providers: Any, schema_extensions: Any) -> Prepared:
        """Normalise and check what the plugin offered, before touching any registry.

        This handles plugin objects (it iterates what ``get_*`` returned and instantiates
        component classes), so the manager runs it as a guarded call.
        """
        steps_in = _pairs(step_types, 2, plugin, "step_types")
        providers_in = _pairs(providers, 3, plugin, "providers")
        extensions_in = _pairs(schema_extensions, 2, plugin, "schema_extensions")
        for what, entries in (
            ("step type", steps_in),
            ("provider", providers_in),
            ("schema extension", extensions_in),
        ):
            _duplicates([e[0] for e in entries], plugin, what)
        steps = {}
        for name, component in steps_in:
            step = _instantiate(component, plugin=plugin, what="step type", name=name)
            if not callable(getattr(step, "execute", None)):
                raise PluginError(
                    f"plugin {plugin!r}: step type {name!r} has no execute(step, context)",
                    code="validation_failed",
                    plugin=plugin,
                )
            steps[name] = step
        provider_entries = []
        for name, component, capabilities in providers_in:
            provider = _instantiate(component, plugin=plugin, what="provider", name=name)
            if not callable(getattr(provider, "query", None)):
                raise PluginError(
                    f"plugin {plugin!r}: provider {name!r} has no query(prompt, options)",
                    code="validation_failed",
                    plugin=plugin,
                )
            if isinstance(capabilities, str) or not all(isinstance(c, str) for c in capabilities):
                raise PluginError(
                    f"plugin {plugin!r}: provider {name!r} capabilities must be a list of strings",
                    code="validation_failed",
                    plugin=plugin,
                )
            try:
                provider_priority(name, provider)  # read here, under the guard
            except PipelineExError as exc:
                raise PluginError(
                    f"plugin {plugin!r}: {exc.message}", code="validation_failed", plugin=plugin
                ) from None
            provider_entries.append((name, provider, list(capabilities)))
        extensions = {}
        for name, schema in extensions_in:
            if not isinstance(schema, Mapping):
                raise PluginError(
                    f"plugin {plugin!r}: schema extension {name!r} must be a mapping",
                    code="validation_failed",
                    plugin=plugin,
                )
            extensions[name] = dict(schema)
        return Prepared(steps, provider_entries, extensions)

    def integrate(
        self, plugin: str, prepared: Prepared, *, overrides: frozenset[str] = frozenset()
    ) -> Components:
        """Register everything or nothing; returns what was registered."""
        steps, provider_entries, extensions = prepared
        done: list[str] = []
        try:
            if steps:
                self.steps.register_batch(steps, plugin, replace=overrides)
                done.append("steps")
            if provider_entries:
                self.providers.register_providers(provider_entries, plugin, replace=overrides)
                done.append("providers")
            if extensions:
                self.configuration.register_extensions(extensions, plugin)
                done.append("extensions")
        except PipelineExError as exc:
            self._rollback(plugin, done)
            raise _plugin_error(plugin, exc) from exc
        except BaseException:
            self._rollback(plugin, done)
            raise
        return prepared.names()

    def swap(
        self, plugin: str, prepared: Prepared, *, overrides: frozenset[str] = frozenset()
    ) -> Components:
        """Replace ``plugin``'s components by new ones (a reload), all or nothing.

        Each registry swaps in one step, so a reader sees the old component or the new one;
        if a later registry refuses, the earlier swaps are put back.
        """
        steps, provider_entries, extensions = prepared
        try:
            old_steps = self.steps.replace_owner(plugin, steps, replace=overrides)
            try:
                old_providers = self.providers.replace_providers(plugin, provider_entries)
                try:
                    self.configuration.register_extensions(extensions, plugin, swap=True)
                except BaseException:
                    self.providers.replace_providers(plugin, old_providers)
                    raise
            except BaseException:
                self.steps.replace_owner(plugin, old_steps, replace=overrides)
                raise
        except PipelineExError as exc:
            raise _plugin_error(plugin, exc) from exc
        return prepared.names()

    def _rollback(self, plugin: str, done: list[str]) -> None:
        if "steps" in done:
            self.steps.unregister_owner(plugin)
        if "providers" in done:
            self.providers.unregister_owner(plugin)
        if "extensions" in done:
            self.configuration.unregister_owner(plugin)

    def remove(self, plugin: str) -> Components:
        """Remove exactly what ``plugin`` registered, from all three registries."""
        return Components(
            step_types=tuple(self.steps.unregister_owner(plugin)),
            providers=tuple(self.providers.unregister_owner(plugin)),
            schema_extensions=tuple(self.configuration.unregister_owner(plugin)),
        )

    def leftovers(self, plugin: str) -> Components:
        """What any registry still attributes to ``plugin`` (should be nothing after unload)."""
        return Components(
            step_types=tuple(self.steps.owned_by(plugin)),
            providers=tuple(self.providers.owned_by(plugin)),
            schema_extensions=tuple(self.configuration.owned_by(plugin)),
        )
