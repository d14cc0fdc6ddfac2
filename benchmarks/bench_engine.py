"""Item 7: engine overhead per step on a 1,000-step mock workflow, and validation time.

``Runtime().run(document)`` in mock mode over N ``claude`` steps with a static prompt.  The
mock provider's own time is measured by calling ``mock_claude.query`` directly with the same
prompt and options; the engine's overhead per step is
``(run - validate) / N - provider``, with validation (``Runtime().validate``, which ``run``
also performs) reported on its own.  Baseline: a hand-written loop that builds the same
prompt string and calls the same provider N times.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

from _common import add_ratios, emit, goal, median, parse_args, per_call_ns, result, row

SIZES = {"full": {"steps": 1000, "repeat": 7}, "tiny": {"steps": 20, "repeat": 2}}
CONTENT = "Summarise the benchmark step."


def workflow(steps: int) -> dict[str, Any]:
    return {
        "workflow": {
            "name": "engine_bench",
            "steps": [
                {
                    "name": f"s{i}",
                    "type": "claude",
                    "prompt": [{"type": "static", "content": CONTENT}],
                }
                for i in range(steps)
            ],
        }
    }


def measure(size: str) -> dict[str, Any]:
    cfg = SIZES[size]
    n = cfg["steps"]
    os.environ.setdefault("PIPELINE_EX_CACHE_DIR", tempfile.mkdtemp(prefix="pipeline-ex-bench-"))
    from pipeline_ex import Runtime

    document = workflow(n)
    with (
        tempfile.TemporaryDirectory(prefix="pipeline-ex-bench-engine-") as out,
        Runtime(mode="mock") as runtime,
    ):
        provider = runtime.providers.get("mock_claude")
        # Warm-up (compiled schema, caches), and a check that every step really ran.
        results = runtime.run(document, output_dir=out)
        assert len(results) == n and all(r["success"] for r in results.values())
        validate_ns: list[float] = []
        run_ns: list[float] = []
        loop_ns: list[float] = []

        def hand_written() -> None:
            answers = {}
            for step in document["workflow"]["steps"]:
                prompt = "\n\n".join(part["content"] for part in step["prompt"])
                answers[step["name"]] = provider.query(prompt, {"step_name": step["name"]})
            assert len(answers) == n

        for _ in range(cfg["repeat"]):
            t0 = time.perf_counter_ns()
            runtime.validate(document)
            t1 = time.perf_counter_ns()
            runtime.run(document, output_dir=out)
            t2 = time.perf_counter_ns()
            hand_written()
            t3 = time.perf_counter_ns()
            validate_ns.append(t1 - t0)
            run_ns.append(t2 - t1)
            loop_ns.append(t3 - t2)
        provider_ns = per_call_ns(
            lambda: provider.query(CONTENT, {"step_name": "s0"}),
            number=max(n, 100),
            repeat=cfg["repeat"] * 3,
        )
    provider_per_call = median(provider_ns)
    overhead = [(r - v) / n - provider_per_call for r, v in zip(run_ns, validate_ns, strict=True)]
    per_step_run = [r / n for r in run_ns]
    per_step_loop = [loop / n for loop in loop_ns]
    rows = {
        "overhead": row("engine overhead per step (run - validation - provider)", overhead, "us"),
        "run": row("whole run per step (incl. validation and provider)", per_step_run, "us"),
        "loop": row(
            "hand-written loop per step (prompt + provider call)",
            per_step_loop,
            "us",
            baseline=True,
        ),
        "provider": row("mock provider query per call", provider_ns, "us", baseline=True),
        "validate": row(f"validation of the {n:,}-step document", validate_ns, "ms"),
        "run_total": row(f"whole run of the {n:,}-step document", run_ns, "ms"),
    }
    add_ratios(rows["run"], {"hand-written loop": rows["loop"]})
    whole = [r / n - provider_per_call for r in run_ns]
    goals = [
        goal(
            "engine time per step minus provider < 50 us (whole run, validation included)",
            median(whole) / 1e3,
            50.0,
            "us",
        ),
        goal(
            "engine overhead per step < 50 us (validation excluded)",
            rows["overhead"]["median"],
            50.0,
            "us",
        ),
    ]
    notes = [
        f"run() validates the document too; validation is {median(validate_ns) / n / 1e3:.1f} "
        "us per step of it.",
    ]
    return result(
        "engine",
        7,
        f"Engine overhead per step, {n:,}-step mock workflow",
        size,
        list(rows.values()),
        goals,
        notes,
    )


def main() -> None:
    args = parse_args(__doc__ or "")
    emit(measure(args.size), args.out)


if __name__ == "__main__":
    main()
