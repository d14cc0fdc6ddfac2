"""The typed contracts plugin authors write against.

The host calls plugin code duck-typed (a class-style plugin, a module-style plugin, any
object with ``execute`` or ``query``), so none of these types is required at run time.
They exist so that an editor and ``mypy --strict`` catch a wrong signature *before* the
plugin is loaded: annotate a step's ``execute`` with ``StepContext``, a provider with the
``Provider`` return type, ``get_metadata`` with ``MetadataDict``, and a misspelt key or a
missing argument becomes a type error instead of a ``validation_failed`` at load time.

This module is the one home of these definitions; it imports nothing from the rest of the
package, so any layer (registries, workflow, plugins) may depend on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol, TypedDict, runtime_checkable

__all__ = [
    "MetadataDict",
    "Provider",
    "ProviderEntry",
    "ProviderView",
    "SchemaExtensionEntry",
    "Step",
    "StepContext",
    "StepTypeEntry",
    "StepTypesView",
]


class _RequiredMetadata(TypedDict):
    name: str
    """The plugin's name; must equal the name it is configured (or loaded) under."""
    version: str
    """A PEP 440 version (``"1.2.0"``), compared against other plugins' dependency specifiers."""


# ``total=False`` rather than ``NotRequired``: with postponed annotations Python 3.11 cannot
# see ``NotRequired`` at run time, and ``__optional_keys__`` would come out wrong.
class MetadataDict(_RequiredMetadata, total=False):
    """What ``get_metadata(state)`` returns (the host parses it into ``PluginMetadata``).

    Only ``name`` (equal to the name the plugin is configured under) and ``version`` (PEP
    440) are required; the host fills the rest with defaults.
    """

    api_version: int | str
    """The host's plugin API major version the plugin was written for (``API_VERSION``)."""
    description: str
    dependencies: list[str]
    """Plugin names with optional PEP 440 specifiers: ``"json_yaml_bridge>=1.0"``."""
    conflicts: list[str]
    """Plugin names that must not be active at the same time as this one."""
    permissions: list[str]
    capabilities: list[str]
    config_schema: dict[str, Any]
    """A JSON Schema for the plugin's own ``config:`` mapping in plugin_config.yaml."""


@runtime_checkable
class Provider(Protocol):
    """pipeline_ex's AIProvider contract.

    ``query`` returns a mapping with at least ``text`` (str), ``success`` (bool) and
    ``cost`` (float).  A provider may also define an integer ``priority`` attribute (default
    0, higher wins) that ``ProviderView.select`` uses to rank providers offering the same
    capabilities; it is optional, hence not part of the Protocol.
    """

    def query(self, prompt: str, options: dict[str, Any]) -> Mapping[str, Any]: ...


@runtime_checkable
class Step(Protocol):
    """The step type contract: ``execute(step, context) -> result``.

    ``step`` is the step's mapping after template interpolation; a mapping result with
    ``success: False`` (or an exception) fails the step.  Optional attributes a step type may
    define (not part of the Protocol, since each is optional):

    - ``raw_keys``: keys the engine must not template-interpolate before ``execute`` (a
      loop's nested ``steps`` and ``condition`` are evaluated per iteration, not once);
    - ``owns_condition``: True when ``condition`` is the step's own (``while_loop``), not a
      skip test;
    - ``preflight(step, context)``: called for every step before the first one runs, to fail
      early (a missing API key);
    - ``semantic_check(step, path)``: extra document checks, returning problem messages.
    """

    def execute(self, step: dict[str, Any], context: StepContext) -> Any: ...


class ProviderView(Protocol):
    """The read-only provider registry a step sees as ``context.providers``.

    Selection is by capability; ``select`` ranks the providers that offer every capability
    asked for (the run's mode, then ``priority``) and returns the best one.
    """

    def get(self, name: str) -> Provider:
        """The provider registered as ``name``; ``UnknownProviderError`` if none."""
        ...

    def capabilities(self, name: str) -> frozenset[str]: ...

    def select(self, capabilities: Iterable[str]) -> Provider:
        """The best provider offering every capability; ``NoSuitableProviderError`` if none."""
        ...

    def select_name(self, capabilities: Iterable[str]) -> str: ...

    def select_all(self, capabilities: Iterable[str]) -> list[Provider]:
        """Every provider offering all of ``capabilities``, best first."""
        ...

    def __contains__(self, name: object) -> bool: ...

    def __iter__(self) -> Iterator[str]: ...

    def __len__(self) -> int: ...


class StepTypesView(Protocol):
    """The read-only step type registry a step sees as ``context.step_types``."""

    def get(self, name: str) -> Step:
        """The step object registered as ``name``; ``UnknownStepTypeError`` if none."""
        ...

    def __contains__(self, name: object) -> bool: ...

    def __iter__(self) -> Iterator[str]: ...

    def __len__(self) -> int: ...


class StepContext(Protocol):
    """What a step's ``execute`` is handed: the state of the run (or of one loop iteration).

    Nested step types (loops, branches) need nothing beyond this: ``child`` makes an
    iteration's context, ``run_steps`` runs a body through the engine's own dispatch.
    """

    @property
    def results(self) -> Mapping[str, Any]:
        """Earlier steps' results by step name (a loop iteration also sees the outer ones)."""
        ...

    @property
    def variables(self) -> Mapping[str, Any]:
        """The run's variables (``{{state.X}}``); change them with ``set_variable``."""
        ...

    @property
    def inputs(self) -> Mapping[str, Any]:
        """The run's inputs (``{{inputs.X}}``)."""
        ...

    @property
    def workflow(self) -> Mapping[str, Any]:
        """The ``workflow:`` mapping of the document being run (plugin sections included)."""
        ...

    @property
    def mode(self) -> str:
        """``"mock"`` or ``"live"``."""
        ...

    @property
    def loop(self) -> Mapping[str, Any]:
        """The current loop's variables (``{{loop.X}}``); empty outside loops."""
        ...

    @property
    def base_dir(self) -> Path:
        """The workflow file's folder (``file`` prompt parts are read relative to it)."""
        ...

    @property
    def output_dir(self) -> Path:
        """Where ``output_to_file`` writes."""
        ...

    @property
    def providers(self) -> ProviderView:
        """The run's providers, read-only, with capability selection."""
        ...

    @property
    def step_types(self) -> StepTypesView:
        """The registered step types, read-only."""
        ...

    def build_prompt(self, parts: list[Mapping[str, Any]]) -> str:
        """pipeline_ex prompt parts (``static``, ``file``, ``previous_response``) to text."""
        ...

    def run_steps(self, steps: list[Mapping[str, Any]], path: str = "") -> dict[str, Any]:
        """Run nested steps in this context; returns their results by name."""
        ...

    def resolve(self, name: str) -> Any:
        """A top-level template name (``steps``, ``state``, ``inputs``, a step name, ...)."""
        ...

    def lookup(self, path: str) -> Any:
        """A dot path from the top-level names (``steps.draft.text``)."""
        ...

    def check_condition(self, condition: Any) -> bool: ...

    def resolve_data_source(self, source: Any) -> list[Any]:
        """A loop's ``data_source`` (``STEP:FIELD``, a variable, a list) as a list."""
        ...

    def set_variable(self, name: str, value: Any, scope: str = "global") -> None: ...

    def child(self, loop: Mapping[str, Any]) -> StepContext:
        """A context for one loop iteration whose ``loop`` is ``loop``."""
        ...

    def provider_for(self, family: str) -> Provider:
        """The provider serving ``claude``/``gemini`` steps in this run's mode."""
        ...

    def provider_name(self, family: str) -> str: ...


StepTypeEntry = tuple[str, Step | type[Step]]
"""``get_step_types`` entries: ``(type name, step object or class)``."""
ProviderEntry = tuple[str, Provider | type[Provider], list[str]]
"""``get_providers`` entries: ``(name, provider object or class, capabilities)``."""
SchemaExtensionEntry = tuple[str, Mapping[str, Any]]
"""``get_schema_extensions`` entries: ``(name, JSON Schema fragment)``."""
