"""Run every benchmark, print one table, write benchmarks/results/latest.json (and .md).

    .venv/bin/python benchmarks/run.py                 # full sizes (what `make bench` runs)
    .venv/bin/python benchmarks/run.py --size tiny --out /tmp/bench.json   # smoke test

Each benchmark script runs in its own interpreter (``--size``, ``--out``), so one cannot
warm or pollute another (imports, tracemalloc, registries).  Baselines are measured inside
the same script run as what they are compared with; the table shows medians, p99 where it
matters and the ratio of pipeline-ex's median to each baseline's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import machine_info
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

#: Script per issue item, in item order.
BENCHMARKS: list[tuple[str, str]] = [
    ("cold_load", "bench_cold_load.py"),
    ("dispatch", "bench_dispatch.py"),
    ("lifecycle", "bench_lifecycle.py"),
    ("registration", "bench_registration.py"),
    ("cycles", "bench_cycles.py"),
    ("isolation", "bench_isolation.py"),
    ("engine", "bench_engine.py"),
    ("dspy", "bench_dspy.py"),
    ("signing", "bench_signing.py"),
    ("startup", "bench_startup.py"),
]
OMITTED: list[dict[str, Any]] = []
UNIT_LABEL = {"us": "µs", "KiB": "KiB", "count": "", "x": "x"}


def run_benchmark(script: str, size: str, out: Path) -> dict[str, Any]:
    env = dict(os.environ)
    env.setdefault("PIPELINE_EX_CACHE_DIR", str(out.parent / "pipeline-ex-cache"))
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(HERE / script), "--size", size, "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{script} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    data: dict[str, Any] = json.loads(out.read_text())
    data["seconds"] = round(time.perf_counter() - started, 2)
    return data


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return ""
    label = UNIT_LABEL.get(unit, unit)
    if unit == "count":
        return f"{value:g}"
    magnitude = abs(value)
    if magnitude >= 100:
        text = f"{value:,.0f}"
    elif magnitude >= 10:
        text = f"{value:.1f}"
    elif magnitude >= 0.1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {label}".strip()


def ratio(value: float) -> str:
    return f"{value:.2f}x" if value >= 0.1 else f"{value:.2g}x"


def ratios_text(ratios: dict[str, float | None]) -> str:
    return ", ".join(f"{ratio(r)} {name}" for name, r in ratios.items() if r is not None)


def table_rows(report: dict[str, Any]) -> list[list[str] | None]:
    """Rows of the one table; ``None`` separates items."""
    out: list[list[str] | None] = []
    for bench in report["benchmarks"]:
        for i, r in enumerate(bench["rows"]):
            name = r["name"] + (" (baseline)" if r["baseline"] else "")
            out.append(
                [
                    str(bench["item"]) if i == 0 else "",
                    name,
                    fmt(r["median"], r["unit"]),
                    fmt(r["p99"], r["unit"]),
                    ratios_text(r["ratios"]),
                    "",
                ]
            )
        for g in bench["goals"]:
            out.append(
                [
                    "",
                    f"GOAL {g['goal']}",
                    fmt(g["measured"], g["unit"]),
                    "",
                    f"target {fmt(g['target'], g['unit']) or g['target']}",
                    "met" if g["met"] else "MISSED",
                ]
            )
        out.append(None)
    for omitted in report["omitted"]:
        out.append([str(omitted["item"]), omitted["title"], "-", "-", omitted["reason"], "n/a"])
    return out


HEADERS = ["#", "measurement", "median", "p99", "ratio to baselines (same run)", "goal"]


def caption(report: dict[str, Any]) -> str:
    m = report["machine"]
    return (
        f"{m['cpu_model']}, {m['cores']} cores, Python {m['python']}, {m['date']}, "
        f"load avg {', '.join(f'{x:.2f}' for x in m['load_average'])}; size={report['size']}, "
        f"{report['total_seconds']:.0f} s"
    )


def print_table(report: dict[str, Any]) -> None:
    console = Console(width=None if sys.stdout.isatty() else 180)
    table = Table(title="pipeline-ex benchmarks", caption=caption(report), box=box.SIMPLE_HEAD)
    for header in HEADERS:
        justify = "right" if header in ("median", "p99") else "left"
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    for cells in table_rows(report):
        if cells is None:
            table.add_section()
        else:
            table.add_row(*(Text(cell) for cell in cells))
    console.print(table)


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join("---:" if h in ("median", "p99") else "---" for h in HEADERS) + "|",
    ]
    for cells in table_rows(report):
        if cells is not None:
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + f"\n\nMachine: {caption(report)}\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=("tiny", "full"), default="full")
    parser.add_argument("--out", type=Path, default=None, help="JSON path")
    parser.add_argument("--only", nargs="*", default=None, help="benchmark ids to run")
    args = parser.parse_args()
    out = args.out or (RESULTS / ("latest.json" if args.size == "full" else "latest-tiny.json"))
    started = time.perf_counter()
    benchmarks = []
    with tempfile.TemporaryDirectory(prefix="pipeline-ex-bench-") as tmp:
        for bench_id, script in BENCHMARKS:
            if args.only is not None and bench_id not in args.only:
                continue
            print(f"running {script} ({args.size}) ...", file=sys.stderr, flush=True)
            benchmarks.append(run_benchmark(script, args.size, Path(tmp) / f"{bench_id}.json"))
    report = {
        "machine": machine_info(),
        "size": args.size,
        "total_seconds": round(time.perf_counter() - started, 1),
        "benchmarks": benchmarks,
        "omitted": OMITTED,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(report))
    print_table(report)
    notes = [f"[{b['item']}] {note}" for b in benchmarks for note in b["notes"]]
    if notes:
        print("\n".join(notes))
    print(f"written: {out} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
