"""The metrics seam: keys, exact counts under concurrency, latency buckets, errors."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from monitoring_samples import Boom, Noop, Refuses, plugin

from pipeline_ex.configuration import ConfigurationSystem
from pipeline_ex.monitoring.histogram import cumulative, quantile_ms
from pipeline_ex.monitoring.metrics import Meter, Metrics
from pipeline_ex.plugins import PluginManager
from pipeline_ex.plugins.guard import Guard
from pipeline_ex.registries import ProviderRegistry, StepRegistry


@pytest.fixture
def manager() -> Iterator[PluginManager]:
    mgr = PluginManager(StepRegistry(), ProviderRegistry(), ConfigurationSystem(), guard=Guard(2.0))
    try:
        yield mgr
    finally:
        mgr.shutdown()


def test_a_step_type_named_init_does_not_share_the_lifecycle_init_counters(
    manager: PluginManager,
) -> None:
    manager.load_plugin("named", plugin("named", steps={"init": Noop}))
    _, call = manager.steps.resolve("init")
    for _ in range(3):
        call({}, None)
    metrics = manager.guard.metrics
    assert metrics.cell("named", "step_type", "init").read().calls == 3
    assert metrics.cell("named", "lifecycle", "init").read().calls == 1


def test_errors_are_counted_by_code(manager: PluginManager) -> None:
    manager.load_plugin("bad", plugin("bad", steps={"boom": Boom, "refuses": Refuses}))
    for kind in ("boom", "refuses", "refuses"):
        _, call = manager.steps.resolve(kind)
        with pytest.raises(Exception):  # noqa: B017 - whatever the step raises
            call({}, None)
    metrics = manager.guard.metrics
    boom = metrics.cell("bad", "step_type", "boom").read()
    refuses = metrics.cell("bad", "step_type", "refuses").read()
    assert (boom.calls, boom.errors, boom.errors_by_code) == (1, 1, {"crashed": 1})
    assert refuses.errors_by_code == {"quota_exceeded": 2}
    assert metrics.last_errors["bad"] == "refuses raised PluginError [quota_exceeded]"


def _hammer(call: Any, threads: int, per_thread: int) -> None:
    start = threading.Barrier(threads)

    def work() -> None:
        start.wait()
        for _ in range(per_thread):
            call({}, None)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter allows
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        sys.setswitchinterval(previous)


def test_counts_are_exact_with_eight_threads_dispatching(manager: PluginManager) -> None:
    manager.load_plugin("busy", plugin("busy", steps={"noop": Noop}))
    _, call = manager.steps.resolve("noop")
    _hammer(call, threads=8, per_thread=20_000)
    reading = manager.guard.metrics.cell("busy", "step_type", "noop").read()
    assert reading.calls == 160_000
    assert sum(reading.buckets) == 160_000 and reading.errors == 0
    record = manager.get_plugin("busy")
    assert record.lease.in_flight() == 0  # every started call was seen to finish


def test_per_thread_shards_are_exact_and_fold_when_threads_end() -> None:
    """The layout free-threaded builds use: one shard per thread, merged on read."""
    meter = Meter(shared=False)

    def work() -> None:
        for _ in range(10_000):
            shard = meter.shard()
            shard[1] += 1
            shard[2 + (1000).bit_length()] += 1

    workers = [threading.Thread(target=work) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    totals = meter.totals()
    assert totals[1] == 80_000 and sum(totals[2:]) == 80_000
    assert meter.in_flight() == 0
    assert meter._shards == []  # the ended threads' shards were folded into the base
    assert meter.totals()[1] == 80_000


def test_latency_quantiles_come_from_log_buckets() -> None:
    counts = [0] * 64
    counts[20] = 98  # [2**19, 2**20) ns, about 0.5-1 ms
    counts[27] = 2  # [2**26, 2**27) ns, about 67-134 ms
    p50 = quantile_ms(counts, 0.5)
    p99 = quantile_ms(counts, 0.99)
    assert p50 is not None and 0.52 <= p50 <= 1.05
    assert p99 is not None and 67 <= p99 <= 135
    assert quantile_ms([0] * 64, 0.5) is None
    buckets = cumulative(counts)
    assert buckets[-1] == (float("inf"), 100)
    assert [count for _, count in buckets] == sorted(count for _, count in buckets)


def test_metrics_off_counts_calls_but_reports_no_latency() -> None:
    manager = PluginManager(
        StepRegistry(),
        ProviderRegistry(),
        ConfigurationSystem(),
        guard=Guard(2.0, metrics=Metrics(enabled=False)),
    )
    try:
        manager.load_plugin("quiet", plugin("quiet", steps={"noop": Noop}))
        _, call = manager.steps.resolve("noop")
        call({}, None)
        reading = manager.guard.metrics.cell("quiet", "step_type", "noop").read()
        assert reading.calls == 1 and reading.sum_ns == 0
        assert reading.p50_ms is None and reading.p99_ms is None
    finally:
        manager.shutdown()


def test_meters_of_unloaded_versions_are_folded_not_kept(manager: PluginManager) -> None:
    """Load/unload cycles keep counting into the same cell without growing it."""
    for _ in range(5):
        manager.load_plugin("cycled", plugin("cycled", steps={"noop": Noop}))
        _, call = manager.steps.resolve("noop")
        call({}, None)
        manager.unload_plugin("cycled")
    cell = manager.guard.metrics.cell("cycled", "step_type", "noop")
    assert cell.read().calls == 5
    assert len(cell._meters) == 1  # the cell's own; the five versions' meters were folded
    for _ in range(3):  # without reads in between too
        manager.load_plugin("cycled", plugin("cycled", steps={"noop": Noop}))
        manager.unload_plugin("cycled")
        assert len(cell._meters) == 1
    manager.load_plugin("cycled", plugin("cycled", steps={"noop": Noop}))
    manager.reload_plugin("cycled")
    manager.steps.resolve("noop")[1]({}, None)
    assert cell.read().calls == 6 and len(cell._meters) == 2


def test_lifecycle_calls_are_counted_when_read_and_settled_past_the_bound() -> None:
    metrics = Metrics()
    metrics.lifecycle("p", "init", 1_000)
    metrics.lifecycle("p", "init", 3_000)
    metrics.lifecycle("p", "get_metadata", 500)
    # read through each way in: one cell, the kind's cells, the plugin's readings
    assert metrics.cell("p", "lifecycle", "init").read().calls == 2
    assert metrics.cell("p", "lifecycle", "init").read().sum_ns == 4_000
    assert {r.key.name: r.calls for r in metrics.read("p")} == {"init": 2, "get_metadata": 1}
    assert metrics.totals("p", ("lifecycle",)) == (3, 0)
    # nobody reading: the noted calls do not pile up without bound
    from pipeline_ex.monitoring.metrics import _TIMINGS_LIMIT

    quiet = Metrics()
    for _ in range(_TIMINGS_LIMIT + 1):
        quiet.lifecycle("q", "health_check", 10)
    assert len(quiet._timings) == 0
    assert quiet._cells[("q", "lifecycle", "health_check")].read().calls == _TIMINGS_LIMIT + 1


def test_lifecycle_calls_noted_from_many_threads_are_all_counted() -> None:
    metrics = Metrics()
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        for _ in range(2_000):
            metrics.lifecycle("t", "init", 7)
            if _ % 97 == 0:
                metrics.read("t")  # readers settle while writers note

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert metrics.cell("t", "lifecycle", "init").read().calls == 16_000


def test_a_get_call_the_plugin_does_not_define_is_not_a_guarded_call(
    manager: PluginManager,
) -> None:
    """``Plugin``'s own get_providers / get_schema_extensions (not overridden) and a
    module plugin's missing ones are host stand-ins: no lifecycle call is counted."""
    from pipeline_ex.plugins import Plugin

    class OnlySteps(Plugin):
        def get_metadata(self, state: Any) -> dict[str, Any]:
            return {"name": "only_steps", "version": "1.0", "api_version": 1}

        def get_step_types(self, state: Any) -> list[tuple[str, Any]]:
            return [("only_steps_noop", Noop)]

    manager.load_plugin("only_steps", OnlySteps)
    manager.load_plugin("sampled", plugin("sampled", steps={"sampled_noop": Noop}))
    names = {r.key.name for r in manager.guard.metrics.read("only_steps")}
    assert {"import", "init", "get_metadata", "get_step_types"} <= names
    assert not names & {"get_providers", "get_schema_extensions"}
    sampled = {r.key.name: r.calls for r in manager.guard.metrics.read("sampled")}
    assert sampled["get_providers"] == 1  # overridden: plugin code, guarded and counted
    assert "get_schema_extensions" not in sampled
    assert manager.steps.resolve("only_steps_noop")[0].plugin == "only_steps"


def test_a_reader_never_sees_a_noted_call_missing_while_another_thread_settles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The health thread settling (popped a call, not yet counted it) must not let a
    scrape on another thread read the count one short."""
    from pipeline_ex.monitoring.metrics import Cell

    metrics = Metrics()
    metrics.lifecycle("p", "init", 1_000)
    popped, release = threading.Event(), threading.Event()
    real_record = Cell.record

    def slow_record(self: Cell, elapsed_ns: int) -> None:
        if threading.current_thread().name == "settler":
            popped.set()
            release.wait(10)
        real_record(self, elapsed_ns)

    monkeypatch.setattr(Cell, "record", slow_record)
    settler = threading.Thread(target=lambda: metrics.read("p"), name="settler")
    settler.start()
    assert popped.wait(10)
    seen: list[int] = []
    reader = threading.Thread(
        target=lambda: seen.append(metrics.cell("p", "lifecycle", "init").read().calls)
    )
    reader.start()
    reader.join(0.2)  # it waits for the settler (or, wrongly, reads 0 at once)
    release.set()
    reader.join(10)
    settler.join(10)
    assert seen == [1]
