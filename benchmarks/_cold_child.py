"""One cold measurement, run by ``bench_cold_load.py`` in a fresh interpreter (``python -S``).

Usage: ``_cold_child.py TOOL GROUP``.  Prints one JSON line: nanoseconds spent importing the
tool and discovering + loading every entry point of GROUP, and how many were loaded.
The clock starts before the tool is imported; ``json`` is imported only after it stops.
"""

from __future__ import annotations

import sys
import time
from typing import Any


def _importlib(group: str) -> tuple[int, int, int, dict[str, Any]]:
    t0 = time.perf_counter_ns()
    from importlib.metadata import entry_points

    t1 = time.perf_counter_ns()
    loaded = [ep.load()() for ep in entry_points(group=group)]
    t2 = time.perf_counter_ns()
    return t0, t1, t2, {"count": len(loaded)}


def _stevedore(group: str) -> tuple[int, int, int, dict[str, Any]]:
    t0 = time.perf_counter_ns()
    from stevedore import ExtensionManager

    t1 = time.perf_counter_ns()
    manager: Any = ExtensionManager(group, invoke_on_load=True)
    t2 = time.perf_counter_ns()
    return t0, t1, t2, {"count": len(manager.extensions)}


def _pluggy(group: str) -> tuple[int, int, int, dict[str, Any]]:
    t0 = time.perf_counter_ns()
    import pluggy

    t1 = time.perf_counter_ns()
    manager = pluggy.PluginManager("bench")
    count = manager.load_setuptools_entrypoints(group)
    t2 = time.perf_counter_ns()
    return t0, t1, t2, {"count": count}


def _pipeline_ex(group: str) -> tuple[int, int, int, dict[str, Any]]:
    t0 = time.perf_counter_ns()
    from pipeline_ex.configuration import ConfigurationSystem
    from pipeline_ex.plugins import PluginManager
    from pipeline_ex.registries import ProviderRegistry, StepRegistry

    t1 = time.perf_counter_ns()
    steps = StepRegistry()
    manager = PluginManager(steps, ProviderRegistry(), ConfigurationSystem())
    ta = time.perf_counter_ns()
    index = manager.loader.entry_points
    names = index.names()
    tb = time.perf_counter_ns()
    config = {"plugins": {name: {"module": name} for name in names}}
    report = manager.load_all(config)
    t2 = time.perf_counter_ns()
    if not report.ok:
        raise SystemExit(f"pipeline-ex failed to load: {dict(report.failed)}")
    # After the clock stopped: the same load by a second manager in this process, the
    # plugin modules already imported: the host's own work, without the cold start
    again = PluginManager(StepRegistry(), ProviderRegistry(), ConfigurationSystem())
    t3 = time.perf_counter_ns()
    again.load_all(config)
    warm_ns = time.perf_counter_ns() - t3
    return (
        t0,
        t1,
        t2,
        {
            "count": len(report.loaded),
            "rescanned": index.rescanned,
            "step_types": len(steps),
            "setup_ns": ta - t1,
            "discover_ns": tb - ta,
            "load_all_ns": t2 - tb,
            "warm_load_all_ns": warm_ns,
        },
    )


def _plugins_only(group: str) -> tuple[int, int, int, dict[str, Any]]:
    """What the plugins themselves cost, with no host around them: import each module, make
    the object, call ``init``, ``get_metadata`` and ``get_step_types`` once each.  The
    modules are known by name (``bench_plugin_NNN``, from ``BENCH_PLUGINS``): no discovery."""
    import os

    t0 = time.perf_counter_ns()
    import importlib

    t1 = time.perf_counter_ns()
    loaded = []
    for i in range(int(os.environ["BENCH_PLUGINS"])):
        plugin = importlib.import_module(f"bench_plugin_{i:03d}").BenchPlugin()
        state = plugin.init({})
        loaded.append((plugin.get_metadata(state), plugin.get_step_types(state)))
    t2 = time.perf_counter_ns()
    return t0, t1, t2, {"count": len(loaded)}


TOOLS = {
    "plugins-only": _plugins_only,  # "plugins only" in the report
    "importlib": _importlib,
    "stevedore": _stevedore,
    "pluggy": _pluggy,
    "pipeline-ex": _pipeline_ex,
}


def main() -> None:
    tool, group = sys.argv[1], sys.argv[2]
    t0, t1, t2, info = TOOLS[tool](group)
    import json

    info.update(import_ns=t1 - t0, load_ns=t2 - t1, total_ns=t2 - t0)
    print(json.dumps(info))


if __name__ == "__main__":
    main()
