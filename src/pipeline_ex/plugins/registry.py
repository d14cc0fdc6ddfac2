"""PluginRegistry: what is loaded, in what state, owning which components.

Records are replaced, never mutated in place by readers, so ``list_plugins`` from another
thread always sees whole records.  Writes happen only under the manager's lock.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from pipeline_ex.plugins.hosting import PluginHost
from pipeline_ex.plugins.metadata import PluginMetadata


class PluginStatus(enum.StrEnum):
    LOADING = "loading"
    ACTIVE = "active"
    DEGRADED = "degraded"
    FAILED = "failed"
    UNLOADED = "unloaded"


LIVE = frozenset({PluginStatus.ACTIVE, PluginStatus.DEGRADED})


@dataclass(frozen=True)
class Components:
    """Names a plugin registered in each registry; what unload must remove."""

    step_types: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    schema_extensions: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, list[str]]:
        return {
            "step_types": list(self.step_types),
            "providers": list(self.providers),
            "schema_extensions": list(self.schema_extensions),
        }

    def __bool__(self) -> bool:
        return bool(self.step_types or self.providers or self.schema_extensions)


@dataclass(frozen=True)
class PluginRecord:
    name: str
    status: PluginStatus
    origin: str
    version: str | None = None
    metadata: PluginMetadata | None = None
    components: Components = field(default_factory=Components)
    load_time_ms: float | None = None
    loaded_at: datetime | None = None
    last_error: str | None = None
    error_code: str | None = None
    #: The formatted traceback behind ``last_error``, when plugin code raised.
    traceback: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    state: Any = None
    adapter: PluginHost | None = None
    module_names: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()
    requirements: tuple[Any, ...] = ()  # the Dependency specifiers behind ``dependencies``
    spec: Any = None
    #: Where it runs (``in_process``, ``process``, ``sandbox``) and the sandbox layers in force.
    isolation: str = "in_process"
    layers: tuple[str, ...] = ()
    #: The signature check's verdict when the config's policy asked for one.
    signature: str | None = None
    #: This version's calls in flight (``leases.Lease``): unload and reload wait for them.
    lease: Any = None

    @property
    def is_live(self) -> bool:
        """Loaded and serving its components: active, or degraded by a failed health check."""
        return self.status in LIVE

    def evolve(self, **changes: Any) -> PluginRecord:
        return replace(self, **changes)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready view (no plugin objects)."""
        return {
            "name": self.name,
            "version": self.version,
            "status": str(self.status),
            "origin": self.origin,
            "description": self.metadata.description if self.metadata else "",
            "dependencies": [str(d) for d in self.metadata.dependencies] if self.metadata else [],
            "capabilities": list(self.metadata.capabilities) if self.metadata else [],
            "permissions": list(self.metadata.permissions) if self.metadata else [],
            "components": self.components.as_dict(),
            "load_time_ms": None if self.load_time_ms is None else round(self.load_time_ms, 3),
            "loaded_at": self.loaded_at.isoformat() if self.loaded_at else None,
            "last_error": self.last_error,
            "error_code": self.error_code,
            "traceback": self.traceback,
            "signature": self.signature,
            "isolation": self.isolation,
            "layers": list(self.layers),
        }


class PluginRegistry:
    """Records keyed by plugin name, in load order."""

    def __init__(self) -> None:
        self._records: dict[str, PluginRecord] = {}
        self._lock = threading.Lock()

    def put(self, record: PluginRecord) -> None:
        with self._lock:
            records = dict(self._records)
            records[record.name] = record
            self._records = records

    def remove(self, name: str) -> PluginRecord | None:
        with self._lock:
            records = dict(self._records)
            record = records.pop(name, None)
            self._records = records
            return record

    def get(self, name: str) -> PluginRecord | None:
        return self._records.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._records

    def __iter__(self) -> Iterator[PluginRecord]:
        return iter(list(self._records.values()))

    def __len__(self) -> int:
        return len(self._records)

    def names(self, status: PluginStatus | None = None) -> list[str]:
        return [r.name for r in self._records.values() if status is None or r.status == status]

    def live(self) -> list[PluginRecord]:
        """Plugins whose components are registered (active or degraded)."""
        return [r for r in self._records.values() if r.status in LIVE]

    def with_capability(self, capability: str) -> list[PluginRecord]:
        return [
            r
            for r in self._records.values()
            if r.status in LIVE and r.metadata is not None and capability in r.metadata.capabilities
        ]

    def components_of(self, name: str) -> Components:
        record = self._records.get(name)
        return record.components if record else Components()
