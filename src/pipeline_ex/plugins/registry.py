"""PluginRegistry: what is loaded, in what state, owning which components.

Records are replaced, never mutated in place by readers, so ``list_plugins`` from another
thread always sees whole records.  Writes happen under the manager's lock (and the
registry's own, for the health monitor's status changes).

Every change of a plugin's status is a ``StatusChange`` (when, to what, why) kept in a
bounded history that outlives unloads and reloads (``history(name)``, and ``history`` on
each record), logged, and passed to the registry's listeners (the Runtime's monitoring).
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from pipeline_ex.log import get_logger
from pipeline_ex.plugins.hosting import PluginHost
from pipeline_ex.plugins.metadata import PluginMetadata
from pipeline_ex.records import Record, put

logger = get_logger(__name__)

#: Status changes kept per plugin (oldest dropped first).
HISTORY_LIMIT = 50


class PluginStatus(enum.StrEnum):
    LOADING = "loading"
    ACTIVE = "active"
    DEGRADED = "degraded"
    FAILED = "failed"
    #: Configured with ``enabled: false``: never loaded.
    DISABLED = "disabled"
    UNLOADED = "unloaded"


LIVE = frozenset({PluginStatus.ACTIVE, PluginStatus.DEGRADED})

#: How loudly each status change is logged (others: INFO).
_LOG_LEVELS = {
    PluginStatus.LOADING: logging.DEBUG,
    PluginStatus.DEGRADED: logging.WARNING,
    PluginStatus.FAILED: logging.WARNING,
}


class Components(Record):
    """Names a plugin registered in each registry; what unload must remove."""

    __slots__ = ("providers", "schema_extensions", "step_types")
    FIELDS = ("step_types", "providers", "schema_extensions")
    step_types: tuple[str, ...]
    providers: tuple[str, ...]
    schema_extensions: tuple[str, ...]

    def __init__(
        self,
        step_types: tuple[str, ...] = (),
        providers: tuple[str, ...] = (),
        schema_extensions: tuple[str, ...] = (),
    ) -> None:
        put(self, "step_types", step_types)
        put(self, "providers", providers)
        put(self, "schema_extensions", schema_extensions)

    def as_dict(self) -> dict[str, list[str]]:
        return {
            "step_types": list(self.step_types),
            "providers": list(self.providers),
            "schema_extensions": list(self.schema_extensions),
        }

    def __bool__(self) -> bool:
        return bool(self.step_types or self.providers or self.schema_extensions)


class StatusChange(Record):
    """One transition of a plugin's status, and why it happened."""

    __slots__ = ("at", "reason", "status")
    FIELDS = ("at", "status", "reason")
    at: datetime
    status: PluginStatus
    reason: str

    def __init__(self, at: datetime, status: PluginStatus, reason: str) -> None:
        put(self, "at", at)
        put(self, "status", status)
        put(self, "reason", reason)

    def as_dict(self) -> dict[str, str]:
        return {"at": self.at.isoformat(), "status": str(self.status), "reason": self.reason}


#: Called with ``(name, change)`` after each status change.
Listener = Callable[[str, StatusChange], None]


_RECORD_FIELDS = (
    "name",
    "status",
    "origin",
    "version",
    "metadata",
    "components",
    "load_time_ms",
    "loaded_at",
    "last_error",
    "error_code",
    "traceback",
    "config",
    "state",
    "adapter",
    "module_names",
    "dependencies",
    "requirements",
    "spec",
    "isolation",
    "layers",
    "signature",
    "lease",
    "history",
)

_NO_COMPONENTS = Components()


class PluginRecord(Record):
    """What the registry knows of one plugin (replaced whole on every change)."""

    # A __dict__ rather than slots: the registry re-stamps a record with its history on
    # every write (``_with_history``), and copying one dict is a single C call where
    # copying twenty-three slots was a fifth of what the host spent loading a plugin.
    FIELDS = _RECORD_FIELDS
    name: str
    status: PluginStatus
    origin: str
    version: str | None
    metadata: PluginMetadata | None
    components: Components
    load_time_ms: float | None
    loaded_at: datetime | None
    last_error: str | None
    error_code: str | None
    #: The formatted traceback behind ``last_error``, when plugin code raised.
    traceback: str | None
    config: dict[str, Any]
    state: Any
    adapter: PluginHost | None
    module_names: tuple[str, ...]
    dependencies: tuple[str, ...]
    requirements: tuple[Any, ...]  # the Dependency specifiers behind ``dependencies``
    spec: Any
    #: Where it runs (``in_process``, ``process``, ``sandbox``) and the sandbox layers in force.
    isolation: str
    layers: tuple[str, ...]
    #: The signature check's verdict when the config's policy asked for one.
    signature: str | None
    #: This version's calls in flight (``leases.Lease``): unload and reload wait for them.
    lease: Any
    #: Status changes so far, oldest first (bounded; filled in by the registry).
    history: tuple[StatusChange, ...]

    def __init__(
        self,
        name: str,
        status: PluginStatus,
        origin: str,
        version: str | None = None,
        metadata: PluginMetadata | None = None,
        components: Components = _NO_COMPONENTS,
        load_time_ms: float | None = None,
        loaded_at: datetime | None = None,
        last_error: str | None = None,
        error_code: str | None = None,
        traceback: str | None = None,
        config: dict[str, Any] | None = None,
        state: Any = None,
        adapter: PluginHost | None = None,
        module_names: tuple[str, ...] = (),
        dependencies: tuple[str, ...] = (),
        requirements: tuple[Any, ...] = (),
        spec: Any = None,
        isolation: str = "in_process",
        layers: tuple[str, ...] = (),
        signature: str | None = None,
        lease: Any = None,
        history: tuple[StatusChange, ...] = (),
    ) -> None:
        # One C-level update of the instance dict (twenty-three ``object.__setattr__``
        # calls were most of a record's cost; a load makes two records per plugin).
        self.__dict__.update(
            name=name,
            status=status,
            origin=origin,
            version=version,
            metadata=metadata,
            components=components,
            load_time_ms=load_time_ms,
            loaded_at=loaded_at,
            last_error=last_error,
            error_code=error_code,
            traceback=traceback,
            config={} if config is None else config,
            state=state,
            adapter=adapter,
            module_names=module_names,
            dependencies=dependencies,
            requirements=requirements,
            spec=spec,
            isolation=isolation,
            layers=layers,
            signature=signature,
            lease=lease,
            history=history,
        )

    @property
    def is_live(self) -> bool:
        """Loaded and serving its components: active, or degraded by a failed health check."""
        return self.status in LIVE

    def evolve(self, **changes: Any) -> PluginRecord:
        return self.replace(**changes)

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
            "history": [change.as_dict() for change in self.history],
        }


class PluginRegistry:
    """Records keyed by plugin name, in load order."""

    def __init__(self, history_limit: int = HISTORY_LIMIT) -> None:
        self._records: dict[str, PluginRecord] = {}
        self._lock = threading.Lock()
        #: name -> its status changes, oldest first (a tuple replaced on each change, so a
        #: record can share it)
        self._history: dict[str, tuple[StatusChange, ...]] = {}
        self._history_limit = history_limit
        #: Called after each status change, outside the lock (see ``Listener``).
        self.listeners: list[Listener] = []
        #: name -> the live plugins whose requirements or conflicts name it: what a new
        #: plugin must be checked against, without walking every live record per load.
        self._mentions: dict[str, set[str]] = {}

    def put(self, record: PluginRecord, *, reason: str | None = None) -> None:
        """Store ``record``; a changed status is recorded with ``reason`` (by default the
        record's ``last_error`` for ``failed``/``degraded``, else a word for the change)."""
        with self._lock:
            previous = self._records.get(record.name)
            change = None
            if previous is None or previous.status != record.status:
                change = StatusChange(
                    datetime.now(UTC), record.status, reason or _reason(previous, record)
                )
                self._remember(record.name, change)
            record = _with_history(record, self._history.get(record.name, ()))
            self._reindex(previous, record)
            # In place (a copy per new plugin made a batch of N loads quadratic): readers
            # that iterate take a list of the values first, which is one C call and so
            # never sees the dict change size under it.
            self._records[record.name] = record
        if change is not None:
            self._announce(record.name, change)

    def remove(self, name: str, *, reason: str = "unloaded") -> PluginRecord | None:
        with self._lock:
            record = self._records.pop(name, None)
            self._reindex(record, None)
            change = None
            if record is not None and record.status in LIVE:
                change = StatusChange(datetime.now(UTC), PluginStatus.UNLOADED, reason)
                self._remember(name, change)
        if change is not None:
            self._announce(name, change)
        return record

    def set_status(
        self, name: str, status: PluginStatus, reason: str, *, only_from: frozenset[PluginStatus]
    ) -> bool:
        """Move a plugin from one of ``only_from`` to ``status`` (the health monitor's
        degrade and recover); False when its status was something else."""
        with self._lock:
            current = self._records.get(name)
            if current is None or current.status not in only_from or current.status == status:
                return False
            change = StatusChange(datetime.now(UTC), status, reason)
            self._remember(name, change)
            record = current.replace(status=status, history=tuple(self._history[name]))
            self._reindex(current, record)
            self._records[name] = record
        self._announce(name, change)
        return True

    def mentioning(self, name: str) -> list[PluginRecord]:
        """Live plugins whose requirements or declared conflicts name ``name``."""
        with self._lock:
            names = tuple(self._mentions.get(name, ()))
        found = [self._records.get(n) for n in names]
        return [r for r in found if r is not None and r.is_live]

    def _reindex(self, previous: PluginRecord | None, record: PluginRecord | None) -> None:
        """Keep ``_mentions`` in step with a write (under the lock)."""
        if previous is not None and previous.status in LIVE:
            for target in _mentioned(previous):
                holders = self._mentions.get(target)
                if holders is not None:
                    holders.discard(previous.name)
                    if not holders:
                        del self._mentions[target]
        if record is not None and record.status in LIVE:
            for target in _mentioned(record):
                self._mentions.setdefault(target, set()).add(record.name)

    def history(self, name: str) -> tuple[StatusChange, ...]:
        """Every status change of ``name`` still kept, oldest first (also after unload)."""
        return self._history.get(name, ())

    def departed(self) -> list[str]:
        """Plugins that had a status once and have no record now (unloaded)."""
        with self._lock:
            return [name for name in self._history if name not in self._records]

    def _remember(self, name: str, change: StatusChange) -> None:
        history = (*self._history.get(name, ()), change)
        self._history[name] = history[-self._history_limit :]

    def _announce(self, name: str, change: StatusChange) -> None:
        level = _LOG_LEVELS.get(change.status, logging.INFO)
        if logger.isEnabledFor(level):  # two per plugin load: no record to throw away
            logger.log(
                level,
                "plugin %s is %s: %s",
                name,
                change.status,
                change.reason,
                extra={"plugin": name, "status": str(change.status)},
            )
        for listener in list(self.listeners):
            try:
                listener(name, change)
            except Exception:  # a listener must not break the lifecycle
                logger.exception("status listener %r failed", listener)

    def get(self, name: str) -> PluginRecord | None:
        return self._records.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._records

    def __iter__(self) -> Iterator[PluginRecord]:
        return iter(list(self._records.values()))

    def __len__(self) -> int:
        return len(self._records)

    def names(self, status: PluginStatus | None = None) -> list[str]:
        return [
            r.name for r in list(self._records.values()) if status is None or r.status == status
        ]

    def live(self) -> list[PluginRecord]:
        """Plugins whose components are registered (active or degraded)."""
        return [r for r in list(self._records.values()) if r.status in LIVE]

    def with_capability(self, capability: str) -> list[PluginRecord]:
        return [
            r
            for r in list(self._records.values())
            if r.status in LIVE and r.metadata is not None and capability in r.metadata.capabilities
        ]

    def components_of(self, name: str) -> Components:
        record = self._records.get(name)
        return record.components if record else Components()


def _with_history(record: PluginRecord, history: tuple[StatusChange, ...]) -> PluginRecord:
    """``record`` with ``history`` (a copy of its ``__dict__``: ``replace`` would run
    ``__init__`` over twenty-three keyword arguments, and this is on every load and unload)."""
    if record.history is history:
        return record
    copy = object.__new__(PluginRecord)
    fields = copy.__dict__
    fields.update(record.__dict__)
    fields["history"] = history
    return copy


def _mentioned(record: PluginRecord) -> set[str]:
    """The plugins ``record`` requires or declares a conflict with."""
    names = {dep.name for dep in record.requirements}
    if record.metadata is not None:
        names.update(record.metadata.conflicts)
    return names


def _reason(previous: PluginRecord | None, record: PluginRecord) -> str:
    if record.status in (PluginStatus.FAILED, PluginStatus.DEGRADED) and record.last_error:
        code = f" [{record.error_code}]" if record.error_code else ""
        return f"{record.last_error}{code}"
    if record.status == PluginStatus.ACTIVE:
        if previous is not None and previous.status == PluginStatus.DEGRADED:
            return "recovered"
        return "loaded" if previous is None or not previous.is_live else "reloaded"
    if record.status == PluginStatus.DISABLED:
        return "enabled: false in the plugin config"
    return str(record.status)
