"""Item 3: load, init, register and unload of one in-process plugin: p50 and p99.

The plugin contributes 10 step types, 5 providers and 2 schema extensions.  One sample is
``PluginManager.load_plugin`` (resolve, contract check, init, metadata, components,
dependency check, registration in three registries, all through the guard) followed by
``unload_plugin`` (deregistration, terminate).  Reference, same process: pluggy registering
and unregistering one plugin object with the same number (17) of hook implementations.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pluggy
from _common import add_ratios, each_call_ns, emit, goal, parse_args, result, row

from pipeline_ex.configuration import ConfigurationSystem
from pipeline_ex.plugins import Plugin, PluginManager
from pipeline_ex.registries import ProviderRegistry, StepRegistry

SIZES = {"full": {"repeat": 1000, "warmup": 50}, "tiny": {"repeat": 30, "warmup": 5}}
NAME = "lifecycle_bench"


class Step:
    def execute(self, step: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"success": True}


class Provider:
    def query(self, prompt: str, options: dict[str, Any]) -> dict[str, Any]:
        return {"text": prompt, "success": True, "cost": 0.0}


def extension(field: str) -> dict[str, Any]:
    return {"properties": {"workflow": {"properties": {field: {"type": "string"}}}}}


class LifecyclePlugin(Plugin):
    def init(self, config: Mapping[str, Any]) -> Any:
        return {"config": dict(config)}

    def get_metadata(self, state: Any) -> Mapping[str, Any]:
        return {"name": NAME, "version": "1.0.0", "api_version": 1}

    def get_step_types(self, state: Any) -> list[tuple[str, Any]]:
        return [(f"bench_step_{i}", Step) for i in range(10)]

    def get_providers(self, state: Any) -> list[tuple[str, Any, list[str]]]:
        return [(f"bench_provider_{i}", Provider, ["text", f"cap_{i}"]) for i in range(5)]

    def get_schema_extensions(self, state: Any) -> list[tuple[str, Mapping[str, Any]]]:
        return [("bench_ext_a", extension("bench_a")), ("bench_ext_b", extension("bench_b"))]


hookspec = pluggy.HookspecMarker("lifecycle")
hookimpl = pluggy.HookimplMarker("lifecycle")
HOOKS = [f"hook_{i}" for i in range(17)]


def _spec(name: str) -> Any:
    def spec(self: Any, arg: Any) -> Any:
        """A hook."""

    spec.__name__ = name
    return hookspec(spec)


def _impl(name: str) -> Any:
    def impl(self: Any, arg: Any) -> Any:
        return arg

    impl.__name__ = name
    return hookimpl(impl)


PluggySpec = type("PluggySpec", (), {name: _spec(name) for name in HOOKS})
PluggyPlugin = type("PluggyPlugin", (), {name: _impl(name) for name in HOOKS})


def measure(size: str) -> dict[str, Any]:
    cfg = SIZES[size]
    steps, providers, configuration = StepRegistry(), ProviderRegistry(), ConfigurationSystem()
    manager = PluginManager(steps, providers, configuration)
    load_ns: list[float] = []
    unload_ns: list[float] = []

    def cycle() -> None:
        t0 = time.perf_counter_ns()
        manager.load_plugin(NAME, LifecyclePlugin, {"k": "v"})
        t1 = time.perf_counter_ns()
        manager.unload_plugin(NAME)
        t2 = time.perf_counter_ns()
        load_ns.append(t1 - t0)
        unload_ns.append(t2 - t1)

    # Sanity: the plugin really registers what it says.
    manager.load_plugin(NAME, LifecyclePlugin, {})
    assert len(steps) == 10 and len(providers) == 5 and len(configuration) == 2
    manager.unload_plugin(NAME)
    assert len(steps) == 0 and len(providers) == 0 and len(configuration) == 0

    cycles = each_call_ns(cycle, repeat=cfg["repeat"], warmup=cfg["warmup"])
    load_ns, unload_ns = load_ns[cfg["warmup"] :], unload_ns[cfg["warmup"] :]

    pm = pluggy.PluginManager("lifecycle")
    pm.add_hookspecs(PluggySpec)

    def pluggy_cycle() -> None:
        plugin = PluggyPlugin()
        pm.register(plugin, name="p")
        pm.unregister(plugin)

    pluggy_ns = each_call_ns(pluggy_cycle, repeat=cfg["repeat"], warmup=cfg["warmup"])

    rows = {
        "cycle": row("pipeline-ex: load + init + register + unload", cycles, "ms", p99=True),
        "load": row("pipeline-ex: load (resolve, init, register)", load_ns, "ms", p99=True),
        "unload": row("pipeline-ex: unload (deregister, terminate)", unload_ns, "ms", p99=True),
        "pluggy": row(
            "pluggy: register + unregister (17 hookimpls)", pluggy_ns, "ms", p99=True, baseline=True
        ),
    }
    add_ratios(rows["cycle"], {"pluggy": rows["pluggy"]})
    goals = [
        goal("load+unload p99 < 5 ms (seed: < 100 ms)", rows["cycle"]["p99"], 5.0, "ms"),
    ]
    return result(
        "lifecycle",
        3,
        "Load + init + register + unload of one plugin (10 steps, 5 providers, 2 schemas)",
        size,
        list(rows.values()),
        goals,
        [f"{cfg['repeat']} cycles after {cfg['warmup']} warm-up cycles; each timed on its own."],
    )


def main() -> None:
    args = parse_args(__doc__ or "")
    emit(measure(args.size), args.out)


if __name__ == "__main__":
    main()
