"""Item 2: dispatch of one step, against a plain function call and a pluggy hook.

pipeline-ex: the engine's path, ``StepRegistry.resolve(kind)`` (one dict lookup giving the
step and the guarded caller the plugin manager built once at registration with
``Guard.bind``: the metrics seam's counters keyed by plugin, kind and component, latency
bucket, calls in flight for the lease) then the call.  The same with ``metrics=False``
(counted, not timed) shows what the metrics cost, measured in the same run.  Baselines, measured
in the same process: a plain function call, and a pluggy hook with one implementation called
as ``pm.hook.execute(step=..., context=...)``.  Every variant runs the same trivial body, so
the figures are the machinery's cost.  Timed with ``timeit`` (statements inlined, GC off).
"""

from __future__ import annotations

from typing import Any

import pluggy
from _common import add_ratios, emit, goal, parse_args, result, row, timeit_ns

from pipeline_ex.configuration import ConfigurationSystem
from pipeline_ex.monitoring.metrics import Metrics
from pipeline_ex.plugins import Plugin, PluginManager
from pipeline_ex.plugins.guard import Guard
from pipeline_ex.registries import ProviderRegistry, StepRegistry

SIZES = {"full": {"number": 20_000, "repeat": 25}, "tiny": {"number": 200, "repeat": 3}}

RESULT = {"success": True, "text": "ok"}


def execute(step: dict[str, Any], context: Any) -> dict[str, Any]:
    return RESULT


class NoopStep:
    def execute(self, step: dict[str, Any], context: Any) -> dict[str, Any]:
        return RESULT


class DispatchPlugin(Plugin):
    def get_metadata(self, state: Any) -> dict[str, Any]:
        return {"name": "dispatch_bench", "version": "1.0", "api_version": 1}

    def get_step_types(self, state: Any) -> list[tuple[str, Any]]:
        return [("noop", NoopStep())]


hookspec = pluggy.HookspecMarker("bench")
hookimpl = pluggy.HookimplMarker("bench")


class Spec:
    @hookspec
    def execute(self, step: dict[str, Any], context: Any) -> Any:
        """Run a step."""


class Impl:
    @hookimpl
    def execute(self, step: dict[str, Any], context: Any) -> Any:
        return RESULT


def measure(size: str) -> dict[str, Any]:
    cfg = SIZES[size]
    steps = StepRegistry()
    manager = PluginManager(steps, ProviderRegistry(), ConfigurationSystem())
    manager.load_plugin("dispatch_bench", DispatchPlugin)
    steps_off = StepRegistry()
    manager_off = PluginManager(
        steps_off,
        ProviderRegistry(),
        ConfigurationSystem(),
        guard=Guard(metrics=Metrics(enabled=False)),
    )
    manager_off.load_plugin("dispatch_bench", DispatchPlugin)
    pm = pluggy.PluginManager("bench")
    pm.add_hookspecs(Spec)
    pm.register(Impl())
    namespace: dict[str, Any] = {
        "steps": steps,
        "steps_off": steps_off,
        "step": {"name": "s0", "type": "noop"},
        "context": object(),
        "execute": execute,
        "hook": pm.hook,
    }
    assert pm.hook.execute(step=namespace["step"], context=None) == [RESULT]
    statements = {
        "pipeline-ex: lookup + guarded dispatch": (
            "handler, call = steps.resolve('noop'); call(step, context)"
        ),
        "pipeline-ex: lookup + guarded dispatch, metrics off": (
            "handler, call = steps_off.resolve('noop'); call(step, context)"
        ),
        "pipeline-ex: lookup + execute, no guard": "steps['noop'].execute(step, context)",
        "plain function call": "execute(step, context)",
        "pluggy hook, one impl": "hook.execute(step=step, context=context)",
    }
    samples: dict[str, list[float]] = {name: [] for name in statements}
    # Interleave the variants so that a noisy neighbour hurts them all alike.
    rounds = 5 if size == "full" else 1
    for _ in range(rounds):
        for name, stmt in statements.items():
            samples[name] += timeit_ns(
                stmt, namespace, number=cfg["number"], repeat=cfg["repeat"] // rounds or 1
            )
    rows = {
        name: row(name, values, "ns", p99=True, baseline=not name.startswith("pipeline-ex"))
        for name, values in samples.items()
    }
    baselines = {"plain call": rows["plain function call"], "pluggy": rows["pluggy hook, one impl"]}
    add_ratios(rows["pipeline-ex: lookup + guarded dispatch"], baselines)
    add_ratios(rows["pipeline-ex: lookup + guarded dispatch, metrics off"], baselines)
    add_ratios(rows["pipeline-ex: lookup + execute, no guard"], baselines)
    dispatch = rows["pipeline-ex: lookup + guarded dispatch"]
    metrics_off = rows["pipeline-ex: lookup + guarded dispatch, metrics off"]
    plain = rows["plain function call"]["median"]
    pluggy_ns = rows["pluggy hook, one impl"]["median"]
    overhead_ratio = (dispatch["median"] - plain) / (pluggy_ns - plain)
    metrics_cost = (dispatch["median"] - metrics_off["median"]) / pluggy_ns
    goals = [
        goal(
            "dispatch (lookup + guard + call) <= 0.25x pluggy hook call",
            dispatch["ratios"]["pluggy"],
            0.25,
            "x",
        ),
        goal(
            "dispatch with metrics off <= 0.25x pluggy hook call",
            metrics_off["ratios"]["pluggy"],
            0.25,
            "x",
        ),
    ]
    cell = manager.guard.metrics.cell("dispatch_bench", "step_type", "noop")
    before = cell.read().calls
    steps.resolve("noop")[1]({}, None)
    stats = {"calls": cell.read().calls}
    assert stats["calls"] == before + 1  # the engine path is counted
    notes = [
        "p99 here is over batch means (each batch = "
        f"{cfg['number']} calls), not single calls: a single call is near the clock's "
        "resolution.",
        "The engine's path uses the wrapper Guard.bind built at registration.",
        f"Overhead above a plain call: pipeline-ex {dispatch['median'] - plain:.0f} ns, "
        f"pluggy {pluggy_ns - plain:.0f} ns (ratio of overheads {overhead_ratio:.2f}x).",
        f"Metrics on vs off: {dispatch['median'] - metrics_off['median']:.0f} ns per dispatch "
        f"({metrics_cost:.3f}x a pluggy call): two clock reads, the time sum and the latency "
        "bucket; off still counts calls, errors and calls in flight.",
    ]
    return result(
        "dispatch",
        2,
        "Dispatch of one step: lookup + guarded call vs plain call vs pluggy hook",
        size,
        list(rows.values()),
        goals,
        notes,
        extra={
            "overhead_ratio_vs_pluggy": overhead_ratio,
            "metrics_cost_vs_pluggy": metrics_cost,
            "guard_calls": stats["calls"],
        },
    )


def main() -> None:
    args = parse_args(__doc__ or "")
    emit(measure(args.size), args.out)


if __name__ == "__main__":
    main()
