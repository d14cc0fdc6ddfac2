"""The one place where the host calls plugin code.

Every lifecycle call (init, terminate, get_*, health_check) goes through ``Guard.call``:
exceptions become ``PluginError`` with a code, time is measured, calls and errors are
counted per plugin.  Lifecycle calls run on a helper thread with a deadline so a plugin that
hangs costs a ``timeout`` error, not the host.  Step dispatch uses ``Guard.dispatch``: no
thread, just timing and counting, because it is on every step's path.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipeline_ex.errors import PluginError

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0


@dataclass
class CallStats:
    """Counters for one plugin; plain ints updated under the GIL."""

    calls: int = 0
    errors: int = 0
    total_seconds: float = 0.0
    last_error: str | None = None
    per_component: dict[str, list[float]] = field(default_factory=dict)

    def record(self, component: str, seconds: float, failed: bool) -> None:
        self.calls += 1
        self.total_seconds += seconds
        if failed:
            self.errors += 1
        entry = self.per_component.get(component)
        if entry is None:
            self.per_component[component] = [1, seconds, float(failed)]
        else:
            entry[0] += 1
            entry[1] += seconds
            entry[2] += float(failed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "errors": self.errors,
            "total_seconds": round(self.total_seconds, 6),
            "last_error": self.last_error,
            "components": {
                name: {
                    "calls": int(c),
                    "errors": int(e),
                    "mean_ms": round(1000 * t / c, 4) if c else 0.0,
                }
                for name, (c, t, e) in self.per_component.items()
            },
        }


class Guard:
    """Catches, times and counts every call into plugin code."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self.stats: dict[str, CallStats] = {}

    def stats_for(self, plugin: str) -> CallStats:
        stats = self.stats.get(plugin)
        if stats is None:
            stats = self.stats.setdefault(plugin, CallStats())
        return stats

    def invoke(
        self, plugin: str, operation: str, fn: Callable[..., Any], *args: Any, code: str = "crashed"
    ) -> Any:
        """Call plugin code on this thread; any exception becomes ``PluginError(code)``."""
        stats = self.stats_for(plugin)
        started = time.perf_counter()
        try:
            result = fn(*args)
        except PluginError as exc:
            stats.record(operation, time.perf_counter() - started, True)
            stats.last_error = f"{operation}: {exc.message}"
            raise
        except Exception as exc:
            stats.record(operation, time.perf_counter() - started, True)
            stats.last_error = f"{operation}: {type(exc).__name__}: {exc}"
            logger.warning(
                "plugin %s: %s raised %r", plugin, operation, exc, extra={"plugin": plugin}
            )
            raise PluginError(
                f"plugin {plugin!r}: {operation} raised {type(exc).__name__}: {exc}",
                code=code,
                plugin=plugin,
            ) from exc
        stats.record(operation, time.perf_counter() - started, False)
        return result

    def call(
        self,
        plugin: str,
        operation: str,
        fn: Callable[..., Any],
        *args: Any,
        code: str = "crashed",
        timeout: float | None = None,
    ) -> Any:
        """``invoke`` on a helper thread with a deadline: a hang becomes ``timeout``.

        One thread per call costs a few thread switches, so the manager batches a whole
        load sequence (init, metadata, components) into one ``call``.
        """
        deadline = self.timeout if timeout is None else timeout
        outcome: list[Any] = []
        failure: list[BaseException] = []

        def target() -> None:
            try:
                outcome.append(self.invoke(plugin, operation, fn, *args, code=code))
            except BaseException as exc:
                failure.append(exc)

        worker = threading.Thread(target=target, name=f"plugin:{plugin}:{operation}", daemon=True)
        worker.start()
        worker.join(deadline)
        if worker.is_alive():
            stats = self.stats_for(plugin)
            stats.record(operation, deadline, True)
            stats.last_error = f"{operation} timed out after {deadline:g}s"
            raise PluginError(
                f"plugin {plugin!r}: {operation} did not return within {deadline:g}s",
                code="timeout",
                plugin=plugin,
            )
        if failure:
            raise failure[0]
        return outcome[0]

    def dispatch(self, owner: str, component: str, fn: Callable[..., Any], *args: Any) -> Any:
        """The hot path: call a step's ``execute`` and record how it went."""
        stats = self.stats.get(owner) or self.stats_for(owner)
        started = time.perf_counter()
        failed = True
        try:
            result = fn(*args)
            failed = False
            return result
        finally:
            stats.record(component, time.perf_counter() - started, failed)
            if failed:
                stats.last_error = f"{component} raised"
