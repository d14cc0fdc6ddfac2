"""Item 4: registering 10,000 components in one batch vs one by one; lookup cost.

Registries are copy-on-write snapshots: a batch is one dict copy and one swap, one-by-one
is a copy per component (quadratic).  Lookup is measured with 1,000 step types registered,
through ``StepRegistry[...]``, ``.get`` and ``in``, against a plain ``dict`` lookup.
"""

from __future__ import annotations

import time
from typing import Any

from _common import add_ratios, emit, goal, parse_args, result, row, timeit_ns

from pipeline_ex.registries import StepRegistry

SIZES = {
    "full": {
        "components": 10_000,
        "batch_repeat": 9,
        "single_repeat": 3,
        "lookup_size": 1_000,
        "number": 100_000,
        "repeat": 15,
    },
    "tiny": {
        "components": 200,
        "batch_repeat": 2,
        "single_repeat": 2,
        "lookup_size": 100,
        "number": 1_000,
        "repeat": 3,
    },
}


class Step:
    def execute(self, step: dict[str, Any], context: Any) -> Any:
        return None


def time_batch(items: dict[str, Any]) -> float:
    registry = StepRegistry()
    started = time.perf_counter_ns()
    registry.register_batch(items, "owner")
    elapsed = time.perf_counter_ns() - started
    assert len(registry) == len(items)
    return float(elapsed)


def time_one_by_one(items: dict[str, Any]) -> float:
    registry = StepRegistry()
    register = registry.register_batch
    started = time.perf_counter_ns()
    for name, component in items.items():
        register({name: component}, "owner")
    elapsed = time.perf_counter_ns() - started
    assert len(registry) == len(items)
    return float(elapsed)


def measure(size: str) -> dict[str, Any]:
    cfg = SIZES[size]
    n = cfg["components"]
    step = Step()
    items = {f"step_{i:05d}": step for i in range(n)}
    time_batch(items)  # warm-up
    batch = [time_batch(items) for _ in range(cfg["batch_repeat"])]
    single = [time_one_by_one(items) for _ in range(cfg["single_repeat"])]

    registry = StepRegistry()
    registry.register_batch({f"step_{i:05d}": step for i in range(cfg["lookup_size"])}, "owner")
    key = f"step_{cfg['lookup_size'] // 2:05d}"
    namespace = {"registry": registry, "plain": dict(registry.snapshot()), "key": key}
    lookups = {
        "StepRegistry[name]": "registry[key]",
        "StepRegistry.get(name)": "registry.get(key)",
        "name in StepRegistry": "key in registry",
        "plain dict[name]": "plain[key]",
    }
    lookup_samples = {
        name: timeit_ns(stmt, namespace, number=cfg["number"], repeat=cfg["repeat"])
        for name, stmt in lookups.items()
    }

    rows = {
        "batch": row(f"register {n:,} step types in one batch", batch, "ms"),
        "single": row(f"register {n:,} step types one by one", single, "ms", baseline=True),
    }
    add_ratios(rows["batch"], {"one by one": rows["single"]})
    lookup_rows = {
        name: row(
            f"lookup with {cfg['lookup_size']:,} registered: {name}",
            values,
            "ns",
            baseline=name.startswith("plain"),
        )
        for name, values in lookup_samples.items()
    }
    for name, r in lookup_rows.items():
        if not name.startswith("plain"):
            add_ratios(r, {"dict": lookup_rows["plain dict[name]"]})
    getitem = lookup_rows["StepRegistry[name]"]["median"]
    get = lookup_rows["StepRegistry.get(name)"]["median"]
    goals = [
        goal(
            f"batch registration of {n:,} faster than one by one",
            rows["batch"]["ratios"]["one by one"],
            1.0,
            "x",
        ),
        goal(
            f"lookup with {cfg['lookup_size']:,} step types < 1 us (design: < 1 ms)",
            max(getitem, get) / 1000,
            1.0,
            "us",
        ),
    ]
    return result(
        "registration",
        4,
        f"Registration of {n:,} components (batch vs one by one) and lookup",
        size,
        [*rows.values(), *lookup_rows.values()],
        goals,
        ["Lookups timed with timeit (statement inlined, GC off); medians of batch means."],
    )


def main() -> None:
    args = parse_args(__doc__ or "")
    emit(measure(args.size), args.out)


if __name__ == "__main__":
    main()
