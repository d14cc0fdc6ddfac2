"""Health: checks that flip and hang, the error-rate window, the health thread."""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from monitoring_samples import Boom, Noop, Switch, plugin

from pipeline_ex import Runtime
from pipeline_ex.errors import StepFailedError
from pipeline_ex.monitoring.health import judge
from pipeline_ex.monitoring.settings import HealthSettings
from waiting import wait_until


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


def _waiting_in(thread: threading.Thread, function: str) -> bool:
    """Whether ``thread`` is blocked somewhere under ``function`` (a frame of that name)."""
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code.co_name == function:
            return True
        frame = frame.f_back
    return False


def test_a_second_check_waits_for_a_running_one_within_its_deadline() -> None:
    switch = Switch()
    with Runtime() as rt:
        rt.plugins.load_plugin("slow", plugin("slow", steps={"noop": Noop}, health=switch))
        switch.hang = True
        answers: dict[str, dict[str, object]] = {}
        first = threading.Thread(target=lambda: answers.update(first=rt.plugins.health("slow")))
        first.start()
        assert switch.entered.wait(30)
        second = threading.Thread(target=lambda: answers.update(second=rt.plugins.health("slow")))
        second.start()
        wait_until(
            lambda: not second.is_alive() or _waiting_in(second, "_share"),
            "the second check answered or waits for the first",
        )
        assert "second" not in answers, answers  # no 'timeout' at once
        switch.release.set()  # the first check returns healthy, well within its deadline
        first.join(30)
        second.join(30)
        assert answers["first"]["report"] == {"status": "ok"}
        assert answers["second"] == answers["first"]
        snapshot = rt.monitoring.plugin("slow")
        assert snapshot is not None and snapshot.status == "active"
        assert snapshot.errors_by_code == {}


def test_repeated_check_failures_log_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    switch = Switch()
    switch.ok = False
    with Runtime() as rt, caplog.at_level(logging.DEBUG, logger="pipeline_ex"):
        rt.plugins.load_plugin("sick", plugin("sick", steps={"noop": Noop}, health=switch))
        for _ in range(3):
            assert rt.monitoring.check_health("sick")["sick"].ok is False
    raised = [r for r in caplog.records if r.name == "pipeline_ex.plugins.guard"]
    assert [r.levelno for r in raised] == [logging.WARNING, logging.DEBUG, logging.DEBUG]
    changes = [r for r in caplog.records if "is degraded" in r.getMessage()]
    assert len(changes) == 1 and changes[0].levelno == logging.WARNING


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


def _snapshot(runtime: Runtime, name: str) -> Any:
    snapshot = runtime.monitoring.plugin(name)
    assert snapshot is not None
    return snapshot


def test_a_plugin_loaded_later_is_checked_at_its_interval() -> None:
    config = {"monitoring": {"health_interval_s": 0.05}, "plugins": {}}
    with Runtime(plugin_config=config, load_builtins=False) as rt:
        assert not rt.monitoring.health.running  # nothing to watch yet
        rt.plugins.load_plugin("late", plugin("late", steps={"noop": Noop}, health=Switch()))
        wait_until(
            lambda: _snapshot(rt, "late").health.checked_at is not None,
            "the late plugin's first periodic check",
        )
        assert rt.monitoring.health.running


@pytest.mark.parametrize(
    "monitoring",
    [
        {"error_rate": {"window_s": 2, "threshold": 0.5, "min_calls": 2}},
        # a check interval far longer than the window: the rate is still read per window
        {"health_interval_s": 3600, "error_rate": {"window_s": 2, "min_calls": 2}},
    ],
)
def test_the_error_rate_rule_works_without_checks(monitoring: dict[str, Any]) -> None:
    now = [1000.0]
    with Runtime(
        plugin_config={"monitoring": monitoring, "plugins": {}}, load_builtins=False
    ) as rt:
        rt.monitoring.health._clock = lambda: now[0]
        rt.plugins.load_plugin("shaky", plugin("shaky", steps={"boom": Boom, "noop": Noop}))
        for _ in range(3):
            with pytest.raises(StepFailedError):
                rt.run({"workflow": {"name": "w", "steps": [{"name": "a", "type": "boom"}]}})
        now[0] += 1  # the thread samples again (every window_s / 4)
        wait_until(lambda: _snapshot(rt, "shaky").status == "degraded", "degraded by errors")
        assert _snapshot(rt, "shaky").history[-1].reason.startswith("error rate 100% over 2s")
        assert _snapshot(rt, "shaky").health.checked_at is None  # no check ran
        now[0] += 10  # the failures leave the window
        wait_until(lambda: _snapshot(rt, "shaky").status == "active", "recovered")


def test_a_check_answering_after_stop_changes_nothing() -> None:
    switch = Switch()
    switch.hang = True
    config = {"monitoring": {"health_interval_s": 0.01}, "plugins": {}}
    with Runtime(plugin_config=config, load_builtins=False) as rt:
        rt.plugins.load_plugin("stuck", plugin("stuck", steps={"noop": Noop}, health=switch))
        assert switch.entered.wait(30)  # the health thread is inside the check
        thread = rt.monitoring.health._thread
        assert thread is not None
        rt.monitoring.health.stop(timeout=0)
        switch.ok = False
        switch.release.set()  # the check fails, but after the stop
        thread.join(30)
        assert not thread.is_alive()
        snapshot = _snapshot(rt, "stuck")
        assert snapshot.status == "active" and snapshot.health.checked_at is None
        assert rt.monitoring.health.start() is False  # stopped for good


def test_no_thread_without_an_interval(runtime: Runtime) -> None:
    assert runtime.monitoring.health.intervals() == {}
    assert not runtime.monitoring.health.running
    assert runtime.monitoring.health.start() is False


def test_settings_merge_and_unhealthy_answers() -> None:
    merged = HealthSettings.merged(
        {"health_interval_s": 30, "error_rate": {"threshold": 0.2, "min_calls": 5}},
        {"error_rate": {"min_calls": 2}},
    )
    assert merged == HealthSettings(
        interval_s=30, window_s=60, threshold=0.2, min_calls=2, error_rate=True
    )
    assert merged.watched and merged.rate_every_s == 1.0
    only_rate = HealthSettings.merged({"error_rate": {"window_s": 2}}, None)
    assert only_rate.watched and only_rate.interval_s == 0 and only_rate.rate_every_s == 0.5
    assert not HealthSettings.merged({}, {}).watched
    assert judge({"status": "ok"}) == (True, None)
    assert judge(False)[0] is False
    assert judge({"status": "degraded", "message": "slow"}) == (
        False,
        "health_check status 'degraded': slow",
    )
    assert judge({"ok": False})[0] is False
