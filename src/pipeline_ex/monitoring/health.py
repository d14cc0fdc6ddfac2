"""Health: periodic checks and the error-rate window that degrade a plugin and restore it.

A plugin is ``degraded`` while its last health check failed (raised, timed out, or
answered unhealthy) or while its error rate over the sliding window is above the
threshold; once both are fine again it is ``active`` ("recovered").  Each transition goes
through the registry, which logs it with its reason and keeps it in the plugin's history.

One daemon thread per Runtime (``HealthMonitor.start``) looks after the watched plugins
(those with a ``health_interval_s`` or an ``error_rate``): it runs their checks when due
and, between checks, samples their error rate every ``min(window_s / 4, 1 s)``, so the rule
holds without any check and the window read is never much longer than ``window_s``.  It is
started when the Runtime is built and again (idempotently) whenever a plugin becomes
active, so a plugin loaded later is watched too; once stopped it stays stopped, and a check
that returns after the stop changes nothing.  A check runs under the guard's deadline on
a helper thread, so a hanging check is a failed check (``timeout``) and never blocks a
step's dispatch; a check still running from earlier is not started twice (a second caller
shares its answer, and gets ``timeout`` only once it is past its deadline).
``check(name)`` runs checks now, on the caller's thread.
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
        #: Degraded by the error-rate rule (which may then restore them between checks).
        self._rate_degraded: set[str] = set()
        self._due: dict[str, float] = {}
        self._rate_due: dict[str, float] = {}
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
        outcome = self.manager.health(name, cancelled=self._stop.is_set)
        if self._stop.is_set():  # the Runtime is closing: a late answer changes nothing
            return self.state(name)
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
        self._apply_error_rate(name, after_check=True)
        return state

    def _apply_error_rate(self, name: str, *, after_check: bool) -> None:
        """Degrade on a too high error rate; restore when it is fine again and the last
        check passed.  Between checks (``after_check`` False) only a degradation the rule
        itself made is undone: one made by a check waits for a passing check."""
        settings = self.settings_for(name)
        # what the plugin serves, not its lifecycle calls (the health checks themselves)
        calls, errors = self.metrics.totals(name, ("step_type", "provider"))
        with self._lock:
            window = self._windows.setdefault(name, _ErrorWindow())
            too_many = window.rate(self._clock(), calls, errors, settings)
        if self._stop.is_set():
            return
        registry = self.manager.registry
        if too_many is not None:
            if registry.set_status(
                name,
                PluginStatus.DEGRADED,
                too_many,
                only_from=frozenset({PluginStatus.ACTIVE}),
            ):
                self._rate_degraded.add(name)
        elif name not in self._failing_check and (after_check or name in self._rate_degraded):
            self._rate_degraded.discard(name)
            registry.set_status(
                name,
                PluginStatus.ACTIVE,
                "recovered: health check passes and the error rate is under its threshold",
                only_from=frozenset({PluginStatus.DEGRADED}),
            )

    # -- the thread --------------------------------------------------------------------
    def intervals(self) -> dict[str, float]:
        """Live plugins with a periodic check, and their intervals."""
        return {n: s.interval_s for n, s in self.watched().items() if s.interval_s > 0}

    def watched(self) -> dict[str, HealthSettings]:
        """Live plugins the thread looks after (a check interval or an error-rate rule)."""
        out: dict[str, HealthSettings] = {}
        for record in self.manager.registry.live():
            settings = self.settings_for(record.name)
            if settings.watched:
                out[record.name] = settings
        return out

    def start(self) -> bool:
        """Start the thread if a live plugin is watched (idempotent, and never again
        after ``stop``); True if it is running."""
        with self._lock:
            if self._stop.is_set():
                return False
            if self._thread is not None:
                return True
            if not self.watched():
                return False
            self._thread = threading.Thread(
                target=self._loop, name="pipeline-ex:health", daemon=True
            )
            self._thread.start()
            return True

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread; a check it is still running may go on (up to its deadline),
        but its answer no longer changes any state."""
        with self._lock:
            self._stop.set()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            watched = self.watched()
            for name, settings in watched.items():
                if self._stop.is_set():
                    return
                try:
                    self._tend(name, settings)
                except Exception:  # unloaded meanwhile, or a bug: never kill the thread
                    logger.debug("health check of %s skipped", name, exc_info=True)
            now = self._clock()
            upcoming = [self._rate_due.get(n, now) for n in watched]
            upcoming += [self._due.get(n, now) for n, s in watched.items() if s.interval_s > 0]
            wait = min(upcoming, default=now + 1.0) - now
            self._stop.wait(max(0.01, min(wait, 1.0)))

    def _tend(self, name: str, settings: HealthSettings) -> None:
        """Run ``name``'s check when due (it reads the error rate too), else sample its
        error rate when that is due."""
        now = self._clock()
        if settings.interval_s > 0:
            due = self._due.setdefault(name, now + settings.interval_s)
            if now >= due:
                self._due[name] = now + settings.interval_s
                self._rate_due[name] = now + settings.rate_every_s
                self._check_one(name)
                return
        if now >= self._rate_due.setdefault(name, now):  # first sample at once
            self._rate_due[name] = now + settings.rate_every_s
            self._apply_error_rate(name, after_check=False)
