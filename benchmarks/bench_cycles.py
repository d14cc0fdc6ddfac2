"""Item 5: 1,000 load/unload cycles of a directory plugin: memory growth and leftovers.

The plugin is a folder with ``plugin.yaml`` and a module (3 step types, 2 providers, 1 schema
extension); pipeline-ex imports it under a private package name and must drop those modules
from ``sys.modules`` on unload.  After warm-up cycles, ``tracemalloc`` takes a baseline; after
N more cycles and a ``gc.collect()`` the traced growth is reported with its top sources.
Leftovers after the last unload: registry entries owned by the plugin (steps, providers,
schema extensions, plugin records) and modules under the plugin's private package.
Time per cycle comes from a separate run without tracemalloc.
"""

from __future__ import annotations

import gc
import sys
import tempfile
import textwrap
import tracemalloc
from pathlib import Path
from typing import Any

from _common import each_call_ns, emit, goal, parse_args, result, row, value_row

from pipeline_ex.configuration import ConfigurationSystem
from pipeline_ex.plugins import PluginManager
from pipeline_ex.plugins.loader import PRIVATE_PACKAGE, private_package_name
from pipeline_ex.registries import ProviderRegistry, StepRegistry

SIZES = {
    "full": {"cycles": 1000, "warmup": 30, "timed": 200},
    "tiny": {"cycles": 20, "warmup": 3, "timed": 10},
}
NAME = "cycle_bench"

MANIFEST = f"""name: {NAME}
version: "1.0.0"
module: cycle_plugin:CyclePlugin
description: benchmark plugin loaded and unloaded many times
"""

MODULE = """
from pipeline_ex.plugins import Plugin
from . import helpers


class Step:
    def execute(self, step, context):
        return {"success": True, "text": helpers.shout(step.get("text", ""))}


class Provider:
    def query(self, prompt, options):
        return {"text": prompt, "success": True, "cost": 0.0}


class CyclePlugin(Plugin):
    def get_metadata(self, state):
        return {"name": "cycle_bench", "version": "1.0.0", "api_version": 1}

    def get_step_types(self, state):
        return [("cycle_step_%d" % i, Step) for i in range(3)]

    def get_providers(self, state):
        return [("cycle_provider_%d" % i, Provider, ["text"]) for i in range(2)]

    def get_schema_extensions(self, state):
        return [("cycle_ext", {"properties": {"workflow": {"properties": {
            "cycle_field": {"type": "string"}}}}})]
"""


def make_plugin(root: Path) -> Path:
    directory = root / "cycle_plugin_dir"
    directory.mkdir()
    (directory / "plugin.yaml").write_text(MANIFEST)
    (directory / "cycle_plugin.py").write_text(textwrap.dedent(MODULE))
    (directory / "helpers.py").write_text("def shout(text):\n    return text.upper()\n")
    return directory


def measure(size: str) -> dict[str, Any]:
    cfg = SIZES[size]
    with tempfile.TemporaryDirectory(prefix="pipeline-ex-bench-cycles-") as tmp:
        directory = make_plugin(Path(tmp))
        steps, providers, configuration = StepRegistry(), ProviderRegistry(), ConfigurationSystem()
        manager = PluginManager(steps, providers, configuration)
        package = private_package_name(NAME, directory)

        def cycle() -> None:
            manager.load_plugin(NAME, path=directory)
            manager.unload_plugin(NAME)

        manager.load_plugin(NAME, path=directory)
        loaded_modules = sorted(n for n in sys.modules if n.startswith(package))
        assert len(steps) == 3 and len(providers) == 2 and len(configuration) == 1
        manager.unload_plugin(NAME)

        for _ in range(cfg["warmup"]):
            cycle()
        gc.collect()
        tracemalloc.start(1)
        try:
            gc.collect()
            before = tracemalloc.take_snapshot()
            base_current, _ = tracemalloc.get_traced_memory()
            half = cfg["cycles"] // 2
            for _ in range(half):
                cycle()
            gc.collect()
            half_current, _ = tracemalloc.get_traced_memory()
            for _ in range(cfg["cycles"] - half):
                cycle()
            gc.collect()
            after_current, peak = tracemalloc.get_traced_memory()
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        growth = after_current - base_current
        second_half = after_current - half_current
        top = [
            f"{stat.size_diff:+,} B in {stat.count_diff:+} blocks at "
            f"{stat.traceback[0].filename.rsplit('/', 3)[-1]}:{stat.traceback[0].lineno}"
            for stat in after.compare_to(before, "lineno")[:3]
        ]

        leftovers = {
            "step_types": len(steps.owned_by(NAME)),
            "providers": len(providers.owned_by(NAME)),
            "schema_extensions": len(configuration.owned_by(NAME)),
            "plugin_records": int(NAME in manager.registry),
        }
        leftover_modules = sorted(n for n in sys.modules if n.startswith(package))
        timed = each_call_ns(cycle, repeat=cfg["timed"], warmup=2)

    leftover_entries = sum(leftovers.values())
    rows = [
        value_row(
            f"memory growth over {cfg['cycles']:,} load/unload cycles (tracemalloc)",
            growth / 1024,
            "KiB",
            note=f"traced peak {peak / 1024:,.0f} KiB",
        ),
        value_row(
            f"memory growth over the last {cfg['cycles'] - cfg['cycles'] // 2:,} cycles only",
            second_half / 1024,
            "KiB",
            note="a leak grows here too; a one-off cache does not",
        ),
        value_row("leftover registry entries after the last unload", leftover_entries, "count"),
        value_row(
            "leftover plugin modules in sys.modules after the last unload",
            len(leftover_modules),
            "count",
            note=f"{len(loaded_modules)} while loaded",
        ),
        row("directory plugin load + unload cycle", timed, "ms", p99=True),
    ]
    goals = [
        goal(f"memory growth over {cfg['cycles']:,} cycles < 1 MB", growth / 1e6, 1.0, "MB"),
        goal("no leftover registry entries", leftover_entries, 0, "count"),
        goal("no leftover modules in sys.modules", len(leftover_modules), 0, "count"),
    ]
    notes = [
        "Top tracemalloc differences: " + ("; ".join(top) or "none"),
        f"Modules while loaded: {', '.join(loaded_modules)}; the shared root "
        f"{PRIVATE_PACKAGE!r} stays by design.",
    ]
    return result(
        "cycles",
        5,
        f"{cfg['cycles']:,} load/unload cycles of a directory plugin",
        size,
        rows,
        goals,
        notes,
        extra={
            "leftovers": leftovers,
            "leftover_modules": leftover_modules,
            "growth_bytes": growth,
            "second_half_growth_bytes": second_half,
        },
    )


def main() -> None:
    args = parse_args(__doc__ or "")
    emit(measure(args.size), args.out)


if __name__ == "__main__":
    main()
