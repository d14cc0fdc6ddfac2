"""Health: periodic checks and the error-rate window that degrade a plugin and restore it.

A plugin is ``degraded`` while its last health check failed (raised, timed out, or
answered unhealthy) or while its error rate over the sliding window is above the
threshold; once both are fine again it is ``active`` ("recovered").  Each transition goes
through the registry, which logs it with its reason and keeps it in the plugin's history.

One daemon thread per Runtime (``HealthMonitor.start``) wakes at the shortest configured
interval and checks the plugins that are due.  A check runs under the guard's deadline on
a helper thread, so a hanging check is a failed check (``timeout``) and never blocks a
step's dispatch; a check still running from earlier is not started twice (a second caller
shares its answer, and gets ``timeout`` only once it is past its deadline).  ``check(name)`` runs checks now, on the caller's thread.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pipeline_ex.log import get_logger
from pipeline_ex.monitoring.settings import HealthSettings
from pipeline_ex.plugins.registry import LIVE, PluginStatus

if TYPE_CHECKING:
    from pipeline_ex.monitoring.metrics import Metrics
    from pipeline_ex.plugins.manager import PluginManager

logger = get_logger(__name__)

#: Answers of a ``health_check`` that mean "unhealthy" when found under ``status``.
UNHEALTHY = frozenset({"error", "unhealthy", "failed", "failing", "degraded", "down"})


@dataclass(frozen=True)
class HealthState:
    """The last health check of one plugin: ``ok`` is None when it has no check (or none
    ran yet)."""

    ok: bool | None = None
    message: str | None = None
    checked_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "message": self.message,
            "checked_at": self.checked_at.isoformat() if self.checked_at else None,
        }


def judge(report: Any) -> tuple[bool, str | None]:
    """Whether a health check's answer says healthy: ``False``, or a mapping whose
    ``ok``/``healthy`` is false or whose ``status`` is one of ``UNHEALTHY``, is not."""
    if report is False:
        return False, "health_check returned False"
    if isinstance(report, Mapping):
        for key in ("ok", "healthy"):
            if key in report and report[key] is False:
                message = report.get("message") or report.get("error")
                return False, str(message) if message else f"health_check said {key}: false"
        status = report.get("status")
        if isinstance(status, str) and status.lower() in UNHEALTHY:
            message = report.get("message") or report.get("error")
            return False, f"health_check status {status!r}" + (f": {message}" if message else "")
        message = report.get("message")
        return True, str(message) if isinstance(message, str) else None
    return True, None


class _ErrorWindow:
    """Samples of a plugin's (calls, errors) totals, to read the rate over a window."""

    def __init__(self) -> None:
        self.samples: deque[tuple[float, int, int]] = deque()

    def rate(self, now: float, calls: int, errors: int, settings: HealthSettings) -> str | None:
        """A reason to degrade when the window's error rate is over the threshold."""
        self.samples.append((now, calls, errors))
        while len(self.samples) > 1 and now - self.samples[1][0] >= settings.window_s:
            self.samples.popleft()
        _, first_calls, first_errors = self.samples[0]
        if len(self.samples) == 1:
            first_calls = first_errors = 0
        window_calls, window_errors = calls - first_calls, errors - first_errors
        if window_calls < settings.min_calls:
            return None
        rate = window_errors / window_calls
        if rate <= settings.threshold:
            return None
        return (
            f"error rate {rate:.0%} over {settings.window_s:g}s "
            f"({window_errors} of {window_calls} calls; threshold {settings.threshold:.0%})"
        )


class HealthMonitor:
    """Health state of every plugin of one Runtime, and the thread that keeps it fresh."""

    def __init__(
        self,
        manager: PluginManager,
        metrics: Metrics,
        settings_for: Callable[[str], HealthSettings],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.manager = manager
        self.metrics = metrics
        self.settings_for = settings_for
        self._clock = clock
        self._states: dict[str, HealthState] = {}
        self._windows: dict[str, _ErrorWindow] = {}
        self._failing_check: set[str] = set()
        self._due: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def state(self, name: str) -> HealthState:
        return self._states.get(name, HealthState())

    # -- checks ------------------------------------------------------------------------
    def check(self, name: str | None = None) -> dict[str, HealthState]:
        """Run the health check of ``name`` (or of every live plugin) now, and apply the
        error-rate rule; returns the new states."""
        names = [name] if name is not None else [r.name for r in self.manager.registry.live()]
        return {each: self._check_one(each) for each in names}

    def _check_one(self, name: str) -> HealthState:
        record = self.manager.get_plugin(name)  # raises not_loaded
        if record.status not in LIVE:
            return self.state(name)
        outcome = self.manager.health(name)
        now = datetime.now(UTC)
        if "report" in outcome:
            ok, message = judge(outcome["report"])
        elif "error" in outcome and outcome.get("status") == "degraded":
            ok, message = False, str(outcome["error"])
        else:
            ok, message = None, None  # no health_check: only the error rate speaks
        state = HealthState(ok, message, now)
        with self._lock:
            self._states[name] = state
        if ok is False:
            self._failing_check.add(name)
            self.manager.registry.set_status(
                name,
                PluginStatus.DEGRADED,
                f"health check failed: {message}",
                only_from=frozenset({PluginStatus.ACTIVE}),
            )
        else:
            self._failing_check.discard(name)
        self._apply_error_rate(name)
        return state

    def _apply_error_rate(self, name: str) -> None:
        settings = self.settings_for(name)
        # what the plugin serves, not its lifecycle calls (the health checks themselves)
        calls, errors = self.metrics.totals(name, ("step_type", "provider"))
        window = self._windows.setdefault(name, _ErrorWindow())
        too_many = window.rate(self._clock(), calls, errors, settings)
        registry = self.manager.registry
        if too_many is not None:
            registry.set_status(
                name,
                PluginStatus.DEGRADED,
                too_many,
                only_from=frozenset({PluginStatus.ACTIVE}),
            )
        elif name not in self._failing_check:
            registry.set_status(
                name,
                PluginStatus.ACTIVE,
                "recovered: health check passes and the error rate is under its threshold",
                only_from=frozenset({PluginStatus.DEGRADED}),
            )

    # -- the thread --------------------------------------------------------------------
    def intervals(self) -> dict[str, float]:
        """Live plugins with a periodic check, and their intervals."""
        out: dict[str, float] = {}
        for record in self.manager.registry.live():
            interval = self.settings_for(record.name).interval_s
            if interval > 0:
                out[record.name] = interval
        return out

    def start(self) -> bool:
        """Start the thread if any plugin has an interval (idempotent); True if running."""
        if self._thread is not None:
            return True
        if not self.intervals():
            return False
        self._thread = threading.Thread(target=self._loop, name="pipeline-ex:health", daemon=True)
        self._thread.start()
        return True

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            intervals = self.intervals()
            now = self._clock()
            for name, interval in intervals.items():
                due = self._due.setdefault(name, now + interval)
                if now >= due and not self._stop.is_set():
                    self._due[name] = now + interval
                    try:
                        self._check_one(name)
                    except Exception:  # unloaded meanwhile, or a bug: never kill the thread
                        logger.debug("health check of %s skipped", name, exc_info=True)
            wait = min((self._due.get(n, now) - self._clock() for n in intervals), default=1.0)
            self._stop.wait(max(0.01, min(wait, 1.0)))
