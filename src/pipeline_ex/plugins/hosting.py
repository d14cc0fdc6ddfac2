"""Where a plugin runs: the seam between the plugin manager and a plugin's code.

A config entry's ``isolation:`` picks the host (default ``in_process``):

* ``in_process``: the loader imports the plugin here and a ``PluginAdapter`` calls it;
* ``process``: a child process runs it (``pipeline_ex.plugins.isolation``), started with a
  scrubbed environment and resource limits; its step types and providers are proxies;
* ``sandbox``: ``process`` plus kernel enforcement of the grants (Landlock, seccomp).

Both hosts offer the adapter's calls (``init``, ``get_metadata``, ``get_*``,
``terminate``, ``health_check``) and ``close()``, so the manager, the integrator, the
registries and the engine do not know where a plugin runs.  This module turns a config
entry into an isolated host; the isolation package is imported only when one is asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pipeline_ex.errors import PluginError

if TYPE_CHECKING:
    from pipeline_ex.plugins.isolation import ProcessPlugin
    from pipeline_ex.plugins.isolation.verified_sources import VerifiedSources
    from pipeline_ex.plugins.loader import PluginSpec
    from pipeline_ex.plugins.permissions import Permission

TIERS = ("in_process", "process", "sandbox")


class PluginHost(Protocol):
    """What the manager calls, wherever the plugin runs (``PluginAdapter`` in process,
    ``ProcessPlugin`` in a child).  ``kind`` is ``class``/``module``/``instance`` for an
    in-process plugin, or the isolation tier."""

    kind: str
    health_check: Callable[[Any], Any] | None

    def init(self, config: Any) -> Any: ...

    def get_metadata(self, state: Any) -> Any: ...

    def get_step_types(self, state: Any) -> Any: ...

    def get_providers(self, state: Any) -> Any: ...

    def get_schema_extensions(self, state: Any) -> Any: ...

    def terminate(self, state: Any) -> Any: ...

    def close(self) -> None: ...


#: Extra seconds the guard allows an isolated call beyond the child's own deadline, so the
#: isolation's timeout (which kills and reaps the child) is the one that fires.
GUARD_MARGIN_S = 5.0

ISOLATION_SCHEMA: dict[str, Any] = {"enum": list(TIERS)}
RESTART_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "max_restarts": {"type": "integer", "minimum": 0},
        "window_s": {"type": "number", "exclusiveMinimum": 0},
    },
}
SANDBOX_DEGRADE_SCHEMA: dict[str, Any] = {"enum": ["allow", "deny", True, False]}


def is_isolated(spec: PluginSpec) -> bool:
    return spec.isolation != "in_process"


def granted(spec: PluginSpec) -> tuple[Permission, ...]:
    """What the entry's config grants this plugin (nothing when no grants are set)."""
    if spec.security is None or spec.security.grants is None:
        return ()
    from pipeline_ex.plugins.permissions import grants_for

    return grants_for(spec.security.grants, spec.name)


def guard_timeout(spec: PluginSpec) -> float | None:
    """The guard's deadline for an isolated plugin's calls (``None``: the default)."""
    if not is_isolated(spec):
        return None
    call = float(spec.limits.get("call_timeout_s", 10.0))
    return max(call, 10.0) + GUARD_MARGIN_S


def start(
    spec: PluginSpec,
    *,
    reference: str | None,
    directory: Path | None,
    on_failed: Callable[[PluginError], None] | None,
    sources: tuple[VerifiedSources, ...] = (),
) -> ProcessPlugin:
    """Start the isolated host of ``spec`` (the plugin is imported in the child, from
    ``sources`` when a signature check verified its bytes)."""
    from pipeline_ex.plugins.isolation import IsolationSpec, Limits, ProcessPlugin, RestartPolicy

    grants = granted(spec)
    try:
        limits = Limits(**{k: v for k, v in spec.limits.items()})  # type: ignore[arg-type]
        restart = RestartPolicy(**dict(spec.restart))  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise PluginError(
            f"plugin {spec.name!r}: {exc}", code="validation_failed", plugin=spec.name
        ) from None
    isolation = IsolationSpec(
        plugin=spec.name,
        reference=reference,
        directory=directory,
        tier=spec.isolation,
        env=_env_names(grants),
        grants=grants,
        limits=limits,
        restart=restart,
        sandbox_degrade=spec.sandbox_degrade,
        sources=sources,
    )
    return ProcessPlugin.start(isolation, on_failed=on_failed)


def _env_names(grants: Iterable[Permission]) -> frozenset[str]:
    """The environment variables an isolated child receives: those its grants name."""
    return frozenset(g.target for g in grants if g.kind == "env")


def release(adapter: Any) -> None:
    """Let go of a plugin's host: an isolated one's child is killed and reaped."""
    close = getattr(adapter, "close", None)
    if callable(close):
        close()


def describe(adapter: Any) -> Mapping[str, Any]:
    """Where it runs, for the plugin's record: the tier and the sandbox layers in force."""
    tier = getattr(adapter, "kind", "in_process")
    if tier not in ("process", "sandbox"):
        return {"isolation": "in_process", "layers": ()}
    return {"isolation": tier, "layers": tuple(getattr(adapter, "layers", ()))}
