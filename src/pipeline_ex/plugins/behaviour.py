"""The plugin contract (the seed's PluginBehaviour).

A plugin is either a subclass of ``Plugin`` or a module that defines the same functions
without ``self``.  The host calls, in order: ``init(config) -> state`` (raise to refuse),
``get_metadata(state)``, ``get_step_types(state)``, ``get_providers(state)``,
``get_schema_extensions(state)``; ``health_check(state)`` whenever asked; and
``terminate(state)`` on unload.  Every ``get_*`` defaults to "nothing".
"""

from __future__ import annotations

#: Type checkers treat a module-level ``TYPE_CHECKING`` name as true.  ``typing`` is left
#: out of a plugin's ``from pipeline_ex.plugins import Plugin``; the return-type aliases
#: below are built on first use (PEP 562).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, TypeAlias

#: The host's plugin API major version; a plugin declaring another major is refused.
API_VERSION = 1

#: Contract functions and how many positional arguments each takes (excluding ``self``).
REQUIRED_FUNCTIONS: dict[str, int] = {"init": 1, "get_metadata": 1}
OPTIONAL_FUNCTIONS: dict[str, int] = {
    "terminate": 1,
    "get_step_types": 1,
    "get_providers": 1,
    "get_schema_extensions": 1,
    "health_check": 1,
}

if TYPE_CHECKING:
    StepTypes: TypeAlias = list[tuple[str, Any]]
    Providers: TypeAlias = list[tuple[str, Any, list[str]]]
    SchemaExtensions: TypeAlias = list[tuple[str, Mapping[str, Any]]]


def __getattr__(name: str) -> object:
    if name not in ("StepTypes", "Providers", "SchemaExtensions"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from collections.abc import Mapping
    from typing import Any

    aliases: dict[str, object] = {
        "StepTypes": list[tuple[str, Any]],
        "Providers": list[tuple[str, Any, list[str]]],
        "SchemaExtensions": list[tuple[str, Mapping[str, Any]]],
    }
    globals().update(aliases)
    return aliases[name]


class Plugin:
    """Base class for class-style plugins.  Override what you contribute.

    ``state`` is whatever ``init`` returned; the host passes it back to every other call,
    so a plugin keeps no hidden globals and two instances never share state.
    """

    def init(self, config: Mapping[str, Any]) -> Any:
        return dict(config)

    def terminate(self, state: Any) -> None:
        return None

    def get_metadata(self, state: Any) -> Mapping[str, Any]:
        raise NotImplementedError("a plugin must describe itself in get_metadata")

    def get_step_types(self, state: Any) -> StepTypes:
        return []

    def get_providers(self, state: Any) -> Providers:
        return []

    def get_schema_extensions(self, state: Any) -> SchemaExtensions:
        return []

    def health_check(self, state: Any) -> Any:
        return {"status": "ok"}
