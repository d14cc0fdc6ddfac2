"""Item 12: start-up, as whole processes, beside a bare interpreter.

Each command runs in a fresh process, timed from spawn to exit: ``python -c pass`` and
``python -c "import pluggy"`` (baselines), ``import pipeline_ex``, ``from pipeline_ex.plugins
import Plugin`` (what a plugin module pays), ``pipeline-ex --version`` and ``pipeline-ex
steps`` (the built-in plugins loaded).  Bytecode is compiled by the warm-up runs, as an
installed package has it: ``PYTHONDONTWRITEBYTECODE`` is left out of the children's
environment, or every run would compile pipeline-ex's sources again.
Targets from the speed issue, as ratios to ``python -c pass`` in the same run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from _common import add_ratios, each_call_ns, emit, goal, parse_args, result, row

SIZES = {"full": {"repeat": 20, "warmup": 3}, "tiny": {"repeat": 2, "warmup": 1}}
SCRIPT = Path(sys.executable).parent / "pipeline-ex"
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _process(argv: list[str]) -> None:
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)


def measure(size: str) -> dict[str, Any]:
    cfg = SIZES[size]
    py = sys.executable
    commands = {
        "bare": ("python -c pass (baseline)", [py, "-c", "pass"]),
        "pluggy": ('python -c "import pluggy" (baseline)', [py, "-c", "import pluggy"]),
        "import": ("import pipeline_ex", [py, "-c", "import pipeline_ex"]),
        "plugin": (
            "from pipeline_ex.plugins import Plugin",
            [py, "-c", "from pipeline_ex.plugins import Plugin"],
        ),
        "version": ("pipeline-ex --version", [str(SCRIPT), "--version"]),
        "steps": ("pipeline-ex steps", [str(SCRIPT), "steps"]),
    }
    samples = {
        key: each_call_ns(
            lambda argv=argv: _process(argv), repeat=cfg["repeat"], warmup=cfg["warmup"]
        )
        for key, (_, argv) in commands.items()
    }
    rows = {
        key: row(label, samples[key], "ms", baseline=key in ("bare", "pluggy"))
        for key, (label, _) in commands.items()
    }
    for key in ("import", "plugin", "version", "steps"):
        add_ratios(rows[key], {"python -c pass": rows["bare"], "pluggy": rows["pluggy"]})
    bare = rows["bare"]["median"]
    goals = [
        goal(
            "pipeline-ex --version within 5x python -c pass",
            rows["version"]["median"] / bare,
            5.0,
            "x",
        ),
        goal(
            "pipeline-ex steps within 12x python -c pass", rows["steps"]["median"] / bare, 12.0, "x"
        ),
        goal(
            "import pipeline_ex within 3x python -c pass", rows["import"]["median"] / bare, 3.0, "x"
        ),
    ]
    return result(
        "startup", 12, "Start-up as whole processes", size, list(rows.values()), goals, []
    )


def main() -> None:
    args = parse_args(__doc__ or "")
    emit(measure(args.size), args.out)


if __name__ == "__main__":
    main()
