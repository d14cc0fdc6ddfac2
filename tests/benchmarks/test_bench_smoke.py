"""Smoke test: every benchmark script still runs on tiny sizes and reports the agreed shape.

The benchmarks themselves run with ``make bench``, not here; this only runs
``benchmarks/run.py --size tiny`` (a few seconds) and checks the JSON it writes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "benchmarks" / "run.py"
EXPECTED = {
    "cold_load": 1,
    "dispatch": 2,
    "lifecycle": 3,
    "registration": 4,
    "cycles": 5,
    "isolation": 6,
    "engine": 7,
    "dspy": 10,
    "signing": 11,
    "startup": 12,
}
ROW_KEYS = {"name", "unit", "median", "p99", "n", "baseline", "ratios", "note"}
GOAL_KEYS = {"goal", "measured", "target", "unit", "met"}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@pytest.mark.slow  # runs every benchmark item in a subprocess
@pytest.mark.timeout(600)  # ~15 s on a busy machine; the bound is not what is tested
def test_benchmarks_run_on_tiny_sizes(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {**os.environ, "PIPELINE_EX_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, str(RUN), "--size", "tiny", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "pipeline-ex benchmarks" in proc.stdout  # the one table was printed
    report = json.loads(out.read_text())
    assert out.with_suffix(".md").is_file()

    machine = report["machine"]
    assert machine["cpu_model"] and machine["cores"] >= 1
    assert machine["python"].count(".") == 2 and machine["date"]
    assert report["size"] == "tiny"
    assert report["omitted"] == []

    by_id = {b["id"]: b for b in report["benchmarks"]}
    assert set(by_id) == set(EXPECTED)
    for bench_id, item in EXPECTED.items():
        bench = by_id[bench_id]
        assert bench["item"] == item and bench["size"] == "tiny" and bench["title"]
        assert bench["rows"] and bench["goals"], bench_id
        for row in bench["rows"]:
            assert set(row) == ROW_KEYS, (bench_id, row)
            assert _number(row["median"]), (bench_id, row)
            # a figure derived by subtraction (run - validation - provider) may dip below
            # zero on tiny sizes under load; every measured figure may not
            assert row["median"] >= 0 or "overhead" in row["name"], (bench_id, row)
            assert row["p99"] is None or row["p99"] >= row["median"] * 0.999, (bench_id, row)
            assert all(r is None or _number(r) for r in row["ratios"].values())
        for goal in bench["goals"]:
            assert set(goal) == GOAL_KEYS and isinstance(goal["met"], bool), (bench_id, goal)
            assert _number(goal["measured"]) and _number(goal["target"])

    # Every pipeline-ex figure that has a baseline in the same run carries a ratio to it.
    cold = by_id["cold_load"]["rows"]
    px = [r for r in cold if r["name"].endswith("pipeline-ex")]
    assert px and all(
        set(r["ratios"]) == {"stevedore", "importlib", "pluggy", "plugins only"} for r in px
    )
    assert any("host overhead per plugin" in r["name"] for r in cold)
    dispatch = by_id["dispatch"]["rows"][0]
    assert set(dispatch["ratios"]) == {"plain call", "pluggy"}
    # metrics on and off are measured in the same run, each with its goal
    off = {r["name"]: r for r in by_id["dispatch"]["rows"]}[
        "pipeline-ex: lookup + guarded dispatch, metrics off"
    ]
    assert set(off["ratios"]) == {"plain call", "pluggy"}
    assert [g["goal"] for g in by_id["dispatch"]["goals"]] == [
        "dispatch (lookup + guard + call) <= 0.25x pluggy hook call",
        "dispatch with metrics off <= 0.25x pluggy hook call",
    ]
    # The isolated round trip is judged per explicit CPU placement, each beside the
    # ping-pong measured in the same placement.
    isolation = {r["name"]: r for r in by_id["isolation"]["rows"]}
    placed = ["all on one CPU"] + (
        ["peer on the other CPU"] if len(os.sched_getaffinity(0)) > 1 else []
    )
    for label in placed:
        call = isolation[f"isolated provider query round trip, {label}"]
        assert set(call["ratios"]) == {"pipe"}
        assert isolation[f"1-byte pipe ping-pong, {label}, between the isolated calls"]["baseline"]
    assert [g["goal"] for g in by_id["isolation"]["goals"]][-len(placed) :] == [
        f"round trip within 1.5x the pipe floor, {label}" for label in placed
    ]
    # Correctness checks the cycle benchmark makes even on tiny sizes.
    assert by_id["cycles"]["extra"]["leftover_modules"] == []
