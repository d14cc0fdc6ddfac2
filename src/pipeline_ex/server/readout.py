"""The server's one view of the Runtime's monitoring (``runtime.monitoring``, issue 11).

Every endpoint and the status page read plugins, runs and metrics through here and nowhere
else, so the server depends on the monitoring API in exactly one module.  What it returns
is plain JSON-ready data (the snapshot dictionaries), never live objects: the server may
render it on any thread while the Runtime goes on changing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline_ex.runtime import Runtime

#: Statuses an operator chose (a config entry's ``enabled: false``, an admin ``unload``):
#: not "enabled", so they do not make ``/healthz`` fail.
NOT_ENABLED = frozenset({"disabled", "unloaded"})


class Readout:
    def __init__(self, runtime: Runtime) -> None:
        self._monitoring = runtime.monitoring

    def snapshot(self) -> dict[str, Any]:
        """``{"plugins": [...], "runs": [...], "taken_at": ...}``, one consistent copy."""
        return self._monitoring.snapshot().as_dict()

    def plugins(self) -> list[dict[str, Any]]:
        plugins: list[dict[str, Any]] = self.snapshot()["plugins"]
        return plugins

    def plugin(self, name: str) -> dict[str, Any] | None:
        found = self._monitoring.plugin(name)
        return None if found is None else found.as_dict()

    def runs(self, limit: int) -> list[dict[str, Any]]:
        return [record.as_dict() for record in self._monitoring.runs(limit)]

    def prometheus_text(self) -> bytes:
        return self._monitoring.prometheus_text()


def not_active(plugins: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Enabled plugins that are not ``active``, with why (what ``/healthz`` lists)."""
    return [
        {
            "name": p["name"],
            "status": p["status"],
            "last_error": p.get("last_error"),
            "health": p.get("health"),
        }
        for p in plugins
        if p["status"] != "active" and p["status"] not in NOT_ENABLED
    ]
