"""Shared helpers for the benchmark scripts: timing, statistics, result rows, CLI, output.

Every benchmark script is runnable on its own::

    .venv/bin/python benchmarks/bench_dispatch.py --size tiny --out /tmp/dispatch.json

and prints (or writes) one JSON result of the shape built by ``result()``.  ``run.py`` runs
them all, each in its own interpreter, and prints one table.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import sys
import time
import timeit
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SIZES = ("tiny", "full")

Row = dict[str, Any]
Goal = dict[str, Any]

NS_PER = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--size", choices=SIZES, default="full")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here")
    return parser.parse_args()


def emit(data: dict[str, Any], out: Path | None) -> None:
    text = json.dumps(data, indent=2, sort_keys=False)
    if out is None:
        print(text)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")


# -- statistics -------------------------------------------------------------------------------
def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100): the value at or below which q% fall."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])


def per_call_ns(fn: Callable[[], Any], *, number: int, repeat: int, warmup: int = 1) -> list[float]:
    """Time ``repeat`` batches of ``number`` calls; returns ns per call for each batch.

    Batching keeps the clock's own cost (~50 ns) out of sub-microsecond figures; the GC is
    disabled during a batch, as ``timeit`` does, and collected between batches.
    """
    for _ in range(warmup):
        for _ in range(number):
            fn()
    samples: list[float] = []
    gc_was_enabled = gc.isenabled()
    try:
        for _ in range(repeat):
            gc.collect()
            gc.disable()
            started = time.perf_counter_ns()
            for _ in range(number):
                fn()
            elapsed = time.perf_counter_ns() - started
            gc.enable()
            samples.append(elapsed / number)
    finally:
        if gc_was_enabled:
            gc.enable()
    return samples


def timeit_ns(
    stmt: str, namespace: dict[str, Any], *, number: int, repeat: int, warmup: int = 1
) -> list[float]:
    """``timeit`` of a statement (no per-call Python wrapper); ns per execution per batch."""
    timer = timeit.Timer(stmt, globals=namespace)
    timer.timeit(number * warmup)
    return [t * 1e9 / number for t in timer.repeat(repeat=repeat, number=number)]


def each_call_ns(fn: Callable[[], Any], *, repeat: int, warmup: int = 5) -> list[float]:
    """Time every call on its own (for p99 of millisecond-scale operations)."""
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    for _ in range(repeat):
        started = time.perf_counter_ns()
        fn()
        samples.append(float(time.perf_counter_ns() - started))
    return samples


# -- rows and goals ---------------------------------------------------------------------------
def row(
    name: str,
    samples_ns: Sequence[float],
    unit: str,
    *,
    p99: bool = False,
    baseline: bool = False,
    note: str | None = None,
) -> Row:
    """A result row: median (and p99) of ``samples_ns`` expressed in ``unit``."""
    scale = NS_PER[unit]
    return {
        "name": name,
        "unit": unit,
        "median": median(samples_ns) / scale,
        "p99": percentile(samples_ns, 99) / scale if p99 else None,
        "n": len(samples_ns),
        "baseline": baseline,
        "ratios": {},
        "note": note,
    }


def value_row(name: str, value: float, unit: str, *, note: str | None = None) -> Row:
    """A row for a single figure that is not a timing distribution (bytes, counts)."""
    return {
        "name": name,
        "unit": unit,
        "median": float(value),
        "p99": None,
        "n": 1,
        "baseline": False,
        "ratios": {},
        "note": note,
    }


def add_ratios(target: Row, baselines: Mapping[str, Row]) -> None:
    """``target.median / baseline.median`` for each baseline, keyed by a short label."""
    for label, base in baselines.items():
        if base["unit"] != target["unit"]:
            raise ValueError(f"unit mismatch: {target['name']} vs {base['name']}")
        target["ratios"][label] = target["median"] / base["median"] if base["median"] else None


def goal(text: str, measured: float, target: float, unit: str, *, met: bool | None = None) -> Goal:
    """A goal ``measured <= target`` (unless ``met`` is given explicitly)."""
    return {
        "goal": text,
        "measured": measured,
        "target": target,
        "unit": unit,
        "met": bool(measured <= target) if met is None else met,
    }


def result(
    bench_id: str,
    item: int,
    title: str,
    size: str,
    rows: list[Row],
    goals: list[Goal],
    notes: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": bench_id,
        "item": item,
        "title": title,
        "size": size,
        "rows": rows,
        "goals": goals,
        "notes": notes or [],
        "extra": extra or {},
    }


# -- machine ------------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    try:
        load = list(os.getloadavg())
    except OSError:
        load = []
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average": load,
        "executable": sys.executable,
    }
