"""ComponentIntegrator: a plugin's components enter the registries together or not at all.

Registration is one batch per registry (one snapshot swap each).  If a later batch fails
(a provider name already taken, a schema extension that cannot merge), the earlier batches
are rolled back before the error propagates, so no registry ever holds half a plugin.
"""

from __future__ import annotations

from pipeline_ex.configuration import ConfigurationSystem
from pipeline_ex.errors import ComponentConflictError, PipelineExError, PluginError
from pipeline_ex.plugins.components import Prepared
from pipeline_ex.plugins.registry import Components
from pipeline_ex.registries import ProviderRegistry, StepRegistry
from pipeline_ex.registries.snapshot import NameTakenError


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


class ComponentIntegrator:
    def __init__(
        self, steps: StepRegistry, providers: ProviderRegistry, configuration: ConfigurationSystem
    ) -> None:
        self.steps = steps
        self.providers = providers
        self.configuration = configuration

    def integrate(
        self, plugin: str, prepared: Prepared, *, overrides: frozenset[str] = frozenset()
    ) -> Components:
        """Register everything or nothing; returns what was registered."""
        steps, provider_entries, extensions, priorities = prepared
        done: list[str] = []
        try:
            if steps:
                self.steps.register_batch(steps, plugin, replace=overrides)
                done.append("steps")
            if provider_entries:
                self.providers.register_providers(
                    provider_entries, plugin, replace=overrides, priorities=priorities
                )
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
        steps, provider_entries, extensions, priorities = prepared
        try:
            old_steps = self.steps.replace_owner(plugin, steps, replace=overrides)
            try:
                old_priorities = self.providers.priorities_of(plugin)
                old_providers = self.providers.replace_providers(
                    plugin, provider_entries, priorities
                )
                try:
                    self.configuration.register_extensions(extensions, plugin, swap=True)
                except BaseException:
                    self.providers.replace_providers(plugin, old_providers, old_priorities)
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
