"""Item 7: engine overhead per step on a 1,000-step mock workflow, and validation time.

``Runtime().run(document)`` in mock mode over N ``claude`` steps with a static prompt.  The
mock provider's own time is measured by calling ``mock_claude.query`` directly with the same
prompt and options.  Validation (``Runtime().validate``, which ``run`` also performs) is
timed twice: on a cleared validation cache (the first time a Runtime sees the content:
size budgets, jsonschema-rs, the meaning checks) and as a cache hit.  The whole run is
timed as a repeat (the serve/batch case: validation cached) and as a first run (cache
cleared, validation included).  The engine's overhead per step is
``(repeat run - cached validation) / N - provider``.  Baseline: a hand-written loop that
builds the same prompt string and calls the same provider N times.
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
        cache = runtime.executor.validation_cache
        validate_ns: list[float] = []
        cached_ns: list[float] = []
        run_ns: list[float] = []
        first_run_ns: list[float] = []
        loop_ns: list[float] = []

        def hand_written() -> None:
            answers = {}
            for step in document["workflow"]["steps"]:
                prompt = "\n\n".join(part["content"] for part in step["prompt"])
                answers[step["name"]] = provider.query(prompt, {"step_name": step["name"]})
            assert len(answers) == n

        for _ in range(cfg["repeat"]):
            cache.clear()
            t0 = time.perf_counter_ns()
            runtime.validate(document)
            t1 = time.perf_counter_ns()
            runtime.validate(document)
            t2 = time.perf_counter_ns()
            runtime.run(document, output_dir=out)
            t3 = time.perf_counter_ns()
            hand_written()
            t4 = time.perf_counter_ns()
            cache.clear()
            t5 = time.perf_counter_ns()
            runtime.run(document, output_dir=out)
            t6 = time.perf_counter_ns()
            validate_ns.append(t1 - t0)
            cached_ns.append(t2 - t1)
            run_ns.append(t3 - t2)
            loop_ns.append(t4 - t3)
            first_run_ns.append(t6 - t5)
        provider_ns = per_call_ns(
            lambda: provider.query(CONTENT, {"step_name": "s0"}),
            number=max(n, 100),
            repeat=cfg["repeat"] * 3,
        )
    provider_per_call = median(provider_ns)
    overhead = [(r - v) / n - provider_per_call for r, v in zip(run_ns, cached_ns, strict=True)]
    rows = {
        "overhead": row(
            "engine overhead per step (repeat run - cached validation - provider)", overhead, "us"
        ),
        "run": row(
            "whole run per step, repeat (validation cached; incl. provider)",
            [r / n for r in run_ns],
            "us",
        ),
        "first_run": row(
            "whole run per step, first run (incl. validation and provider)",
            [r / n for r in first_run_ns],
            "us",
        ),
        "loop": row(
            "hand-written loop per step (prompt + provider call)",
            [loop / n for loop in loop_ns],
            "us",
            baseline=True,
        ),
        "provider": row("mock provider query per call", provider_ns, "us", baseline=True),
        "validate": row(
            f"validation of the {n:,}-step document (first time: jsonschema-rs + checks)",
            validate_ns,
            "ms",
        ),
        "cached": row(f"validation of the {n:,}-step document, cache hit", cached_ns, "ms"),
        "run_total": row(f"whole run of the {n:,}-step document, repeat", run_ns, "ms"),
    }
    add_ratios(rows["run"], {"hand-written loop": rows["loop"]})
    add_ratios(rows["first_run"], {"hand-written loop": rows["loop"]})
    whole = [r / n - provider_per_call for r in first_run_ns]
    goals = [
        goal(
            "whole run per step within 10x the hand-written loop (repeat run, validation cached)",
            rows["run"]["ratios"]["hand-written loop"],
            10.0,
            "x",
        ),
        goal(
            "whole run per step within 10x the hand-written loop (first run, validation included)",
            rows["first_run"]["ratios"]["hand-written loop"],
            10.0,
            "x",
        ),
        goal(
            "engine time per step minus provider < 50 us (first run, validation included)",
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
        f"first-time validation is {median(validate_ns) / n / 1e3:.2f} us per step, a cache "
        f"hit {median(cached_ns) / n / 1e3:.2f} us per step.",
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
