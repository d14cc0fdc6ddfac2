"""Health: checks that flip and hang, the error-rate window, the health thread."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from monitoring_samples import Boom, Noop, Switch, plugin

from pipeline_ex import Runtime
from pipeline_ex.errors import StepFailedError
from pipeline_ex.monitoring.health import judge
from pipeline_ex.monitoring.settings import HealthSettings


def _statuses(runtime: Runtime, name: str) -> list[str]:
    snapshot = runtime.monitoring.plugin(name)
    assert snapshot is not None
    return [entry.status for entry in snapshot.history]


def test_a_plugin_whose_health_flips_is_degraded_then_recovers() -> None:
    switch = Switch()
    with Runtime() as rt:
        rt.plugins.load_plugin("flaky", plugin("flaky", steps={"noop": Noop}, health=switch))
        assert rt.monitoring.check_health("flaky")["flaky"].ok is True
        switch.ok = False
        state = rt.monitoring.check_health("flaky")["flaky"]
        assert state.ok is False and "database unreachable" in (state.message or "")
        snapshot = rt.monitoring.plugin("flaky")
        assert snapshot is not None and snapshot.status == "degraded"
        assert snapshot.health.ok is False and snapshot.health.checked_at is not None
        # degraded still serves its components
        run = {"workflow": {"name": "w", "steps": [{"name": "a", "type": "noop"}]}}
        assert rt.run(run)["a"]["success"] is True
        switch.ok = True
        rt.monitoring.check_health()
        snapshot = rt.monitoring.plugin("flaky")
        assert snapshot is not None and snapshot.status == "active"
        assert _statuses(rt, "flaky") == ["loading", "active", "degraded", "active"]
        degraded, recovered = snapshot.history[2], snapshot.history[3]
        assert "database unreachable" in degraded.reason
        assert recovered.reason.startswith("recovered")


def test_a_hanging_check_is_a_failed_check_and_never_blocks_dispatch() -> None:
    switch = Switch()
    with Runtime(plugin_timeout=0.2) as rt:
        rt.plugins.load_plugin("stuck", plugin("stuck", steps={"noop": Noop}, health=switch))
        switch.hang = True
        results: list[object] = []
        checker = threading.Thread(target=lambda: results.append(rt.monitoring.check_health()))
        checker.start()
        # while the check hangs (5 s deadline at least), steps of the plugin still run
        for _ in range(20):
            run = {"workflow": {"name": "w", "steps": [{"name": "a", "type": "noop"}]}}
            assert rt.run(run)["a"]["success"] is True
        checker.join(30)
        assert not checker.is_alive()
        state = rt.monitoring.plugin("stuck")
        assert state is not None and state.status == "degraded"
        assert state.health.ok is False
        assert "did not return within" in (state.health.message or "")
        assert state.errors_by_code.get("timeout") == 1
        # a check still hung from before answers timeout at once instead of piling up
        started = time.monotonic()
        again = rt.monitoring.check_health("stuck")["stuck"]
        assert again.ok is False and time.monotonic() - started < 2
        switch.release.set()


def test_error_rate_over_the_window_degrades_and_recovers(tmp_path: Path) -> None:
    config = tmp_path / "plugins.yaml"
    config.write_text(
        "monitoring:\n  error_rate: {window_s: 60, threshold: 0.5, min_calls: 4}\nplugins: {}\n"
    )
    now = [1000.0]
    with Runtime(plugin_config=config) as rt:
        rt.monitoring.health._clock = lambda: now[0]
        rt.plugins.load_plugin("shaky", plugin("shaky", steps={"boom": Boom, "noop": Noop}))
        rt.monitoring.check_health("shaky")  # first sample
        for _ in range(4):
            with pytest.raises(StepFailedError):
                rt.run({"workflow": {"name": "w", "steps": [{"name": "a", "type": "boom"}]}})
        now[0] += 10
        rt.monitoring.check_health("shaky")
        snapshot = rt.monitoring.plugin("shaky")
        assert snapshot is not None and snapshot.status == "degraded"
        assert snapshot.history[-1].reason.startswith("error rate 100% over 60s (4 of 4 calls")
        for _ in range(20):
            rt.run({"workflow": {"name": "w", "steps": [{"name": "a", "type": "noop"}]}})
        now[0] += 61  # the failures leave the window
        rt.monitoring.check_health("shaky")
        snapshot = rt.monitoring.plugin("shaky")
        assert snapshot is not None and snapshot.status == "active"


def test_the_health_thread_checks_at_its_interval_and_stops_on_close(tmp_path: Path) -> None:
    config = tmp_path / "plugins.yaml"
    config.write_text(
        "monitoring: {health_interval_s: 60}\n"
        "plugins:\n"
        "  ticking:\n"
        "    module: monitoring_samples:Ticking\n"
        "    monitoring: {health_interval_s: 0.05}\n"
    )
    rt = Runtime(plugin_config=config)
    try:
        assert rt.load_report.ok, rt.load_report.failed
        assert rt.monitoring.health.running
        assert rt.monitoring.settings_for("ticking").interval_s == 0.05
        assert rt.monitoring.settings_for("core_steps").interval_s == 60
        deadline = time.monotonic() + 20
        while rt.monitoring.plugin("ticking").health.checked_at is None:  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "no periodic check ran"
            time.sleep(0.02)
    finally:
        rt.close()
    assert not rt.monitoring.health.running


def test_no_thread_without_an_interval(runtime: Runtime) -> None:
    assert runtime.monitoring.health.intervals() == {}
    assert not runtime.monitoring.health.running
    assert runtime.monitoring.health.start() is False


def test_settings_merge_and_unhealthy_answers() -> None:
    merged = HealthSettings.merged(
        {"health_interval_s": 30, "error_rate": {"threshold": 0.2, "min_calls": 5}},
        {"error_rate": {"min_calls": 2}},
    )
    assert merged == HealthSettings(interval_s=30, window_s=60, threshold=0.2, min_calls=2)
    assert judge({"status": "ok"}) == (True, None)
    assert judge(False)[0] is False
    assert judge({"status": "degraded", "message": "slow"}) == (
        False,
        "health_check status 'degraded': slow",
    )
    assert judge({"ok": False})[0] is False
